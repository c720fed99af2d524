//! Summing every parameter's gradient over the ranks, in one collective.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use crate::collective::current;

/// The float parameters of a module that train, in the module's (deterministic) order.
struct Trainable {
    params: Vec<(ParamId, Vec<usize>)>,
}

impl ModuleVisitor for Trainable {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if param.is_require_grad() {
            self.params.push((param.id, param.shape().to_vec()));
        }
    }
}

/// Replaces every gradient in `grads` by its sum over the ranks (one all-reduce of one flat
/// buffer), so that the optimizer steps of all replicas are the step of the global batch and
/// the replicas stay identical. A parameter that has a gradient on any rank has one on all
/// afterwards (zero where a rank did not use it); one that has none anywhere stays without.
pub fn all_reduce_gradients<M: Module>(module: &M, mut grads: GradientsParams) -> GradientsParams {
    let comm = current();
    if comm.world_size() == 1 {
        return grads;
    }
    let mut trainable = Trainable { params: Vec::new() };
    module.visit(&mut trainable);
    // [a presence flag per parameter, then each one's gradient or zeros], in visiting order.
    let sizes: Vec<usize> = trainable
        .params
        .iter()
        .map(|(_, shape)| shape.iter().product())
        .collect();
    let found: Vec<Option<(TensorData, Device)>> = trainable
        .params
        .iter()
        .map(|(id, shape)| take_grad(&mut grads, *id, shape.len()))
        .collect();
    let mut buffer: Vec<f32> = found
        .iter()
        .map(|g| if g.is_some() { 1.0 } else { 0.0 })
        .collect();
    buffer.reserve(sizes.iter().sum());
    for (grad, size) in found.iter().zip(&sizes) {
        match grad {
            Some((data, _)) => buffer.extend(
                data.clone()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("float gradients"),
            ),
            None => buffer.extend(std::iter::repeat_n(0.0, *size)),
        }
    }
    // Gradients live on the plain (non-autodiff) twin of the module's device.
    let device = found
        .iter()
        .flatten()
        .map(|(_, device)| device.clone())
        .next();
    comm.all_reduce_sum(&mut buffer);
    let Some(device) = device.or_else(|| module.devices().into_iter().next().map(|d| d.inner()))
    else {
        return grads;
    };
    let flags = trainable.params.len();
    let mut offset = flags;
    for (i, ((id, shape), size)) in trainable.params.iter().zip(&sizes).enumerate() {
        let values = buffer[offset..offset + size].to_vec();
        offset += size;
        if buffer[i] > 0.0 {
            put_grad(&mut grads, *id, values, shape, &device);
        }
    }
    grads
}

fn take_grad(
    grads: &mut GradientsParams,
    id: ParamId,
    rank: usize,
) -> Option<(TensorData, Device)> {
    macro_rules! take {
        ($($d:literal),*) => {
            match rank {
                $($d => grads.remove::<$d>(id).map(|g| {
                    let device = g.device();
                    (g.into_data(), device)
                }),)*
                other => panic!("all_reduce_gradients: parameters of rank {other} are not supported"),
            }
        };
    }
    take!(1, 2, 3, 4, 5, 6)
}

fn put_grad(
    grads: &mut GradientsParams,
    id: ParamId,
    values: Vec<f32>,
    shape: &[usize],
    device: &Device,
) {
    let data = TensorData::new(values, shape.to_vec());
    macro_rules! put {
        ($($d:literal),*) => {
            match shape.len() {
                $($d => grads.register::<$d>(id, Tensor::from_data(data, device)),)*
                other => panic!("all_reduce_gradients: parameters of rank {other} are not supported"),
            }
        };
    }
    put!(1, 2, 3, 4, 5, 6)
}
