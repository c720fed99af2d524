//! Helpers shared by the loss tests: reproducible inputs and gradient read-out on the device
//! chosen by `SELFSUP_BACKEND`.
#![allow(dead_code)] // Each test file uses its own subset.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// The autodiff device the tests run on.
pub fn device() -> Device {
    selfsup_backend::test_device().autodiff()
}

/// SplitMix64 + Box–Muller: the same numbers on every backend and platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    pub fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.normal()).collect()
    }
}

/// A `[rows, cols]` tensor from row-major values.
pub fn matrix(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// A random standard-normal `[rows, cols]` leaf that requires a gradient.
pub fn leaf(rng: &mut Rng, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    matrix(rng.values(rows * cols), rows, cols, device).require_grad()
}

pub fn labels(values: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

pub fn scalar(t: Tensor<1>) -> f32 {
    t.into_scalar::<f32>()
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Gradient of `loss` with respect to each leaf (zeros when it did not reach the leaf).
pub fn grads(loss: &Tensor<1>, leaves: &[&Tensor<2>]) -> Vec<Vec<f32>> {
    let g = loss.backward();
    leaves
        .iter()
        .map(|leaf| match leaf.grad(&g) {
            Some(grad) => values(grad),
            None => vec![0.0; leaf.dims().iter().product()],
        })
        .collect()
}

/// Panics unless two value lists agree within `rtol·|want| + atol`.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rtol * w.abs() + atol,
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

pub fn assert_finite(what: &str, values: &[f32]) {
    for (i, v) in values.iter().enumerate() {
        assert!(v.is_finite(), "{what}[{i}] is not finite: {v}");
    }
}
