//! [`Conv2d`]: Burn's `Conv2d` layer on selfsup's own convolution kernels.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv as burn_conv;
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

/// Configuration of [`Conv2d`]: the fields, defaults and initialisation of Burn's
/// [`burn::nn::conv::Conv2dConfig`] (convertible both ways with `From`).
#[derive(Config, Debug)]
pub struct Conv2dConfig {
    /// Input and output channels.
    pub channels: [usize; 2],
    /// Kernel height and width.
    pub kernel_size: [usize; 2],
    /// Stride.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Dilation.
    #[config(default = "[1, 1]")]
    pub dilation: [usize; 2],
    /// Groups (grouped convolutions run Burn's kernels).
    #[config(default = "1")]
    pub groups: usize,
    /// Padding.
    #[config(default = "PaddingConfig2d::Valid")]
    pub padding: PaddingConfig2d,
    /// Whether the layer has a bias.
    #[config(default = true)]
    pub bias: bool,
    /// Initialiser of the weight and bias (Burn's default).
    #[config(
        default = "Initializer::KaimingUniform { gain: 1.0 / 3.0f64.sqrt(), fan_out_only: false }"
    )]
    pub initializer: Initializer,
}

impl Conv2dConfig {
    /// Builds the layer, with exactly the weights Burn's `Conv2dConfig::init` draws.
    ///
    /// # Panics
    ///
    /// When the channels are not divisible by `groups` (Burn's check).
    pub fn init(&self, device: &Device) -> Conv2d {
        burn_conv::Conv2dConfig::from(self.clone())
            .init(device)
            .into()
    }
}

impl From<Conv2dConfig> for burn_conv::Conv2dConfig {
    fn from(c: Conv2dConfig) -> Self {
        burn_conv::Conv2dConfig::new(c.channels, c.kernel_size)
            .with_stride(c.stride)
            .with_dilation(c.dilation)
            .with_groups(c.groups)
            .with_padding(c.padding)
            .with_bias(c.bias)
            .with_initializer(c.initializer)
    }
}

impl From<burn_conv::Conv2dConfig> for Conv2dConfig {
    fn from(c: burn_conv::Conv2dConfig) -> Self {
        Conv2dConfig {
            channels: c.channels,
            kernel_size: c.kernel_size,
            stride: c.stride,
            dilation: c.dilation,
            groups: c.groups,
            padding: c.padding,
            bias: c.bias,
            initializer: c.initializer,
        }
    }
}

/// A 2-d convolution layer: Burn's [`burn::nn::conv::Conv2d`] with the same fields (so the
/// same record and checkpoint paths: a Burn `Conv2d`'s weights load into it, and `From`
/// converts either way), whose forward pass and gradients run selfsup's own kernels
/// ([`selfsup_ops::conv2d`]) on flex and LibTorch, and Burn's elsewhere.
///
/// On 2 CPU cores, ConvNet-S's SimCLR training step runs several times faster on flex than
/// with Burn's `Conv2d` (`bench/RESULTS.md`): Burn computes a convolution's weight gradient
/// as a second convolution over swapped batch/channel axes, this layer as one GEMM per sample.
/// Use it in your own encoders in place of Burn's.
#[derive(Module, Debug)]
pub struct Conv2d {
    /// `[C_out, C_in / groups, k_h, k_w]`.
    pub weight: Param<Tensor<4>>,
    /// `[C_out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Stride.
    pub stride: [usize; 2],
    /// Kernel height and width.
    pub kernel_size: [usize; 2],
    /// Dilation.
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
    /// Padding.
    #[module(skip)]
    pub padding: PaddingConfig2d,
}

impl Conv2d {
    /// # Shapes
    ///
    /// - input: `[N, C_in, H, W]` → `[N, C_out, H_out, W_out]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let [_, _, height, width] = input.dims();
        let padding = padding_pairs(
            &self.padding,
            [height, width],
            self.kernel_size,
            self.stride,
        );
        let options =
            ConvOptions::new_with_padding(self.stride, padding, self.dilation, self.groups);
        selfsup_ops::conv2d(
            input,
            self.weight.val(),
            self.bias.as_ref().map(|bias| bias.val()),
            options,
        )
    }
}

