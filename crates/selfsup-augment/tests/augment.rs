//! Augmentations on inputs whose result is known by construction, on the device the xtask picks.

use burn::tensor::{Tensor, TensorData, Tolerance};
use selfsup_augment::*;

fn device() -> burn::tensor::Device {
    selfsup_backend::test_device()
}

fn images(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, shape), &device())
}

/// `n` distinct images `[n, c, h, w]` with values in `[0, 1]`.
fn pattern(shape: [usize; 4]) -> Tensor<4> {
    let count: usize = shape.iter().product();
    let values = (0..count)
        .map(|i| ((i * 37 + 11) % 101) as f32 / 100.0)
        .collect();
    images(values, shape)
}

fn host(x: Tensor<4>) -> Vec<f32> {
    x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn assert_close(got: Tensor<4>, want: Tensor<4>, tolerance: f64) {
    got.into_data()
        .assert_approx_eq::<f32>(&want.into_data(), Tolerance::absolute(tolerance));
}

fn run(steps: Vec<Augmentation>, x: Tensor<4>, seed: u64) -> Tensor<4> {
    Pipeline::new(steps).apply(x, &mut Rng::new(seed))
}

#[test]
fn a_full_square_crop_at_the_same_size_is_the_identity() {
    let x = pattern([3, 2, 7, 7]);
    let crop = Augmentation::ResizedCrop {
        size: [7, 7],
        scale: [1.0, 1.0],
        ratio: [1.0, 1.0],
    };
    assert_close(run(vec![crop], x.clone(), 1), x, 1e-5);
}

#[test]
fn bilinear_upsampling_keeps_a_ramp_linear_inside() {
    // A horizontal ramp 0, 1, …, 7 (scaled), cropped whole and resized 8 → 16: away from the
    // borders the output is the ramp sampled at the new pixel centres.
    let ramp: Vec<f32> = (0..8 * 8).map(|i| (i % 8) as f32 / 8.0).collect();
    let out = host(run(
        vec![Augmentation::ResizedCrop {
            size: [16, 16],
            scale: [1.0, 1.0],
            ratio: [1.0, 1.0],
        }],
        images(ramp, [1, 1, 8, 8]),
        3,
    ));
    // The borders as torch.nn.functional.interpolate(mode="bilinear", align_corners=False)
    // gives them (edge pixels clamped): 0.0 at (0, 0), 0.875 at (0, 15) and (15, 15).
    for (index, want) in [(0, 0.0), (15, 0.875), (15 * 16 + 15, 0.875)] {
        assert!(
            (out[index] - want).abs() < 1e-6,
            "border {index}: {}",
            out[index]
        );
    }
    for row in 1..15 {
        for col in 1..15 {
            let source = (col as f32 + 0.5) / 2.0 - 0.5;
            let got = out[row * 16 + col];
            assert!(
                (got - source / 8.0).abs() < 1e-5,
                "pixel ({row}, {col}): got {got}, want {}",
                source / 8.0
            );
        }
    }
}

#[test]
fn crops_change_size_and_stay_in_range() {
    let x = pattern([4, 1, 28, 28]);
    let out = run(
        vec![Augmentation::ResizedCrop {
            size: [12, 10],
            scale: [0.05, 1.0],
            ratio: [0.5, 2.0],
        }],
        x,
        5,
    );
    assert_eq!(out.dims(), [4, 1, 12, 10]);
    for v in host(out) {
        assert!((-1e-5..=1.0 + 1e-5).contains(&v), "value {v} left [0, 1]");
    }
}

#[test]
fn flipping_twice_is_the_identity_and_once_mirrors() {
    let x = pattern([2, 3, 5, 6]);
    let flip = Augmentation::HorizontalFlip { p: 1.0 };
    let once = host(run(vec![flip.clone()], x.clone(), 0));
    let values = host(x.clone());
    for row in 0..2 * 3 * 5 {
        for col in 0..6 {
            assert_eq!(once[row * 6 + col], values[row * 6 + 5 - col]);
        }
    }
    assert_close(run(vec![flip.clone(), flip], x.clone(), 0), x, 1e-6);
}

#[test]
fn the_same_seed_gives_the_same_views_and_another_seed_other_views() {
    let x = pattern([8, 1, 28, 28]);
    let pipeline = Pipeline::simclr_grayscale(28);
    let a = pipeline.apply(x.clone(), &mut Rng::new(7));
    let b = pipeline.apply(x.clone(), &mut Rng::new(7));
    let c = pipeline.apply(x, &mut Rng::new(8));
    assert_eq!(host(a.clone()), host(b));
    let difference: f32 = host(a)
        .iter()
        .zip(host(c))
        .map(|(p, q)| (p - q).abs())
        .sum();
    assert!(
        difference > 1.0,
        "different seeds gave nearly equal views ({difference})"
    );
}

#[test]
fn blurring_keeps_a_constant_image_and_smooths_a_spike() {
    let blur = Augmentation::GaussianBlur {
        sigma: [1.0, 1.0],
        p: 1.0,
    };
    let constant = images(vec![0.25; 2 * 9 * 9], [2, 1, 9, 9]);
    assert_close(run(vec![blur.clone()], constant.clone(), 0), constant, 1e-6);
    let mut spike = vec![0.0; 81];
    spike[40] = 1.0;
    let out = host(run(vec![blur], images(spike, [1, 1, 9, 9]), 0));
    let total: f32 = out.iter().sum();
    assert!((total - 1.0).abs() < 1e-5, "mass {total} not kept");
    // The 2-D kernel is the outer product of the 1-D one: centre / neighbour = e^{1/2}.
    assert!((out[40] / out[41] - 0.5f32.exp()).abs() < 1e-4);
    assert!((out[41] - out[49]).abs() < 1e-7 && (out[39] - out[31]).abs() < 1e-7);
}

#[test]
fn jitter_without_strength_is_the_identity_and_with_it_stays_in_range() {
    let x = pattern([4, 1, 6, 6]);
    let none = Augmentation::ColorJitter {
        brightness: 0.0,
        contrast: 0.0,
        p: 1.0,
    };
    assert_close(run(vec![none], x.clone(), 0), x.clone(), 1e-6);
    let strong = Augmentation::ColorJitter {
        brightness: 0.4,
        contrast: 0.4,
        p: 1.0,
    };
    let out = host(run(vec![strong], x.clone(), 0));
    assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_ne!(out, host(x));
}

#[test]
fn contrast_scales_around_the_image_mean() {
    // Brightness 0 and contrast factor drawn in [0.5, 1.5]: every pixel's distance to the mean
    // scales by the same factor within an image.
    let x = images(vec![0.3, 0.5, 0.5, 0.7], [1, 1, 2, 2]);
    let out = host(run(
        vec![Augmentation::ColorJitter {
            brightness: 0.0,
            contrast: 0.5,
            p: 1.0,
        }],
        x,
        9,
    ));
    let factor = (out[3] - out[0]) / 0.4;
    assert!((0.5..=1.5).contains(&factor), "factor {factor}");
    assert!((out[1] - 0.5).abs() < 1e-6 && (out[2] - 0.5).abs() < 1e-6);
    assert!((out[0] - (0.5 - 0.2 * factor)).abs() < 1e-6);
}

#[test]
fn solarize_at_zero_inverts_everything() {
    let x = pattern([2, 1, 4, 4]);
    let out = run(
        vec![Augmentation::Solarize {
            threshold: 0.0,
            p: 1.0,
        }],
        x.clone(),
        0,
    );
    assert_close(out, x.neg().add_scalar(1.0), 1e-6);
}

#[test]
fn grayscale_makes_rgb_channels_equal_to_the_luma() {
    let x = pattern([2, 3, 4, 4]);
    let values = host(x.clone());
    let out = host(run(vec![Augmentation::Grayscale { p: 1.0 }], x, 0));
    for image in 0..2 {
        for pixel in 0..16 {
            let at = |c: usize| image * 48 + c * 16 + pixel;
            let luma = 0.299 * values[at(0)] + 0.587 * values[at(1)] + 0.114 * values[at(2)];
            for c in 0..3 {
                assert!((out[at(c)] - luma).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn rotation_keeps_a_centred_disk_and_zero_degrees_changes_nothing() {
    let x = pattern([2, 1, 8, 8]);
    let still = Augmentation::Rotation {
        degrees: 0.0,
        p: 1.0,
    };
    assert_close(run(vec![still], x.clone(), 0), x, 1e-5);
    // A wide Gaussian blob is (nearly) rotation-invariant; bilinear resampling blurs a little.
    let blob: Vec<f32> = (0..32 * 32)
        .map(|i| {
            let (r, c) = ((i / 32) as f32 - 15.5, (i % 32) as f32 - 15.5);
            (-(r * r + c * c) / 50.0).exp()
        })
        .collect();
    let blob = images(blob, [1, 1, 32, 32]);
    let rotated = run(
        vec![Augmentation::Rotation {
            degrees: 180.0,
            p: 1.0,
        }],
        blob.clone(),
        4,
    );
    assert_close(rotated, blob, 0.02);
}

#[test]
fn erasing_and_patch_masking_zero_the_asked_area() {
    let ones = images(vec![1.0; 3 * 64], [3, 1, 8, 8]);
    let erased = host(run(
        vec![Augmentation::RandomErasing {
            scale: [0.25, 0.25],
            ratio: [1.0, 1.0],
            p: 1.0,
        }],
        ones.clone(),
        2,
    ));
    for image in erased.chunks(64) {
        assert_eq!(image.iter().filter(|&&v| v == 0.0).count(), 16);
    }
    let masked = host(run(
        vec![Augmentation::PatchMask {
            patch: 2,
            ratio: 0.5,
        }],
        ones,
        2,
    ));
    for image in masked.chunks(64) {
        assert_eq!(image.iter().filter(|&&v| v == 0.0).count(), 32);
    }
}

#[test]
fn noise_of_zero_std_is_the_identity() {
    let x = pattern([2, 1, 5, 5]);
    let quiet = Augmentation::GaussianNoise { std: 0.0, p: 1.0 };
    assert_close(run(vec![quiet], x.clone(), 0), x.clone(), 1e-7);
    let loud = Augmentation::GaussianNoise { std: 0.2, p: 1.0 };
    assert_ne!(host(run(vec![loud], x.clone(), 0)), host(x));
}

#[test]
fn presets_make_the_views_their_methods_expect() {
    let x = pattern([4, 1, 28, 28]);
    let mut rng = Rng::new(0);
    let dino = views(&Pipeline::dino_multi_crop(28, 12, 4), x.clone(), &mut rng);
    let shapes: Vec<[usize; 4]> = dino.iter().map(|v| v.dims()).collect();
    assert_eq!(shapes[..2], [[4, 1, 28, 28]; 2]);
    assert_eq!(shapes[2..], [[4, 1, 12, 12]; 4]);
    let [a, b] = Pipeline::byol_pair(28);
    assert_ne!(a, b);
    let rgb = Pipeline::simclr_rgb(16).apply(pattern([2, 3, 20, 20]), &mut rng);
    assert_eq!(rgb.dims(), [2, 3, 16, 16]);
    // Made to the aspect of 8×12 images, every view keeps it (DINO's locals too).
    let wide = pattern([2, 1, 8, 12]);
    let view = Pipeline::simclr_grayscale(8).with_aspect(1.5);
    assert_eq!(view.apply(wide.clone(), &mut rng).dims(), [2, 1, 8, 12]);
    let locals: Vec<Pipeline> = Pipeline::dino_multi_crop(8, 4, 1)
        .into_iter()
        .map(|p| p.with_aspect(1.5))
        .collect();
    let shapes: Vec<[usize; 4]> = views(&locals, wide, &mut rng)
        .iter()
        .map(|v| v.dims())
        .collect();
    assert_eq!(shapes, [[2, 1, 8, 12], [2, 1, 8, 12], [2, 1, 4, 6]]);
}

#[test]
fn the_batcher_makes_labelled_views_and_fresh_draws_per_batch() {
    use burn::data::dataloader::batcher::Batcher;
    let set = selfsup_data::fashion_mnist_10k().test;
    let batcher = MultiViewBatcher::new(vec![Pipeline::simclr_grayscale(28); 2], 1);
    let items: Vec<ImageItem> = (0..6).map(|i| item(&set, i)).collect();
    let first = batcher.batch(items.clone(), &device());
    let second = batcher.batch(items, &device());
    assert_eq!(first.views.len(), 2);
    assert_eq!(first.views[0].dims(), [6, 1, 28, 28]);
    let labels = first
        .labels
        .unwrap()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    let want: Vec<i64> = set.labels[..6].iter().map(|&l| l as i64).collect();
    assert_eq!(labels, want);
    assert_ne!(host(first.views[0].clone()), host(second.views[0].clone()));
}

#[test]
fn invalid_steps_are_named_with_their_value() {
    let error = Pipeline {
        steps: vec![Augmentation::HorizontalFlip { p: 1.5 }],
    }
    .validate()
    .unwrap_err();
    assert_eq!(error, "horizontal_flip: p must be in [0, 1], got 1.5");
    let error = Augmentation::ResizedCrop {
        size: [28, 28],
        scale: [0.9, 0.3],
        ratio: [0.75, 1.33],
    }
    .validate()
    .unwrap_err();
    assert!(
        error.contains("scale") && error.contains("[0.9, 0.3]"),
        "{error}"
    );
}

#[test]
#[should_panic(expected = "solarize: threshold must be in [0, 1], got 2")]
fn building_an_invalid_pipeline_panics() {
    Pipeline::new(vec![Augmentation::Solarize {
        threshold: 2.0,
        p: 1.0,
    }]);
}

#[test]
fn pipelines_read_from_toml_like_data() {
    let json = r#"{"steps":[{"op":"resized_crop","size":[28,28],"scale":[0.3,1.0],"ratio":[0.75,1.3333333333333333]},{"op":"horizontal_flip","p":0.5}]}"#;
    let pipeline: Pipeline = serde_json::from_str(json).unwrap();
    assert_eq!(pipeline.steps.len(), 2);
    assert!(serde_json::from_str::<Pipeline>(r#"{"steps":[{"op":"twirl"}]}"#).is_err());
}

#[test]
fn table_rows_batch_as_one_pixel_high_images_and_take_noise_and_masking() {
    let table = selfsup_data::table::parse_csv(
        "1,2,3,4,0\n5,6,7,8,1\n",
        true,
        std::path::Path::new("t.csv"),
    )
    .unwrap();
    let (rows, labels) = table_batch(&table, &[1, 0], &device());
    assert_eq!(rows.dims(), [2, 1, 1, 4]);
    assert_eq!(
        host(rows.clone()),
        vec![5.0, 6.0, 7.0, 8.0, 1.0, 2.0, 3.0, 4.0]
    );
    let labels = labels
        .unwrap()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    assert_eq!(labels, vec![1, 0]);
    let masked = host(run(
        vec![Augmentation::PatchMask {
            patch: 1,
            ratio: 0.5,
        }],
        rows,
        3,
    ));
    for row in masked.chunks(4) {
        assert_eq!(row.iter().filter(|&&v| v == 0.0).count(), 2);
    }
}

#[test]
fn brightness_multiplies_so_black_stays_black() {
    // torchvision's adjust_brightness: x·b. One image, half black, half grey.
    let x = images(vec![0.0, 0.0, 0.5, 0.5], [1, 1, 2, 2]);
    let out = host(run(
        vec![Augmentation::ColorJitter {
            brightness: 0.5,
            contrast: 0.0,
            p: 1.0,
        }],
        x,
        4,
    ));
    assert_eq!(
        &out[..2],
        &[0.0, 0.0],
        "brightness moved black pixels: {out:?}"
    );
    let factor = out[2] / 0.5;
    assert!((0.5..=1.5).contains(&factor), "factor {factor}");
    assert!((out[3] - out[2]).abs() < 1e-6);
    assert!((factor - 1.0).abs() > 1e-4, "seed 4 drew no change at all");
}

#[test]
fn resized_crops_stay_inside_the_image_as_torchvision() {
    // torchvision redraws a box that does not fit (then falls back to a centred one): a white
    // image stays white, however wide the aspect range, where zero padding would darken edges.
    let x = Tensor::<4>::ones([64, 1, 8, 8], &device());
    let out = host(run(
        vec![Augmentation::ResizedCrop {
            size: [8, 8],
            scale: [0.9, 1.0],
            ratio: [0.25, 4.0],
        }],
        x,
        7,
    ));
    let darkest = out.iter().cloned().fold(f32::INFINITY, f32::min);
    assert!(
        darkest > 1.0 - 1e-5,
        "a crop left the image: darkest pixel {darkest}"
    );
}

#[test]
fn a_samples_views_depend_on_its_own_stream_only() {
    // Every random step, so that each draws from the per-image streams.
    let all = Pipeline::new(vec![
        Augmentation::ResizedCrop {
            size: [10, 10],
            scale: [0.3, 1.0],
            ratio: [0.75, 1.333],
        },
        Augmentation::HorizontalFlip { p: 0.5 },
        Augmentation::Rotation {
            degrees: 20.0,
            p: 0.5,
        },
        Augmentation::ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            p: 0.8,
        },
        Augmentation::Grayscale { p: 0.5 },
        Augmentation::GaussianBlur {
            sigma: [0.1, 1.0],
            p: 0.5,
        },
        Augmentation::GaussianNoise { std: 0.1, p: 0.5 },
        Augmentation::RandomErasing {
            scale: [0.02, 0.2],
            ratio: [0.3, 3.3],
            p: 0.5,
        },
        Augmentation::PatchMask {
            patch: 2,
            ratio: 0.25,
        },
        Augmentation::Solarize {
            threshold: 0.5,
            p: 0.5,
        },
    ]);
    let pipelines = vec![all.clone(), all];
    let x = pattern([4, 3, 12, 12]);
    let streams = || -> Vec<Rng> { (0..4).map(|i| Rng::stream(7, i)).collect() };
    let whole = views_each(&pipelines, x.clone(), &mut streams());
    // Two shards of the batch, as two ranks would draw them.
    let mut first = streams();
    let mut second = first.split_off(2);
    let a = views_each(&pipelines, x.clone().narrow(0, 0, 2), &mut first);
    let b = views_each(&pipelines, x.clone().narrow(0, 2, 2), &mut second);
    // The batch in reverse order.
    let order = Tensor::<1, burn::tensor::Int>::from_data([3, 2, 1, 0], &device());
    let mut reversed: Vec<Rng> = streams().into_iter().rev().collect();
    let backwards = views_each(&pipelines, x.select(0, order.clone()), &mut reversed);
    for v in 0..2 {
        let shards = Tensor::cat(vec![a[v].clone(), b[v].clone()], 0);
        assert_close(shards, whole[v].clone(), 1e-6);
        assert_close(
            backwards[v].clone().select(0, order.clone()),
            whole[v].clone(),
            1e-6,
        );
    }
    // The two views of one image differ (the stream goes on between them).
    assert_ne!(host(whole[0].clone()), host(whole[1].clone()));
}
