use burn::module::{Module, ModuleDisplay};
use burn::tensor::Tensor;

/// A backbone that maps a batch of images to feature vectors.
///
/// Methods are generic over it, so any Burn module implementing it (a torchvision-style ResNet,
/// a ViT, a tabular MLP) can be pretrained with any method.
pub trait Encoder: Module + ModuleDisplay {
    /// Width of the feature vectors.
    fn output_dim(&self) -> usize;

    /// Encodes a batch.
    ///
    /// # Shapes
    ///
    /// - input: `[N, C, H, W]` (tabular data: `[N, D, 1, 1]`)
    /// - output: `[N, output_dim]`
    fn encode(&self, input: Tensor<4>) -> Tensor<2>;
}