/// `(before, after)` padding per axis, as Burn's `Conv2d` computes it (`Same` gives the
/// output `ceil(size / stride)` and, like Burn, does not account for dilation).
fn padding_pairs(
    padding: &PaddingConfig2d,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> [(usize, usize); 2] {
    let same = |axis: usize| {
        let out = size[axis].div_ceil(stride[axis]);
        let total = if out > 0 {
            ((out - 1) * stride[axis] + kernel[axis]).saturating_sub(size[axis])
        } else {
            0
        };
        (total / 2, total - total / 2)
    };
    match padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => [same(0), same(1)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(*top, *bottom), (*left, *right)],
    }
}

impl From<burn_conv::Conv2d> for Conv2d {
    fn from(c: burn_conv::Conv2d) -> Self {
        Conv2d {
            weight: c.weight,
            bias: c.bias,
            stride: c.stride,
            kernel_size: c.kernel_size,
            dilation: c.dilation,
            groups: c.groups,
            padding: c.padding,
        }
    }
}

impl From<Conv2d> for burn_conv::Conv2d {
    fn from(c: Conv2d) -> Self {
        burn_conv::Conv2d {
            weight: c.weight,
            bias: c.bias,
            stride: c.stride,
            kernel_size: c.kernel_size,
            dilation: c.dilation,
            groups: c.groups,
            padding: c.padding,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tolerance;

    fn device() -> Device {
        selfsup_backend::test_device().autodiff()
    }

    #[test]
    fn init_is_burns_and_forward_equals_burns() {
        for (stride, padding) in [
            ([2, 1], PaddingConfig2d::Same),
            ([1, 1], PaddingConfig2d::Same),
            ([1, 2], PaddingConfig2d::Explicit(2, 0, 1, 1)),
            ([1, 1], PaddingConfig2d::Valid),
        ] {
            let config = Conv2dConfig::new([3, 8], [3, 4])
                .with_stride(stride)
                .with_padding(padding);
            check_against_burn(config, &device());
        }
    }

    fn check_against_burn(config: Conv2dConfig, device: &Device) {
        // `init` is Burn's `init` on the converted config (seeded draws are not reproducible
        // on every backend, so the configs are compared, and the draws' range).
        let direct = burn_conv::Conv2dConfig::new([3, 8], [3, 4])
            .with_stride(config.stride)
            .with_padding(config.padding.clone());
        assert_eq!(
            format!("{:?}", burn_conv::Conv2dConfig::from(config.clone())),
            format!("{direct:?}")
        );
        let bound = 1.0 / (3.0 * 3.0 * 4.0f32).sqrt();
        let drawn = config
            .init(device)
            .weight
            .val()
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(drawn <= bound, "weights drawn outside ±{bound}: {drawn}");
        let burn = burn_conv::Conv2dConfig::from(config).init(device);
        let ours = Conv2d::from(burn.clone());

        let x = Tensor::<4>::random([2, 3, 9, 8], burn::tensor::Distribution::Default, device);
        ours.forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&burn.forward(x).into_data(), Tolerance::rel_abs(1e-4, 1e-4));
    }

    #[test]
    fn a_burn_conv2d_checkpoint_loads_into_it() {
        let device = device();
        let burn = burn_conv::Conv2dConfig::new([2, 4], [3, 3]).init(&device);
        let dir = std::env::temp_dir().join(format!("selfsup-nn-conv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("conv.bpk");
        burn.clone().save_file(&file).unwrap();
        let ours = Conv2dConfig::new([2, 4], [3, 3])
            .init(&device)
            .try_load_file(&file)
            .unwrap();
        ours.weight
            .val()
            .into_data()
            .assert_eq(&burn.weight.val().into_data(), true);
        ours.bias
            .unwrap()
            .val()
            .into_data()
            .assert_eq(&burn.bias.unwrap().val().into_data(), true);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
