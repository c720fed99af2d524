use burn::config::Config;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use crate::ops::{assert_min_rows, assert_same_shape, diagonal_mask};

/// Configuration of [`VicRegLoss`].
#[derive(Config, Debug)]
pub struct VicRegLossConfig {
    /// λ, weight of the invariance term; must be ≥ 0.
    #[config(default = 25.0)]
    pub lambda: f64,
    /// μ, weight of the variance term; must be ≥ 0.
    #[config(default = 25.0)]
    pub mu: f64,
    /// ν, weight of the covariance term; must be ≥ 0.
    #[config(default = 1.0)]
    pub nu: f64,
    /// ε added to the variance before the square root; must be > 0.
    #[config(default = 1e-4)]
    pub eps: f64,
}

impl VicRegLossConfig {
    /// Builds the loss.
    ///
    /// # Panics
    ///
    /// When a weight is negative or `eps` is not > 0.
    pub fn init(&self) -> VicRegLoss {
        for (name, value) in [("lambda", self.lambda), ("mu", self.mu), ("nu", self.nu)] {
            assert!(
                value.is_finite() && value >= 0.0,
                "VicRegLoss: {name} must be >= 0, got {value}"
            );
        }
        assert!(
            self.eps.is_finite() && self.eps > 0.0,
            "VicRegLoss: eps must be > 0, got {}",
            self.eps
        );
        VicRegLoss {
            lambda: self.lambda,
            mu: self.mu,
            nu: self.nu,
            eps: self.eps,
        }
    }
}

/// VICReg: variance-invariance-covariance regularisation.
///
/// `λ·invariance + μ·variance + ν·covariance`, with
/// - invariance `mean((z_a − z_b)²)`,
/// - variance `½(v(z_a) + v(z_b))`, `v(z) = mean_j relu(1 − sqrt(var_j(z) + ε))` (a hinge that
///   keeps every dimension's standard deviation near 1, so the embedding cannot collapse),
/// - covariance `c(z_a) + c(z_b)`, `c(z) = Σ_{i≠j} Cᵢⱼ² / D` with `C` the covariance matrix
///   (decorrelates the dimensions).
///
/// Variances and covariances divide by `N − 1`. Equals `lightly.loss.VICRegLoss` with the same
/// weights. The three terms are public functions, and
/// [`forward_with_stats`](Self::forward_with_stats) returns them for logging.
///
/// Reference: \[0\] VICReg, 2022, arXiv:2105.04906.
///
/// # Example
///
/// ```
/// use burn::tensor::{Distribution, Tensor};
/// use selfsup_losses::VicRegLossConfig;
///
/// # let device = selfsup_backend::test_device();
/// let loss = VicRegLossConfig::new().init();
/// let z_a = Tensor::<2>::random([16, 8], Distribution::Normal(0.0, 1.0), &device);
/// let z_b = z_a.clone();
/// let (total, stats) = loss.forward_with_stats(z_a, z_b);
/// assert_eq!(stats.invariance.into_scalar::<f32>(), 0.0);
/// # let _ = total;
/// ```
#[derive(Module, Debug)]
pub struct VicRegLoss {
    /// Weight of the invariance term.
    pub lambda: f64,
    /// Weight of the variance term.
    pub mu: f64,
    /// Weight of the covariance term.
    pub nu: f64,
    /// Added to the variance before the square root.
    pub eps: f64,
}

/// The three unweighted VICReg terms of one batch, each a `[1]` tensor.
#[derive(Debug, Clone)]
pub struct VicRegStats {
    /// `mean((z_a − z_b)²)`.
    pub invariance: Tensor<1>,
    /// `½(v(z_a) + v(z_b))`.
    pub variance: Tensor<1>,
    /// `c(z_a) + c(z_b)`.
    pub covariance: Tensor<1>,
}

impl VicRegLoss {
    /// Computes the loss.
    ///
    /// # Shapes
    ///
    /// - z_a, z_b: `[N, D]`, N ≥ 2
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// When the shapes differ or the batch has fewer than 2 rows.
    pub fn forward(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
        self.forward_with_stats(z_a, z_b).0
    }

    /// The loss and its three unweighted terms.
    pub fn forward_with_stats(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> (Tensor<1>, VicRegStats) {
        assert_same_shape::<2>("VicRegLoss", ("z_a", &z_a), ("z_b", &z_b));
        assert_min_rows("VicRegLoss", "z_a", z_a.dims()[0], 2);
        let stats = VicRegStats {
            invariance: invariance_loss(z_a.clone(), z_b.clone()),
            variance: (variance_loss(z_a.clone(), self.eps) + variance_loss(z_b.clone(), self.eps))
                .mul_scalar(0.5),
            covariance: covariance_loss(z_a) + covariance_loss(z_b),
        };
        let total = stats.invariance.clone().mul_scalar(self.lambda)
            + stats.variance.clone().mul_scalar(self.mu)
            + stats.covariance.clone().mul_scalar(self.nu);
        (total, stats)
    }
}

/// VICReg's invariance term, `mean((z_a − z_b)²)`.
///
/// # Shapes
///
/// - z_a, z_b: `[N, D]` → `[1]`
pub fn invariance_loss(z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
    (z_a - z_b).square().mean()
}

/// VICReg's variance term for one view, `mean_j relu(1 − sqrt(var_j + eps))`, variance over
/// the batch divided by `N − 1`.
///
/// # Shapes
///
/// - z: `[N, D]`, N ≥ 2 → `[1]`
pub fn variance_loss(z: Tensor<2>, eps: f64) -> Tensor<1> {
    let std = z.var(0).add_scalar(eps).sqrt();
    relu(std.neg().add_scalar(1.0)).mean()
}

/// VICReg's covariance term for one view, `Σ_{i≠j} Cᵢⱼ² / D`, `C` the covariance matrix of the
/// columns (divided by `N − 1`).
///
/// # Shapes
///
/// - z: `[N, D]`, N ≥ 2 → `[1]`
pub fn covariance_loss(z: Tensor<2>) -> Tensor<1> {
    let [n, d] = z.dims();
    let centered = z.clone() - z.mean_dim(0);
    let cov = centered
        .clone()
        .transpose()
        .matmul(centered)
        .div_scalar((n - 1) as f64);
    let mask = diagonal_mask(d, &cov);
    cov.square().mask_fill(mask, 0.0).sum().div_scalar(d as f64)
}
