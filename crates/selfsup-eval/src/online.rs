use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

/// A linear classifier trained during pretraining on the encoder's features, detached: it
/// follows the representation's quality epoch by epoch and never changes the encoder. Its loss
/// is added to the method's, so one optimizer and one checkpoint hold both.
#[derive(Module, Debug)]
pub struct OnlineProbe {
    classifier: Linear,
}

/// The probe's loss and hits on one batch.
#[derive(Clone, Debug)]
pub struct OnlineProbeOutput {
    /// Cross-entropy, `[1]`; gradients reach only the probe.
    pub loss: Tensor<1>,
    /// Correct predictions in the batch, `[1]`.
    pub correct: Tensor<1, Int>,
}

impl OnlineProbe {
    /// A probe from `features`-dimensional embeddings to `classes`.
    pub fn new(features: usize, classes: usize, device: &Device) -> Self {
        OnlineProbe {
            classifier: LinearConfig::new(features, classes).init(device),
        }
    }

    /// Trains on (and scores) a batch of features and labels.
    ///
    /// # Shapes
    ///
    /// - features: `[N, D]`, labels: `[N]`
    pub fn forward(&self, features: Tensor<2>, labels: Tensor<1, Int>) -> OnlineProbeOutput {
        let n = features.dims()[0];
        let logits = self.classifier.forward(features.detach());
        let correct = logits
            .clone()
            .argmax(1)
            .reshape([n])
            .equal(labels.clone())
            .int()
            .sum();
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, labels);
        OnlineProbeOutput { loss, correct }
    }
}
