use crate::{BatchNorm, BatchNormConfig};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Gelu, Linear, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};

/// The non-linearity after a head block.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// Gaussian error linear unit (DINO's heads).
    Gelu,
}

/// One block of a [`ProjectionHead`]: `Linear(input, output, bias) → BatchNorm? → activation?`.
#[derive(Config, Debug)]
pub struct BlockConfig {
    /// Input width.
    pub input: usize,
    /// Output width.
    pub output: usize,
    /// Batch-normalise the block's output.
    #[config(default = false)]
    pub batch_norm: bool,
    /// Activation after the (normalised) output, if any.
    #[config(default = "None")]
    pub activation: Option<Activation>,
    /// Bias in the linear layer (usually off when BatchNorm follows, which has its own shift).
    #[config(default = true)]
    pub bias: bool,
    /// Learn the BatchNorm's scale and shift (`false`: PyTorch's `affine=False`, γ = 1 and
    /// β = 0 kept frozen — SimSiam's and MoCo v3's last layers).
    #[config(default = true)]
    pub affine: bool,
}

impl BlockConfig {
    /// `Linear(input, output, no bias) → BatchNorm → ReLU`.
    pub fn linear_bn_relu(input: usize, output: usize) -> Self {
        BlockConfig::new(input, output)
            .with_batch_norm(true)
            .with_activation(Some(Activation::Relu))
            .with_bias(false)
    }

    /// A plain `Linear(input, output)` with bias.
    pub fn linear(input: usize, output: usize) -> Self {
        BlockConfig::new(input, output)
    }
}

/// Configuration of [`ProjectionHead`]: its blocks, with presets carrying each paper's
/// dimensions.
#[derive(Config, Debug)]
pub struct ProjectionHeadConfig {
    /// The blocks, applied in order; each block's input must equal the previous output.
    pub blocks: Vec<BlockConfig>,
}

impl ProjectionHeadConfig {
    /// SimCLR: `Linear → BN → ReLU → Linear`; the paper uses 2048 → 2048 → 128 on ResNet-50.
    /// For ConvNet-S selfsup uses `simclr(128, 128, 64)`.
    pub fn simclr(input: usize, hidden: usize, output: usize) -> Self {
        Self::new(vec![
            BlockConfig::linear_bn_relu(input, hidden),
            BlockConfig::linear(hidden, output),
        ])
    }

    /// MoCo v2: `Linear → ReLU → Linear` without BatchNorm, 2048 → 2048 → 128.
    pub fn moco_v2(input: usize, hidden: usize, output: usize) -> Self {
        Self::new(vec![
            BlockConfig::new(input, hidden).with_activation(Some(Activation::Relu)),
            BlockConfig::linear(hidden, output),
        ])
    }

    /// BYOL projector and predictor: `Linear → BN → ReLU → Linear`; projector 2048 → 4096 → 256,
    /// predictor 256 → 4096 → 256.
    pub fn byol(input: usize, hidden: usize, output: usize) -> Self {
        Self::simclr(input, hidden, output)
    }

    /// SimSiam projector: three layers, every one batch-normalised, the last without activation
    /// and with a non-affine BatchNorm; 2048 → 2048 → 2048.
    pub fn simsiam_projector(input: usize, hidden: usize, output: usize) -> Self {
        Self::new(vec![
            BlockConfig::linear_bn_relu(input, hidden),
            BlockConfig::linear_bn_relu(hidden, hidden),
            BlockConfig::new(hidden, output)
                .with_batch_norm(true)
                .with_bias(false)
                .with_affine(false),
        ])
    }

    /// MoCo v3 projector: `Linear → BN → ReLU` twice, then `Linear → BN` (non-affine);
    /// 2048 → 4096 → 4096 → 256 on ResNet-50.
    pub fn moco_v3_projector(input: usize, hidden: usize, output: usize) -> Self {
        Self::new(vec![
            BlockConfig::linear_bn_relu(input, hidden),
            BlockConfig::linear_bn_relu(hidden, hidden),
            BlockConfig::new(hidden, output)
                .with_batch_norm(true)
                .with_bias(false)
                .with_affine(false),
        ])
    }

