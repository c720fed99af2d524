//! [`MaxPool2d`]: Burn's 2-d max-pooling layer on selfsup's own kernel.

use burn::module::{Content, DisplaySettings, Module, ModuleDisplay};
use burn::nn::PaddingConfig2d;
use burn::nn::pool as burn_pool;
use burn::tensor::Tensor;
use burn::tensor::ops::MaxPoolOptions;

/// 2-d max pooling: Burn's [`burn::nn::pool::MaxPool2d`] with the same fields (no tensors,
/// so nothing in a saved model changes; `From` converts either way) and the same output, whose pooling runs selfsup's
/// kernel ([`selfsup_ops::max_pool2d`]) on flex and Burn's op elsewhere.
///
/// ```
/// use burn::nn::pool::MaxPool2dConfig;
/// use selfsup_nn::MaxPool2d;
///
/// let pool = MaxPool2d::from(MaxPool2dConfig::new([2, 2]).init());
/// assert_eq!(pool.stride, [2, 2]);
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct MaxPool2d {
    /// The strides.
    pub stride: [usize; 2],
    /// The size of the kernel.
    pub kernel_size: [usize; 2],
    /// The padding configuration.
    #[module(skip)]
    pub padding: PaddingConfig2d,
    /// The dilation.
    pub dilation: [usize; 2],
    /// If true, use ceiling instead of floor for the output size.
    pub ceil_mode: bool,
}

impl ModuleDisplay for MaxPool2d {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("kernel_size", &format!("{:?}", self.kernel_size))
            .add("stride", &format!("{:?}", self.stride))
            .add_debug_attribute("padding", &self.padding)
            .add("dilation", &format!("{:?}", self.dilation))
            .add("ceil_mode", &self.ceil_mode)
            .optional()
    }
}

impl MaxPool2d {
    /// # Shapes
    ///
    /// - input: `[N, C, H, W]` → `[N, C, H_out, W_out]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let (rows, cols) = match self.padding {
            PaddingConfig2d::Valid => ((0, 0), (0, 0)),
            PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
            // `Same` padding depends on the input size by a rule Burn keeps private: Burn's
            // layer computes it (and pools).
            PaddingConfig2d::Same => {
                return burn_pool::MaxPool2d::from(self.clone()).forward(input);
            }
        };
        selfsup_ops::max_pool2d(
            input,
            MaxPoolOptions::new(self.kernel_size)
                .with_stride(self.stride)
                .with_padding_pairs([rows, cols])
                .with_dilation(self.dilation)
                .with_ceil_mode(self.ceil_mode),
        )
    }
}

impl From<burn_pool::MaxPool2d> for MaxPool2d {
    fn from(p: burn_pool::MaxPool2d) -> Self {
        MaxPool2d {
            stride: p.stride,
            kernel_size: p.kernel_size,
            padding: p.padding,
            dilation: p.dilation,
            ceil_mode: p.ceil_mode,
        }
    }
}

impl From<MaxPool2d> for burn_pool::MaxPool2d {
    fn from(p: MaxPool2d) -> Self {
        burn_pool::MaxPool2d {
            stride: p.stride,
            kernel_size: p.kernel_size,
            padding: p.padding,
            dilation: p.dilation,
            ceil_mode: p.ceil_mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::{Distribution, Tolerance};

    /// Output and input gradient equal Burn's layer on the same input, for ConvNet-S's pool,
    /// odd sizes, an overlapping padded window, dilation, ceil mode and `Same` padding.
    #[test]
    fn pools_like_burns_layer() {
        let device = selfsup_backend::test_device().autodiff();
        let configs = [
            MaxPool2dConfig::new([2, 2]),
            MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
            MaxPool2dConfig::new([2, 3])
                .with_strides([1, 2])
                .with_dilation([2, 1])
                .with_ceil_mode(true),
            MaxPool2dConfig::new([3, 3])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Same),
        ];
        for config in configs {
            let burn = config.init();
            let ours = MaxPool2d::from(burn.clone());
            for shape in [[3, 4, 8, 8], [2, 3, 7, 9], [1, 1, 5, 6]] {
                // Rounded values, so windows hold ties.
                let x = Tensor::<4>::random(shape, Distribution::Uniform(-3.0, 3.0), &device)
                    .round()
                    .require_grad();
                let g = Tensor::<4>::random(
                    burn.forward(x.clone()).dims(),
                    Distribution::Default,
                    &device,
                );
                let run = |y: Tensor<4>| {
                    let grads = (y.clone() * g.clone()).sum().backward();
                    (y.into_data(), x.grad(&grads).unwrap().into_data())
                };
                let (y_burn, dx_burn) = run(burn.forward(x.clone()));
                let (y_ours, dx_ours) = run(ours.forward(x.clone()));
                let exact = Tolerance::absolute(0.0);
                y_ours.assert_approx_eq::<f32>(&y_burn, exact);
                dx_ours.assert_approx_eq::<f32>(&dx_burn, Tolerance::absolute(1e-6));
            }
        }
    }
}
