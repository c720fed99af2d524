//! flex: the im2col + GEMM convolution of `im2col.rs` and the fused batch norm of
//! `batch_norm.rs`, on the tensors' own memory.

use super::batch_norm;
use super::im2col::{self, Geometry};
use super::{BatchNormKernels, Conv2dKernels, Needs};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, TensorData};

/// The tensor as a contiguous row-major tensor, and its shape.
fn contiguous(tensor: FlexTensor) -> (FlexTensor, [usize; 4]) {
    assert_eq!(
        tensor.dtype(),
        DType::F32,
        "selfsup conv2d: flex kernel takes f32 tensors, got {:?}",
        tensor.dtype()
    );
    let tensor = if tensor.layout().contiguous_offsets().is_some() {
        tensor
    } else {
        tensor.to_contiguous()
    };
    let shape = tensor.layout().shape();
    let dims = [shape[0], shape[1], shape[2], shape[3]];
    (tensor, dims)
}

fn values(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("a contiguous f32 flex tensor")
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
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
        let (x, x_shape) = contiguous(x);
        let (weight, w_shape) = contiguous(weight);
        let geometry = Geometry::new(x_shape, w_shape, options);
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
        let (grad, _) = contiguous(grad);
        let x_shape = {
            let s = x.layout().shape();
            [s[0], s[1], s[2], s[3]]
        };
        let w_shape = {
            let s = weight.layout().shape();
            [s[0], s[1], s[2], s[3]]
        };
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
    let dims: Vec<usize> = (0..shape.num_dims()).map(|i| shape[i]).collect();
    batch_norm::Layout {
        n: dims[0],
        c: dims[1],
        s: dims[2..].iter().product(),
    }
}

fn contiguous_any(tensor: FlexTensor) -> FlexTensor {
    assert_eq!(
        tensor.dtype(),
        DType::F32,
        "selfsup batch_norm: flex kernel takes f32 tensors, got {:?}",
        tensor.dtype()
    );
    if tensor.layout().contiguous_offsets().is_some() {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

fn shaped(values: Vec<f32>, like: &FlexTensor) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, like.layout().shape().clone()))
}

fn vector(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::from_data(TensorData::new(values, [n]))
}

impl BatchNormKernels for Flex {
    /// The input, γ, the batch mean and variance, ε.
    type Saved = (FlexTensor, FlexTensor, FlexTensor, FlexTensor, f64);

    fn batch_norm_forward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        track: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor, Option<Self::Saved>) {
        let (x, gamma, beta) = (
            contiguous_any(x),
            contiguous_any(gamma),
            contiguous_any(beta),
        );
        let (y, mean, variance) = batch_norm::forward(
            bn_layout(&x),
            values(&x),
            values(&gamma),
            values(&beta),
            epsilon,
        );
        let y = shaped(y, &x);
        let (mean, variance) = (vector(mean), vector(variance));
        let saved = track.then(|| (x, gamma, mean.clone(), variance.clone(), epsilon));
        (y, mean, variance, saved)
    }

    fn batch_norm_backward(
        (x, gamma, mean, variance, epsilon): Self::Saved,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let grad = contiguous_any(grad);
        let (dx, dgamma, dbeta) = batch_norm::backward(
            bn_layout(&x),
            values(&x),
            values(&gamma),
            values(&mean),
            values(&variance),
            epsilon,
            values(&grad),
        );
        (shaped(dx, &x), vector(dgamma), vector(dbeta))
    }
}
