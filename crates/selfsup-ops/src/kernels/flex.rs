//! flex: the im2col + GEMM kernels of [`super::im2col`] on the tensors' own memory.

use super::im2col::{self, Geometry};
use super::{Conv2dKernels, Needs};
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