    /// MoCo v3 predictor: `Linear → BN → ReLU → Linear → BN` (non-affine); 256 → 4096 → 256.
    pub fn moco_v3_predictor(input: usize, hidden: usize, output: usize) -> Self {
        Self::new(vec![
            BlockConfig::linear_bn_relu(input, hidden),
            BlockConfig::new(hidden, output)
                .with_batch_norm(true)
                .with_bias(false)
                .with_affine(false),
        ])
    }

    /// SimSiam predictor: a bottleneck `Linear → BN → ReLU → Linear`, 2048 → 512 → 2048.
    pub fn simsiam_predictor(input: usize, hidden: usize, output: usize) -> Self {
        Self::simclr(input, hidden, output)
    }

    /// Barlow Twins: three layers, `Linear → BN → ReLU` twice then `Linear`, 8192 wide in the
    /// paper.
    pub fn barlow_twins(input: usize, hidden: usize, output: usize) -> Self {
        Self::new(vec![
            BlockConfig::linear_bn_relu(input, hidden),
            BlockConfig::linear_bn_relu(hidden, hidden),
            BlockConfig::linear(hidden, output),
        ])
    }

    /// VICReg: the same expander as Barlow Twins (8192-8192-8192 in the paper).
    pub fn vicreg(input: usize, hidden: usize, output: usize) -> Self {
        Self::barlow_twins(input, hidden, output)
    }

    /// Builds the head.
    ///
    /// # Panics
    ///
    /// When there is no block, a width is 0, or consecutive blocks do not chain.
    pub fn init(&self, device: &Device) -> ProjectionHead {
        assert!(
            !self.blocks.is_empty(),
            "ProjectionHead: needs at least one block, got 0"
        );
        for (i, block) in self.blocks.iter().enumerate() {
            assert!(
                block.input > 0 && block.output > 0,
                "ProjectionHead: block {i} must have widths > 0, got {} → {}",
                block.input,
                block.output
            );
            if i > 0 {
                let previous = self.blocks[i - 1].output;
                assert!(
                    block.input == previous,
                    "ProjectionHead: block {i} takes {} inputs but block {} outputs {previous}",
                    block.input,
                    i - 1
                );
            }
        }
        ProjectionHead {
            blocks: self
                .blocks
                .iter()
                .map(|b| HeadBlock {
                    linear: LinearConfig::new(b.input, b.output)
                        .with_bias(b.bias)
                        .init(device),
                    norm: b.batch_norm.then(|| {
                        let norm = BatchNormConfig::new(b.output).init(device);
                        if b.affine {
                            norm
                        } else {
                            BatchNorm {
                                gamma: norm.gamma.set_require_grad(false),
                                beta: norm.beta.set_require_grad(false),
                                ..norm
                            }
                        }
                    }),
                    relu: (b.activation == Some(Activation::Relu)).then(Relu::new),
                    gelu: (b.activation == Some(Activation::Gelu)).then(Gelu::new),
                })
                .collect(),
        }
    }
}

/// One built block of a [`ProjectionHead`].
#[derive(Module, Debug)]
pub struct HeadBlock {
    linear: Linear,
    norm: Option<BatchNorm>,
    relu: Option<Relu>,
    gelu: Option<Gelu>,
}

impl HeadBlock {
    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let mut x = self.linear.forward(input);
        match (&self.norm, &self.relu) {
            (Some(norm), Some(_)) => x = norm.forward_relu(x),
            (Some(norm), None) => x = norm.forward(x),
            (None, Some(relu)) => x = relu.forward(x),
            (None, None) => {}
        }
        if let Some(gelu) = &self.gelu {
            x = gelu.forward(x);
        }
        x
    }
}

/// A projection or prediction head: a stack of `Linear → BatchNorm? → activation?` blocks.
///
/// ```
/// use selfsup_nn::ProjectionHeadConfig;
/// use burn::tensor::{Distribution, Tensor};
///
/// # let device = selfsup_backend::test_device();
/// let head = ProjectionHeadConfig::simclr(128, 128, 64).init(&device);
/// let z = head.forward(Tensor::random([8, 128], Distribution::Default, &device));
/// assert_eq!(z.dims(), [8, 64]);
/// ```
#[derive(Module, Debug)]
pub struct ProjectionHead {
    blocks: Vec<HeadBlock>,
}

impl ProjectionHead {
    /// # Shapes
    ///
    /// - input: `[N, first block's input]` → `[N, last block's output]`
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        self.blocks.iter().fold(input, |x, block| block.forward(x))
    }
}
