use burn::config::Config;
use burn::module::Module;
use burn::tensor::Tensor;

use crate::ops::{assert_min_rows, assert_same_shape, l2_normalize, log_sum_exp};

/// Configuration of [`MocoV3Loss`].
#[derive(Config, Debug)]
pub struct MocoV3LossConfig {
    /// Softmax temperature τ; must be > 0 (0.2 for ResNets in the paper, 0.1 for ViTs).
    #[config(default = 0.2)]
    pub temperature: f64,
}

impl MocoV3LossConfig {
    /// Builds the loss.
    ///
    /// # Panics
    ///
    /// When `temperature` is not a finite number > 0.
    pub fn init(&self) -> MocoV3Loss {
        assert!(
            self.temperature.is_finite() && self.temperature > 0.0,
            "MocoV3Loss: temperature must be > 0, got {}",
            self.temperature
        );
        MocoV3Loss {
            temperature: self.temperature,
        }
    }
}

/// MoCo v3's symmetric contrastive loss: each view's queries pick their own sample among the
/// other view's keys of the same batch (no queue, no other-view queries as negatives, unlike
/// NT-Xent), with the cross-entropy scaled by `2τ`:
///
/// `ctr(q, k) = 2τ · CE(q̂·k̂ᵀ / τ, [0, 1, …, N−1])`, loss `= ctr(q_a, k_b) + ctr(q_b, k_a)`,
///
/// `q̂, k̂` L2-normalised rows. The keys come from a momentum encoder and are detached by the
/// caller; this function differentiates whatever it is given.
///
/// Reference: \[0\] MoCo v3, Chen, Xie & He 2021, arXiv:2104.02057 (Algorithm 1).
///
/// # Example
///
/// ```
/// use burn::tensor::{Distribution, Tensor};
/// use selfsup_losses::MocoV3LossConfig;
///
/// # let device = selfsup_backend::test_device();
/// let loss = MocoV3LossConfig::new().init();
/// let q = Tensor::<2>::random([8, 16], Distribution::Normal(0.0, 1.0), &device);
/// let aligned = loss.forward(q.clone(), q.clone(), q.clone(), q.clone());
/// let shuffled = loss.forward(q.clone(), q.clone(), q.clone().flip([0]), q.flip([0]));
/// assert!(aligned.into_scalar::<f32>() < shuffled.into_scalar::<f32>());
/// ```
#[derive(Module, Debug)]
pub struct MocoV3Loss {
    /// Softmax temperature τ.
    pub temperature: f64,
}

impl MocoV3Loss {
    /// Computes the loss.
    ///
    /// # Shapes
    ///
    /// - query_a, query_b, key_a, key_b: `[N, D]`
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// When the four inputs differ in shape or the batch is empty.
    pub fn forward(
        &self,
        query_a: Tensor<2>,
        query_b: Tensor<2>,
        key_a: Tensor<2>,
        key_b: Tensor<2>,
    ) -> Tensor<1> {
        for (name, other) in [("query_b", &query_b), ("key_a", &key_a), ("key_b", &key_b)] {
            assert_same_shape::<2>("MocoV3Loss", ("query_a", &query_a), (name, other));
        }
        assert_min_rows("MocoV3Loss", "query_a", query_a.dims()[0], 1);
        self.contrast(query_a, key_b) + self.contrast(query_b, key_a)
    }

    /// `ctr(q, k)`: the `2τ`-scaled cross-entropy of each query picking its own key.
    fn contrast(&self, query: Tensor<2>, key: Tensor<2>) -> Tensor<1> {
        let (query, key) = (l2_normalize(query), l2_normalize(key));
        let positive = (query.clone() * key.clone())
            .sum_dim(1)
            .div_scalar(self.temperature);
        let logits = query.matmul(key.transpose()).div_scalar(self.temperature);
        (log_sum_exp(logits) - positive)
            .mean()
            .mul_scalar(2.0 * self.temperature)
    }
}
