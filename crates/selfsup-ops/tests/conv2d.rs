//! `selfsup_ops::conv2d` against its two references, on the backend named by
//! `SELFSUP_BACKEND` (`cargo xtask test-all` runs it on each): torch's
//! `torch.nn.functional.conv2d` (golden values in `fixtures/conv2d_golden.json`, made by
//! `fixtures/conv2d_golden.py`), and Burn's own `conv2d` on the same inputs, forward and
//! gradients. (And `batch_norm_train`'s shape message, the same on every backend.)

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use selfsup_backend::Backend;
use serde_json::Value;

fn backend() -> Backend {
    Backend::from_env().unwrap()
}

fn device() -> Device {
    selfsup_backend::test_device().autodiff()
}

/// `(rtol, atol)` for f32 against an f64 reference; software Vulkan sums in another order.
fn tolerance() -> (f32, f32) {
    match backend() {
        Backend::Wgpu | Backend::Vulkan | Backend::Cuda => (1e-3, 1e-3),
        _ => (1e-4, 1e-4),
    }
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    let (rtol, atol) = tolerance();
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rtol * w.abs() + atol * scale,
            "{what}[{i}]: got {g}, want {w} on {:?}",
            backend()
        );
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// A golden tensor's values, row-major, as f32.
fn floats(v: &Value) -> Vec<f32> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn tensor<const D: usize>(v: &Value, device: &Device) -> Tensor<D> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).unwrap();
    Tensor::from_data(TensorData::new(floats(v), shape), device)
}

fn pair(v: &Value) -> [usize; 2] {
    serde_json::from_value(v.clone()).unwrap()
}

/// `<y, G>` for one forward pass, and the gradients of x, weight and bias.
struct Run {
    y: Vec<f32>,
    dx: Option<Vec<f32>>,
    dw: Option<Vec<f32>>,
    db: Option<Vec<f32>>,
}

type ConvFn = fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>;

fn run(
    conv: ConvFn,
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    grad_output: &Tensor<4>,
    options: &ConvOptions<2>,
) -> Run {
    let y = conv(x.clone(), weight.clone(), bias.cloned(), options.clone());
    let grads = (y.clone() * grad_output.clone()).sum().backward();
    Run {
        y: values(y),
        dx: x.grad(&grads).map(values),
        dw: weight.grad(&grads).map(values),
        db: bias.and_then(|b| b.grad(&grads)).map(values),
    }
}

#[test]
fn equals_torch_golden_values() {
    let file: Value = serde_json::from_str(include_str!("fixtures/conv2d_golden.json")).unwrap();
    let device = device();
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() >= 8, "the golden file lost cases");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let inputs = &case["inputs"];
        let x = tensor::<4>(&inputs["x"], &device).require_grad();
        let weight = tensor::<4>(&inputs["weight"], &device).require_grad();
        let bias = (!inputs["bias"].is_null())
            .then(|| tensor::<1>(&inputs["bias"], &device).require_grad());
        let grad_output = tensor::<4>(&inputs["grad_output"], &device);
        let padding = pair(&case["padding"]);
        let options = ConvOptions::new(pair(&case["stride"]), padding, pair(&case["dilation"]), 1);
        let got = run(
            selfsup_ops::conv2d,
            &x,
            &weight,
            bias.as_ref(),
            &grad_output,
            &options,
        );

        let expected = &case["expected"];
        let want = floats;
        assert_close(&format!("{name}: y"), &got.y, &want(&expected["y"]));
        assert_close(
            &format!("{name}: dx"),
            &got.dx.unwrap(),
            &want(&expected["grad"]["x"]),
        );
        assert_close(
            &format!("{name}: dW"),
            &got.dw.unwrap(),
            &want(&expected["grad"]["weight"]),
        );
        if let Some(db) = got.db {
            assert_close(
                &format!("{name}: db"),
                &db,
                &want(&expected["grad"]["bias"]),
            );
        }
    }
}

/// SplitMix64: the same inputs on every backend.
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn leaf<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(random(n, seed), shape), device)
}

/// Forward and gradients equal Burn's `conv2d` on the same inputs.
fn against_burn(x_shape: [usize; 4], w_shape: [usize; 4], options: ConvOptions<2>, bias: bool) {
    let device = device();
    let x = leaf(x_shape, 1, &device).require_grad();
    let weight = leaf(w_shape, 2, &device).require_grad();
    let bias = bias.then(|| leaf([w_shape[0]], 3, &device).require_grad());
    let probe = burn::tensor::module::conv2d(
        x.clone().detach(),
        weight.clone().detach(),
        None,
        options.clone(),
    );
    let grad_output = leaf(probe.dims(), 4, &device);
    let ours = run(
        selfsup_ops::conv2d,
        &x,
        &weight,
        bias.as_ref(),
        &grad_output,
        &options,
    );
    let burn = run(
        burn::tensor::module::conv2d,
        &x,
        &weight,
        bias.as_ref(),
        &grad_output,
        &options,
    );
    let what = format!("x {x_shape:?}, weight {w_shape:?}, {options:?}");
    assert_close(&format!("{what}: y"), &ours.y, &burn.y);
    assert_close(&format!("{what}: dx"), &ours.dx.unwrap(), &burn.dx.unwrap());
    assert_close(&format!("{what}: dW"), &ours.dw.unwrap(), &burn.dw.unwrap());
    if let (Some(a), Some(b)) = (ours.db, burn.db) {
        assert_close(&format!("{what}: db"), &a, &b);
    }
}

