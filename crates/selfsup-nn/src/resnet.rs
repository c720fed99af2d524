use crate::{BatchNorm, BatchNormConfig};
use crate::{Conv2d, Conv2dConfig};
use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};

use crate::Encoder;

/// Configuration of [`ResNet18`].
#[derive(Config, Debug)]
pub struct ResNet18Config {
    /// Channels of the input images.
    #[config(default = 3)]
    pub input_channels: usize,
}

impl ResNet18Config {
    /// Builds the network.
    ///
    /// # Panics
    ///
    /// When `input_channels` is 0.
    pub fn init(&self, device: &Device) -> ResNet18 {
        assert!(
            self.input_channels > 0,
            "ResNet18: input_channels must be > 0, got 0"
        );
        let stages = [(64, 1), (128, 2), (256, 2), (512, 2)];
        let mut blocks = Vec::new();
        let mut channels = 64;
        for (width, stride) in stages {
            blocks.push(BasicBlock::new(channels, width, stride, device));
            blocks.push(BasicBlock::new(width, width, 1, device));
            channels = width;
        }
        ResNet18 {
            stem: conv3x3(self.input_channels, 64, 1, device),
            stem_norm: BatchNormConfig::new(64).init(device),
            blocks,
            activation: Relu::new(),
            global_pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }
}

fn conv3x3(input: usize, output: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

/// The 1×1 projection on a residual shortcut whose shape changes.
#[derive(Module, Debug)]
pub struct Shortcut {
    conv: Conv2d,
    norm: BatchNorm,
}

/// The residual block of ResNet-18/34: two 3×3 convolutions, with a 1×1 projection on the
/// shortcut when the shape changes.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    shortcut: Option<Shortcut>,
    activation: Relu,
}

impl BasicBlock {
    fn new(input: usize, output: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (stride != 1 || input != output).then(|| Shortcut {
            conv: Conv2dConfig::new([input, output], [1, 1])
                .with_stride([stride, stride])
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(output).init(device),
        });
        BasicBlock {
            conv1: conv3x3(input, output, stride, device),
            norm1: BatchNormConfig::new(output).init(device),
            conv2: conv3x3(output, output, 1, device),
            norm2: BatchNormConfig::new(output).init(device),
            shortcut,
            activation: Relu::new(),
        }
    }

    fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let residual = match &self.shortcut {
            Some(shortcut) => shortcut.norm.forward(shortcut.conv.forward(input.clone())),
            None => input.clone(),
        };
        let x = self.norm1.forward_relu(self.conv1.forward(input));
        let x = self.norm2.forward(self.conv2.forward(x));
        self.activation.forward(x + residual)
    }
}

/// ResNet-18 with the CIFAR stem (a 3×3 stride-1 convolution and no max-pool, as SimCLR and
/// solo-learn use for 32×32 images); 512-d features after global average pooling.
#[derive(Module, Debug)]
pub struct ResNet18 {
    stem: Conv2d,
    stem_norm: BatchNorm,
    blocks: Vec<BasicBlock>,
    activation: Relu,
    global_pool: AdaptiveAvgPool2d,
}

impl ResNet18 {
    /// Output width.
    pub const OUTPUT_DIM: usize = 512;

    /// # Shapes
    ///
    /// - input: `[N, input_channels, H, W]`
    /// - output: `[N, 512]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem_norm.forward_relu(self.stem.forward(input));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [n, c, _, _] = x.dims();
        self.global_pool.forward(x).reshape([n, c])
    }
}

impl Encoder for ResNet18 {
    fn output_dim(&self) -> usize {
        Self::OUTPUT_DIM
    }

    fn encode(&self, input: Tensor<4>) -> Tensor<2> {
        self.forward(input)
    }
}
