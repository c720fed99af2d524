use crate::{BatchNorm, BatchNormConfig};
use crate::{Conv2d, Conv2dConfig};
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};

/// Configuration of [`MlpDecoder`].
#[derive(Config, Debug)]
pub struct MlpDecoderConfig {
    /// Width of the input features.
    #[config(default = 128)]
    pub input_dim: usize,
    /// Width of the hidden layer.
    #[config(default = 512)]
    pub hidden_dim: usize,
    /// Shape of one output image, `[C, H, W]`.
    pub output_shape: [usize; 3],
}

impl MlpDecoderConfig {
    /// Builds the decoder.
    ///
    /// # Panics
    ///
    /// When a width or an output dimension is 0.
    pub fn init(&self, device: &Device) -> MlpDecoder {
        assert!(
            self.input_dim > 0 && self.hidden_dim > 0 && self.output_shape.iter().all(|&d| d > 0),
            "MlpDecoder: widths and output_shape must be > 0, got input_dim {}, hidden_dim {}, \
             output_shape {:?}",
            self.input_dim,
            self.hidden_dim,
            self.output_shape
        );
        let out: usize = self.output_shape.iter().product();
        MlpDecoder {
            hidden: LinearConfig::new(self.input_dim, self.hidden_dim).init(device),
            output: LinearConfig::new(self.hidden_dim, out).init(device),
            activation: Relu::new(),
            output_shape: self.output_shape,
        }
    }
}

/// `Linear → ReLU → Linear`, reshaped to images. Outputs are unbounded (logits): pair with
/// `ReconstructionKind::BceWithLogits` for pixels in `[0, 1]`, or `Mse` for real values.
#[derive(Module, Debug)]
pub struct MlpDecoder {
    hidden: Linear,
    output: Linear,
    activation: Relu,
    output_shape: [usize; 3],
}

impl MlpDecoder {
    /// # Shapes
    ///
    /// - input: `[N, input_dim]` → `[N, C, H, W]`
    pub fn forward(&self, input: Tensor<2>) -> Tensor<4> {
        let [n, _] = input.dims();
        let [c, h, w] = self.output_shape;
        let x = self.activation.forward(self.hidden.forward(input));
        self.output.forward(x).reshape([n, c, h, w])
    }
}

/// Configuration of [`ConvNetSDecoder`].
#[derive(Config, Debug)]
pub struct ConvNetSDecoderConfig {
    /// Channels of the reconstructed images.
    #[config(default = 1)]
    pub output_channels: usize,
    /// Width of the input features (ConvNet-S gives 128).
    #[config(default = 128)]
    pub input_dim: usize,
}

impl ConvNetSDecoderConfig {
    /// Builds the decoder.
    ///
    /// # Panics
    ///
    /// When `output_channels` or `input_dim` is 0.
    pub fn init(&self, device: &Device) -> ConvNetSDecoder {
        assert!(
            self.output_channels > 0 && self.input_dim > 0,
            "ConvNetSDecoder: output_channels and input_dim must be > 0, got {} and {}",
            self.output_channels,
            self.input_dim
        );
        let up = |input: usize, output: usize| {
            ConvTranspose2dConfig::new([input, output], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .with_bias(false)
                .init(device)
        };
        ConvNetSDecoder {
            project: LinearConfig::new(self.input_dim, 64 * 7 * 7).init(device),
            up1: up(64, 64),
            norm1: BatchNormConfig::new(64).init(device),
            up2: up(64, 32),
            norm2: BatchNormConfig::new(32).init(device),
            output: Conv2dConfig::new([32, self.output_channels], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            activation: Relu::new(),
        }
    }
}

/// The mirror of ConvNet-S for 28×28 autoencoders:
/// `Linear → 64×7×7 → [convT 4×4 stride 2 → BN → ReLU] (64, 14×14) → [convT → BN → ReLU]
/// (32, 28×28) → conv 3×3 → C` logits.
#[derive(Module, Debug)]
pub struct ConvNetSDecoder {
    project: Linear,
    up1: ConvTranspose2d,
    norm1: BatchNorm,
    up2: ConvTranspose2d,
    norm2: BatchNorm,
    output: Conv2d,
    activation: Relu,
}

impl ConvNetSDecoder {
    /// # Shapes
    ///
    /// - input: `[N, input_dim]` → `[N, output_channels, 28, 28]`
    pub fn forward(&self, input: Tensor<2>) -> Tensor<4> {
        let [n, _] = input.dims();
        let x = self
            .activation
            .forward(self.project.forward(input))
            .reshape([n, 64, 7, 7]);
        let x = self.norm1.forward_relu(self.up1.forward(x));
        let x = self.norm2.forward_relu(self.up2.forward(x));
        self.output.forward(x)
    }
}

/// A network that maps features back to images, for autoencoders.
pub trait Decoder: Module + burn::module::ModuleDisplay {
    /// # Shapes
    ///
    /// - features: `[N, D]` → `[N, C, H, W]` (logits or values, per the decoder)
    fn decode(&self, features: Tensor<2>) -> Tensor<4>;
}

impl Decoder for MlpDecoder {
    fn decode(&self, features: Tensor<2>) -> Tensor<4> {
        self.forward(features)
    }
}

impl Decoder for ConvNetSDecoder {
    fn decode(&self, features: Tensor<2>) -> Tensor<4> {
        self.forward(features)
    }
}
