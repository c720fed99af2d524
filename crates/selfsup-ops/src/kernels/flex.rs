//! flex: the im2col + GEMM convolution of `im2col.rs`, the fused batch norm of
//! `batch_norm.rs` and the max pooling of `max_pool.rs`, on the tensors' own memory.

use super::batch_norm;
use super::im2col::{self, Geometry};
use super::max_pool::{self, PoolGeometry};
use super::{BatchNormKernels, Conv2dKernels, MaxPoolKernels, Needs};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape, TensorData};

/// The tensor as a contiguous row-major f32 tensor (`op` names the caller in the panic).
fn contiguous_f32(tensor: FlexTensor, op: &str) -> FlexTensor {
    assert_eq!(
        tensor.dtype(),
        DType::F32,
        "selfsup {op}: the flex kernel takes f32 tensors, got {:?}",
        tensor.dtype()
    );
    if tensor.layout().contiguous_offsets().is_some() {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

fn dims4(tensor: &FlexTensor) -> [usize; 4] {
    let s = tensor.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

fn values(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("a contiguous f32 flex tensor")
}

fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl Conv2dKernels for Flex {
    type Saved = (FlexTensor, FlexTensor);

    fn conv2d_forward(
        x: FlexTensor,
        weight: FlexTensor,
        options: &ConvOptions<2>,
        needs: Needs,
    ) -> (FlexTensor, Option<Self::Saved>) {
        let (x, weight) = (
            contiguous_f32(x, "conv2d"),
            contiguous_f32(weight, "conv2d"),
        );
        let geometry = Geometry::new(dims4(&x), dims4(&weight), options);
        let y = im2col::forward(&geometry, values(&x), values(&weight));
        let saved = (needs != Needs::NONE).then_some((x, weight));
        (tensor(y, geometry.output_shape()), saved)
    }

    fn conv2d_backward(
        (x, weight): Self::Saved,
        grad: FlexTensor,
        options: &ConvOptions<2>,
        needs: Needs,
    ) -> (Option<FlexTensor>, Option<FlexTensor>) {
        let grad = contiguous_f32(grad, "conv2d");
        let (x_shape, w_shape) = (dims4(&x), dims4(&weight));
        let geometry = Geometry::new(x_shape, w_shape, options);
        let (dx, dw) = im2col::backward(
            &geometry,
            values(&x),
            values(&weight),
            values(&grad),
            needs.input,
            needs.weight,
        );
        (
            dx.map(|dx| tensor(dx, x_shape)),
            dw.map(|dw| tensor(dw, w_shape)),
        )
    }
}

/// `[n, c, s]` of a batch-norm input.
fn bn_layout(x: &FlexTensor) -> batch_norm::Layout {
    let shape = x.layout().shape();
    batch_norm::Layout {
        n: shape[0],
        c: shape[1],
        s: (2..shape.num_dims()).map(|i| shape[i]).product(),
    }
}

impl BatchNormKernels for Flex {
    /// The input, γ, the batch mean and variance, ε, and the forward's `(scale, shift)` when
    /// a ReLU was fused.
    type Saved = (
        FlexTensor,
        FlexTensor,
        FlexTensor,
        FlexTensor,
        f64,
        Option<(Vec<f32>, Vec<f32>)>,
    );

    fn batch_norm_forward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        relu: bool,
        track: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor, Option<Self::Saved>) {
        let [x, gamma, beta] = [x, gamma, beta].map(|t| contiguous_f32(t, "batch_norm"));
        let out = batch_norm::forward(
            bn_layout(&x),
            values(&x),
            values(&gamma),
            values(&beta),
            epsilon,
            relu,
        );
        let y = tensor(out.y, x.layout().shape().clone());
        let c = out.mean.len();
        let (mean, variance) = (tensor(out.mean, [c]), tensor(out.variance, [c]));
        let gate = relu.then_some((out.scale, out.shift));
        let saved = track.then(|| (x, gamma, mean.clone(), variance.clone(), epsilon, gate));
        (y, mean, variance, saved)
    }

    fn batch_norm_backward(
        (x, gamma, mean, variance, epsilon, gate): Self::Saved,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let grad = contiguous_f32(grad, "batch_norm");
        let (dx, dgamma, dbeta) = batch_norm::backward(
            bn_layout(&x),
            values(&x),
            values(&gamma),
            values(&mean),
            values(&variance),
            epsilon,
            values(&grad),
            gate.as_ref().map(|(scale, shift)| (&scale[..], &shift[..])),
        );
        let c = dgamma.len();
        (
            tensor(dx, x.layout().shape().clone()),
            tensor(dgamma, [c]),
            tensor(dbeta, [c]),
        )
    }
}

impl MaxPoolKernels for Flex {
    /// The pooling's geometry, the input shape and each maximum's position in its plane.
    type Saved = (PoolGeometry, [usize; 4], Vec<u32>);

    fn max_pool2d_forward(
        x: FlexTensor,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
        track: bool,
    ) -> (FlexTensor, Option<Self::Saved>) {
        let x = contiguous_f32(x, "max_pool2d");
        let shape = dims4(&x);
        let g = PoolGeometry::new(shape, kernel_size, stride, padding, dilation, ceil_mode);
        let (y, positions) = max_pool::forward(&g, values(&x), track);
        let (ho, wo) = g.output_size();
        let y = tensor(y, [shape[0], shape[1], ho, wo]);
        (y, positions.map(|p| (g, shape, p)))
    }

    fn max_pool2d_backward((g, shape, positions): Self::Saved, grad: FlexTensor) -> FlexTensor {
        let grad = contiguous_f32(grad, "max_pool2d");
        tensor(max_pool::backward(&g, values(&grad), &positions), shape)
    }
}
