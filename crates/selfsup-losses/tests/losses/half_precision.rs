//! NT-Xent and VICReg stay finite in half precision. flex supports f16 and bf16 arithmetic, so
//! both run there; other backends run whichever of the two they support.

use crate::common::*;
use burn::tensor::{FloatDType, Tensor};
use selfsup_backend::Backend;
use selfsup_losses::{NtXentLossConfig, VicRegLossConfig};

#[test]
fn nt_xent_and_vicreg_are_finite_in_half_precision() {
    let device = device();
    let mut rng = Rng::new(17);
    let (n, d) = (32, 16);
    let (a, b) = (rng.values(n * d), rng.values(n * d));
    let mut ran = Vec::new();
    for dtype in [FloatDType::F16, FloatDType::BF16] {
        if !device.supports_dtype(dtype) {
            continue;
        }
        let half = |v: &Vec<f32>| -> Tensor<2> {
            matrix(v.clone(), n, d, &device).cast(dtype).require_grad()
        };
        let (za, zb) = (half(&a), half(&b));
        for (name, loss) in [
            (
                "nt_xent τ=0.1",
                NtXentLossConfig::new()
                    .with_temperature(0.1)
                    .init()
                    .forward(za.clone(), zb.clone()),
            ),
            (
                "vicreg",
                VicRegLossConfig::new()
                    .init()
                    .forward(za.clone(), zb.clone()),
            ),
        ] {
            let value = loss.clone().cast(FloatDType::F32);
            let v = scalar(value);
            assert!(v.is_finite() && v > 0.0, "{name} in {dtype:?}: {v}");
            let g = loss.backward();
            for leaf in [&za, &zb] {
                let grad = leaf.grad(&g).expect("gradient").cast(FloatDType::F32);
                assert_finite(&format!("{name} grad in {dtype:?}"), &values(grad));
            }
        }
        ran.push(dtype);
    }
    if Backend::from_env().unwrap() == Backend::Flex {
        assert_eq!(
            ran,
            [FloatDType::F16, FloatDType::BF16],
            "flex supports both"
        );
    }
    println!("half precision checked in {ran:?}");
}
