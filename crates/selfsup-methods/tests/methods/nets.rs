//! Encoder, decoder and head shapes.

use crate::common::*;
use burn::tensor::{Distribution, Tensor};
use selfsup_nn::*;

#[test]
fn convnet_s_gives_128_features_for_any_channel_count() {
    let device = device();
    for channels in [1, 3] {
        let net = ConvNetSConfig::new()
            .with_input_channels(channels)
            .init(&device);
        let x = Tensor::<4>::random([2, channels, 28, 28], Distribution::Default, &device);
        assert_eq!(net.encode(x).dims(), [2, 128]);
        assert_eq!(net.output_dim(), 128);
    }
}

#[test]
fn resnet18_cifar_gives_512_features() {
    let device = device();
    let net = ResNet18Config::new().init(&device);
    let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &device);
    assert_eq!(net.encode(x).dims(), [2, 512]);
}

#[test]
fn decoders_give_images() {
    let device = device();
    let features = Tensor::<2>::random([3, 128], Distribution::Default, &device);
    let conv = ConvNetSDecoderConfig::new().init(&device);
    assert_eq!(conv.decode(features.clone()).dims(), [3, 1, 28, 28]);
    let mlp = MlpDecoderConfig::new([2, 5, 5]).init(&device);
    assert_eq!(mlp.decode(features).dims(), [3, 2, 5, 5]);
}

#[test]
fn head_presets_have_the_papers_shapes() {
    let device = device();
    let x = Tensor::<2>::random([4, 32], Distribution::Default, &device);
    for (name, head, out) in [
        ("simclr", ProjectionHeadConfig::simclr(32, 16, 8), 8),
        ("moco_v2", ProjectionHeadConfig::moco_v2(32, 16, 8), 8),
        ("byol", ProjectionHeadConfig::byol(32, 16, 8), 8),
        (
            "simsiam_projector",
            ProjectionHeadConfig::simsiam_projector(32, 16, 12),
            12,
        ),
        (
            "barlow_twins",
            ProjectionHeadConfig::barlow_twins(32, 16, 24),
            24,
        ),
        ("vicreg", ProjectionHeadConfig::vicreg(32, 16, 24), 24),
    ] {
        assert_eq!(
            head.init(&device).forward(x.clone()).dims(),
            [4, out],
            "{name}"
        );
    }
    assert_eq!(ProjectionHeadConfig::simclr(32, 16, 8).blocks.len(), 2);
    assert_eq!(
        ProjectionHeadConfig::barlow_twins(32, 16, 8).blocks.len(),
        3
    );
}

#[test]
fn dino_head_outputs_cosines_to_prototypes() {
    let device = device();
    let head = DinoHeadConfig::new(32)
        .with_hidden_dim(16)
        .with_bottleneck_dim(8)
        .with_output_dim(10)
        .init(&device);
    let out = head.forward(Tensor::random([5, 32], Distribution::Default, &device));
    assert_eq!(out.dims(), [5, 10]);
    let max = out.abs().max().into_scalar::<f32>();
    assert!(max <= 1.0 + 1e-5, "outputs are cosines, got {max}");
}

#[test]
#[should_panic(expected = "ProjectionHead: block 1 takes 7 inputs but block 0 outputs 16")]
fn head_blocks_must_chain() {
    let device = device();
    ProjectionHeadConfig::new(vec![BlockConfig::linear(32, 16), BlockConfig::linear(7, 4)])
        .init(&device);
}

#[test]
#[should_panic(expected = "MlpEncoder: expected 64 input values per sample, got 49")]
fn mlp_encoder_rejects_wrong_input_size() {
    let device = device();
    encoder(&device).encode(Tensor::zeros([2, 1, 7, 7], &device));
}
