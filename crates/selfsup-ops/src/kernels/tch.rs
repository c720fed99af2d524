//! LibTorch: libtorch's own convolution and batch norm, and their own backward passes (oneDNN's backward-data and
//! backward-weights kernels on the CPU, cuDNN's on CUDA), reached through torch's autograd.
//!
//! The forward runs `conv2d` on detached aliases of the input and the weight that require
//! grad (only those the backward needs), so torch records the node it would record in
//! PyTorch; Burn receives a detached alias of the output, and keeps the recorded output for
//! the backward, which asks torch for `∂⟨y, G⟩/∂x` and `∂⟨y, G⟩/∂W` — exactly `Gᵀ`-products,
//! since `⟨y, G⟩` is linear in `y` with gradient `G`. Nothing is recomputed and no
//! batch/channel swap is made. Memory: what PyTorch's own convolution keeps (the input and
//! the weight, shared with Burn's tensors).

#![allow(deprecated)] // burn-tch is deprecated upstream; selfsup keeps it for its users.

use super::{BatchNormKernels, Conv2dKernels, Needs};
use burn::backend::LibTorch;
use burn::backend::libtorch::TchTensor;
use burn::tensor::ops::ConvOptions;

/// The recorded torch node of one convolution.
#[derive(Clone, Debug)]
pub struct TorchConv {
    x: TchTensor,
    weight: TchTensor,
    y: TchTensor,
}

fn conv(x: &tch::Tensor, weight: &tch::Tensor, options: &ConvOptions<2>) -> tch::Tensor {
    let [(top, bottom), (left, right)] = options.padding;
    // torch pads both sides alike; an asymmetric padding is applied to the input first.
    let (x, padding) = if options.is_asymmetric() {
        let padded = x.constant_pad_nd([left as i64, right as i64, top as i64, bottom as i64]);
        (padded, [0, 0])
    } else {
        (x.shallow_clone(), [top as i64, left as i64])
    };
    x.conv2d(
        weight,
        None::<tch::Tensor>,
        options.stride.map(|s| s as i64),
        padding,
        options.dilation.map(|d| d as i64),
        options.groups as i64,
    )
}

impl Conv2dKernels for LibTorch {
    type Saved = TorchConv;

    fn conv2d_forward(
        x: TchTensor,
        weight: TchTensor,
        options: &ConvOptions<2>,
        needs: Needs,
    ) -> (TchTensor, Option<TorchConv>) {
        if needs == Needs::NONE {
            return (
                TchTensor::new(conv(&x.tensor, &weight.tensor, options)),
                None,
            );
        }
        tch::with_grad(|| {
            let x = x.tensor.detach().set_requires_grad(needs.input);
            let weight = weight.tensor.detach().set_requires_grad(needs.weight);
            let y = conv(&x, &weight, options);
            let out = TchTensor::new(y.detach());
            let saved = TorchConv {
                x: TchTensor::new(x),
                weight: TchTensor::new(weight),
                y: TchTensor::new(y),
            };
            (out, Some(saved))
        })
    }

    fn conv2d_backward(
        saved: TorchConv,
        grad: TchTensor,
        _options: &ConvOptions<2>,
        needs: Needs,
    ) -> (Option<TchTensor>, Option<TchTensor>) {
        let mut inputs = Vec::with_capacity(2);
        if needs.input {
            inputs.push(&saved.x.tensor);
        }
        if needs.weight {
            inputs.push(&saved.weight.tensor);
        }
        let mut grads = tch::with_grad(|| {
            let inner = (&saved.y.tensor * &grad.tensor).sum(saved.y.tensor.kind());
            tch::Tensor::run_backward(&[inner], &inputs, false, false)
        })
        .into_iter();
        let dx = needs
            .input
            .then(|| TchTensor::new(grads.next().expect("input gradient")));
        let dw = needs
            .weight
            .then(|| TchTensor::new(grads.next().expect("weight gradient")));
        (dx, dw)
    }
}

/// The recorded torch node of one batch normalisation.
#[derive(Clone, Debug)]
pub struct TorchBatchNorm {
    x: TchTensor,
    gamma: TchTensor,
    beta: TchTensor,
    y: TchTensor,
}

/// libtorch's own `native_batch_norm` in training mode (batch statistics, no running
/// statistics), optionally followed by its own ReLU, and their own backward through
/// autograd, as for the convolution above.
impl BatchNormKernels for LibTorch {
    type Saved = TorchBatchNorm;

    fn batch_norm_forward(
        x: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        epsilon: f64,
        relu: bool,
        track: bool,
    ) -> (TchTensor, TchTensor, TchTensor, Option<TorchBatchNorm>) {
        tch::with_grad(|| {
            let alias = |t: &TchTensor| t.tensor.detach().set_requires_grad(track);
            let (x, gamma, beta) = (alias(&x), alias(&gamma), alias(&beta));
            let (y, mean, inv_std) = x.native_batch_norm(
                Some(&gamma),
                Some(&beta),
                None::<&tch::Tensor>,
                None::<&tch::Tensor>,
                true,
                0.0,
                epsilon,
            );
            // The fused ReLU is torch's own, recorded in the same graph, as `threshold(0, 0)`
            // (ReLU's values and gradient): torch's `relu` keeps its output for the backward,
            // and that output is the tensor Burn receives and may update in place, which
            // torch would then refuse; `threshold` keeps its input, which only torch holds.
            let y = if relu { y.threshold(0.0, 0.0) } else { y };
            // torch keeps 1/√(σ² + ε); Burn's op returns σ² (biased).
            let variance = (inv_std.detach().square().reciprocal() - epsilon).clamp_min(0.0);
            let out = TchTensor::new(y.detach());
            let saved = track.then(|| TorchBatchNorm {
                x: TchTensor::new(x),
                gamma: TchTensor::new(gamma),
                beta: TchTensor::new(beta),
                y: TchTensor::new(y),
            });
            // A copy: torch's node keeps `mean` for its backward, and Burn may update the
            // returned tensor in place (the running statistics), which torch would refuse.
            (
                out,
                TchTensor::new(mean.detach().copy()),
                TchTensor::new(variance),
                saved,
            )
        })
    }

    fn batch_norm_backward(
        saved: TorchBatchNorm,
        grad: TchTensor,
    ) -> (TchTensor, TchTensor, TchTensor) {
        let inputs = [&saved.x.tensor, &saved.gamma.tensor, &saved.beta.tensor];
        let grads = tch::with_grad(|| {
            let inner = (&saved.y.tensor * &grad.tensor).sum(saved.y.tensor.kind());
            tch::Tensor::run_backward(&[inner], &inputs, false, false)
        });
        let [dx, dgamma, dbeta]: [tch::Tensor; 3] =
            grads.try_into().expect("three gradients from torch");
        (
            TchTensor::new(dx),
            TchTensor::new(dgamma),
            TchTensor::new(dbeta),
        )
    }
}
