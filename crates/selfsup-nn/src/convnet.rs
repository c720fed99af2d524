use crate::MaxPool2d;
use crate::{BatchNorm, BatchNormConfig};
use crate::{Conv2d, Conv2dConfig};
use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};

use crate::Encoder;

/// Configuration of [`ConvNetS`].
#[derive(Config, Debug)]
pub struct ConvNetSConfig {
    /// Channels of the input images (1 for grayscale, 3 for RGB).
    #[config(default = 1)]
    pub input_channels: usize,
}

impl ConvNetSConfig {
    /// Builds the encoder.
    ///
    /// # Panics
    ///
    /// When `input_channels` is 0.
    pub fn init(&self, device: &Device) -> ConvNetS {
        assert!(
            self.input_channels > 0,
            "ConvNetS: input_channels must be > 0, got 0"
        );
        let widths = [self.input_channels, 32, 32, 64, 64, 128];
        ConvNetS {
            blocks: widths
                .windows(2)
                .map(|w| ConvBlock::new(w[0], w[1], device))
                .collect(),
            pool: MaxPool2dConfig::new([2, 2]).init().into(),
            global_pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }
}

/// `conv 3×3 (padding 1, no bias) → BatchNorm → ReLU`.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    norm: BatchNorm,
    activation: Relu,
}

impl ConvBlock {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        ConvBlock {
            conv: Conv2dConfig::new([input, output], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(output).init(device),
            activation: Relu::new(),
        }
    }

    /// # Shapes
    /// - input: `[N, C_in, H, W]` → `[N, C_out, H, W]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        // `activation` stays a field for the record layout; the ReLU runs fused with the
        // batch norm (`forward_relu`).
        let _ = &self.activation;
        self.norm.forward_relu(self.conv.forward(input))
    }
}

/// ConvNet-S, a small CNN for 28×28 images (Fashion-MNIST, MNIST), 128-d features:
///
/// ```text
/// [conv3×3 → BN → ReLU] ×2 (32) → max-pool 2 → [conv3×3 → BN → ReLU] ×2 (64) → max-pool 2
///   → conv3×3 → BN → ReLU (128) → global average pool → 128
/// ```
///
/// Convolutions have padding 1 and no bias (BatchNorm follows). This is the encoder of the
/// selfsup CLI, its benchmarks and its PyTorch comparison, so its layout is fixed.
#[derive(Module, Debug)]
pub struct ConvNetS {
    blocks: Vec<ConvBlock>,
    pool: MaxPool2d,
    global_pool: AdaptiveAvgPool2d,
}

impl ConvNetS {
    /// Output width.
    pub const OUTPUT_DIM: usize = 128;

    /// # Shapes
    ///
    /// - input: `[N, input_channels, H, W]`, H and W ≥ 4
    /// - output: `[N, 128]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        let mut x = input;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if i == 1 || i == 3 {
                x = self.pool.forward(x);
            }
        }
        let [n, c, _, _] = x.dims();
        self.global_pool.forward(x).reshape([n, c])
    }
}

impl Encoder for ConvNetS {
    fn output_dim(&self) -> usize {
        Self::OUTPUT_DIM
    }

    fn encode(&self, input: Tensor<4>) -> Tensor<2> {
        self.forward(input)
    }
}
