use burn::config::Config;
use burn::module::Module;
use burn::tensor::Tensor;

use crate::ops::{assert_min_rows, assert_same_shape, l2_normalize, log_sum_exp};

/// Configuration of [`InfoNceLoss`].
#[derive(Config, Debug)]
pub struct InfoNceLossConfig {
    /// Softmax temperature τ; must be > 0. MoCo v1 uses 0.07, MoCo v2 0.2.
    #[config(default = 0.2)]
    pub temperature: f64,
}

impl InfoNceLossConfig {
    /// Builds the loss.
    ///
    /// # Panics
    ///
    /// When `temperature` is not a finite number > 0.
    pub fn init(&self) -> InfoNceLoss {
        assert!(
            self.temperature.is_finite() && self.temperature > 0.0,
            "InfoNceLoss: temperature must be > 0, got {}",
            self.temperature
        );
        InfoNceLoss {
            temperature: self.temperature,
        }
    }
}

/// InfoNCE with explicit negatives, the MoCo loss.
///
/// Query, positive key and negatives are L2-normalised; each query's logits are
/// `[q·k⁺, q·n₁, …, q·n_K] / τ` and the loss is the cross-entropy of picking the positive
/// (index 0), averaged over the queries. The negatives are typically a queue of keys from
/// earlier batches, produced by a momentum encoder (MoCo detaches the keys and the queue before
/// calling the loss; this function differentiates whatever it is given). Equals lightly's
/// `NTXentLoss` with a memory bank holding the negatives.
///
/// Reference: \[0\] MoCo, 2020, arXiv:1911.05722 (Algorithm 1).
///
/// # Example
///
/// ```
/// use burn::tensor::{Distribution, Tensor};
/// use selfsup_losses::InfoNceLossConfig;
///
/// # let device = selfsup_backend::test_device();
/// let loss = InfoNceLossConfig::new().with_temperature(0.2).init();
/// let q = Tensor::<2>::random([4, 8], Distribution::Normal(0.0, 1.0), &device);
/// let k = q.clone() * 2.0;
/// let queue = Tensor::<2>::random([16, 8], Distribution::Normal(0.0, 1.0), &device);
/// assert!(loss.forward(q, k, queue).into_scalar::<f32>() < 1.0);
/// ```
#[derive(Module, Debug)]
pub struct InfoNceLoss {
    /// Softmax temperature τ.
    pub temperature: f64,
}

impl InfoNceLoss {
    /// Computes the loss.
    ///
    /// # Shapes
    ///
    /// - query, positive_key: `[N, D]`
    /// - negatives: `[K, D]`
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// When `query` and `positive_key` differ in shape, the negatives have another `D`, or a
    /// batch is empty.
    pub fn forward(
        &self,
        query: Tensor<2>,
        positive_key: Tensor<2>,
        negatives: Tensor<2>,
    ) -> Tensor<1> {
        assert_same_shape::<2>(
            "InfoNceLoss",
            ("query", &query),
            ("positive_key", &positive_key),
        );
        let [n, d] = query.dims();
        let [k, d_neg] = negatives.dims();
        assert_min_rows("InfoNceLoss", "query", n, 1);
        assert_min_rows("InfoNceLoss", "negatives", k, 1);
        assert!(
            d == d_neg,
            "InfoNceLoss: negatives must have the query's dimension {d}, got shape [{k}, {d_neg}]"
        );

        let inv_t = 1.0 / self.temperature;
        let query = l2_normalize(query);
        let positive = (query.clone() * l2_normalize(positive_key))
            .sum_dim(1)
            .mul_scalar(inv_t);
        let negative = query
            .matmul(l2_normalize(negatives).transpose())
            .mul_scalar(inv_t);
        let logits = Tensor::cat(vec![positive.clone(), negative], 1);
        (log_sum_exp(logits) - positive).mean()
    }
}
