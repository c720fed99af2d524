use burn::tensor::Tensor;
use burn::train::ItemLazy;
use burn::train::metric::{Adaptor, LossInput};

/// What a method's forward pass gives: the loss to minimise and the encoder's features of the
/// first view (for online probes and label-free metrics).
#[derive(Clone, Debug)]
pub struct SslOutput {
    /// Scalar loss, `[1]`.
    pub loss: Tensor<1>,
    /// Encoder features of view 0, `[N, D]`.
    pub embeddings: Tensor<2>,
}

impl ItemLazy for SslOutput {
    fn sync(self) -> Result<Self, burn_std::ExecutionError> {
        self.loss.device().flush()?;
        Ok(SslOutput {
            loss: self.loss.without_autodiff(),
            embeddings: self.embeddings.without_autodiff(),
        })
    }
}

impl Adaptor<LossInput> for SslOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}