#[test]
fn equals_burn_on_the_layers_selfsup_uses() {
    let pad1 = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    // ConvNet-S's first and inner layers, ResNet-18's stride-2 and 1×1 shortcut layers.
    against_burn([4, 1, 28, 28], [32, 1, 3, 3], pad1.clone(), false);
    against_burn([4, 32, 14, 14], [32, 32, 3, 3], pad1.clone(), false);
    against_burn(
        [3, 16, 8, 8],
        [32, 16, 3, 3],
        ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
        false,
    );
    against_burn(
        [3, 16, 8, 8],
        [32, 16, 1, 1],
        ConvOptions::new([2, 2], [0, 0], [1, 1], 1),
        false,
    );
    against_burn(
        [2, 8, 5, 5],
        [4, 8, 1, 1],
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        true,
    );
    // The decoder's output layer (bias), and odd geometries.
    against_burn([2, 32, 28, 28], [1, 32, 3, 3], pad1, true);
    against_burn(
        [1, 3, 9, 13],
        [5, 3, 3, 5],
        ConvOptions::new([1, 2], [2, 1], [2, 1], 1),
        true,
    );
}

#[test]
fn equals_burn_with_asymmetric_padding() {
    let options = ConvOptions::new_with_padding([2, 1], [(0, 1), (2, 0)], [1, 1], 1);
    against_burn([2, 3, 8, 7], [4, 3, 3, 3], options, false);
}

#[test]
fn grouped_convolutions_take_burns_op_and_agree() {
    against_burn(
        [2, 4, 6, 6],
        [6, 2, 3, 3],
        ConvOptions::new([1, 1], [1, 1], [1, 1], 2),
        true,
    );
}

#[test]
fn frozen_weights_or_constant_inputs_get_only_the_gradients_asked_for() {
    let device = device();
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let x = leaf([2, 3, 6, 6], 5, &device);
    let weight = leaf([4, 3, 3, 3], 6, &device);
    let grad_output = leaf([2, 4, 6, 6], 7, &device);
    let burn = run(
        burn::tensor::module::conv2d,
        &x.clone().require_grad(),
        &weight.clone().require_grad(),
        None,
        &grad_output,
        &options,
    );

    let only_weight = run(
        selfsup_ops::conv2d,
        &x,
        &weight.clone().require_grad(),
        None,
        &grad_output,
        &options,
    );
    assert!(only_weight.dx.is_none());
    assert_close(
        "dW, constant input",
        &only_weight.dw.unwrap(),
        burn.dw.as_ref().unwrap(),
    );

    let only_input = run(
        selfsup_ops::conv2d,
        &x.clone().require_grad(),
        &weight,
        None,
        &grad_output,
        &options,
    );
    assert!(only_input.dw.is_none());
    assert_close(
        "dx, frozen weight",
        &only_input.dx.unwrap(),
        burn.dx.as_ref().unwrap(),
    );
}

#[test]
fn inference_without_autodiff_equals_burn() {
    let device = selfsup_backend::test_device();
    let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    let x = leaf([3, 5, 9, 9], 8, &device);
    let weight = leaf([7, 5, 3, 3], 9, &device);
    let bias = leaf([7], 10, &device);
    let ours = selfsup_ops::conv2d(
        x.clone(),
        weight.clone(),
        Some(bias.clone()),
        options.clone(),
    );
    let burn = burn::tensor::module::conv2d(x, weight, Some(bias), options);
    assert_close("inference", &values(ours), &values(burn));
}

#[test]
fn own_kernels_serve_flex_and_libtorch_devices() {
    let expected = matches!(backend(), Backend::Flex | Backend::Tch);
    assert_eq!(selfsup_ops::has_own_kernel(&device()), expected);
    assert_eq!(selfsup_ops::has_own_kernel(&device().inner()), expected);
}

#[test]
#[should_panic(expected = "the input has 3 channels but the weight [4, 2, 3, 3] expects 2")]
fn mismatched_channels_panic_naming_both() {
    let device = device();
    let x = leaf([1, 3, 5, 5], 1, &device);
    let weight = leaf([4, 2, 3, 3], 2, &device);
    let _ = selfsup_ops::conv2d(x, weight, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1));
}

#[test]
#[should_panic(expected = "batch_norm: gamma has shape [3], the input [2, 4, 5] has 4 channels")]
fn batch_norm_with_the_wrong_gamma_panics_naming_both_shapes() {
    let device = device();
    let x = leaf([2, 4, 5], 1, &device);
    let _ = selfsup_ops::batch_norm_train(x, leaf([3], 2, &device), leaf([4], 3, &device), 1e-5);
}

#[test]
#[should_panic(expected = "conv2d: the bias has shape [3], the weight has 4 output channels")]
fn a_bias_of_the_wrong_length_panics_naming_both() {
    let device = device();
    let x = leaf([1, 2, 5, 5], 1, &device);
    let weight = leaf([4, 2, 3, 3], 2, &device);
    let bias = leaf([3], 3, &device);
    let _ = selfsup_ops::conv2d(
        x,
        weight,
        Some(bias),
        ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
    );
}
