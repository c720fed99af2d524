//! Edge cases that break SSL losses in other libraries: tiny temperatures, huge and tiny rows,
//! all-zero rows, batches without valid triplets or positives, and bad arguments.

use crate::common::*;
use burn::tensor::Tensor;
use selfsup_losses::*;

/// Two views with rows of very different norms, including an all-zero row.
fn awkward_views(device: &burn::tensor::Device) -> (Tensor<2>, Tensor<2>) {
    let mut rng = Rng::new(3);
    let (n, d) = (6, 5);
    let mut a = rng.values(n * d);
    let mut b = rng.values(n * d);
    for j in 0..d {
        a[j] *= 1e4; // norm ≈ 2e4
        b[d + j] *= 1e-6; // norm ≈ 2e-6
        a[2 * d + j] = 0.0; // all-zero row
        b[2 * d + j] = 0.0;
    }
    (
        matrix(a, n, d, device).require_grad(),
        matrix(b, n, d, device).require_grad(),
    )
}

fn assert_finite_loss_and_grads(name: &str, loss: Tensor<1>, leaves: &[&Tensor<2>]) {
    let value = scalar(loss.clone());
    assert!(value.is_finite(), "{name}: loss {value}");
    for (i, g) in grads(&loss, leaves).iter().enumerate() {
        assert_finite(&format!("{name} grad {i}"), g);
    }
}

#[test]
fn nt_xent_is_finite_at_tiny_temperature_and_extreme_norms() {
    let device = device();
    let (a, b) = awkward_views(&device);
    for chunk in [None, Some(4)] {
        let loss = NtXentLossConfig::new()
            .with_temperature(0.01)
            .with_chunk_size(chunk)
            .init()
            .forward(a.clone(), b.clone());
        assert_finite_loss_and_grads("nt_xent", loss, &[&a, &b]);
    }
}

#[test]
fn info_nce_is_finite_at_tiny_temperature_and_extreme_norms() {
    let device = device();
    let (a, b) = awkward_views(&device);
    let negatives = leaf(&mut Rng::new(4), 9, 5, &device);
    let loss = InfoNceLossConfig::new()
        .with_temperature(0.01)
        .init()
        .forward(a.clone(), b.clone(), negatives.clone());
    assert_finite_loss_and_grads("info_nce", loss, &[&a, &b, &negatives]);
}

#[test]
fn supcon_is_finite_at_tiny_temperature_and_extreme_norms() {
    let device = device();
    let (a, _) = awkward_views(&device);
    let loss = SupConLossConfig::new()
        .with_temperature(0.01)
        .init()
        .forward(a.clone(), labels(&[0, 1, 0, 1, 2, 2], &device));
    assert_finite_loss_and_grads("supcon", loss, &[&a]);
}

#[test]
fn supcon_without_any_positive_is_zero_and_backpropagates() {
    let device = device();
    let x = leaf(&mut Rng::new(5), 4, 3, &device);
    let loss = SupConLossConfig::new()
        .init()
        .forward(x.clone(), labels(&[0, 1, 2, 3], &device));
    assert_eq!(scalar(loss.clone()), 0.0);
    assert!(grads(&loss, &[&x])[0].iter().all(|&g| g == 0.0));
}

#[test]
fn negative_cosine_with_a_zero_row_is_finite() {
    let device = device();
    let (a, b) = awkward_views(&device);
    let loss = NegativeCosineSimilarity::new().forward(a.clone(), b.clone());
    assert_finite_loss_and_grads("negative_cosine", loss, &[&a, &b]);
}

#[test]
fn triplet_without_valid_triplets_is_zero_with_zero_gradients() {
    let device = device();
    for mining in [
        TripletMining::All,
        TripletMining::BatchHard,
        TripletMining::SemiHard,
    ] {
        // All one class (no negatives), then all different classes (no positives).
        for y in [[1i64, 1, 1, 1], [0, 1, 2, 3]] {
            let x = leaf(&mut Rng::new(6), 4, 3, &device);
            let loss_fn = TripletMarginLossConfig::new().with_mining(mining).init();
            let (loss, stats) = loss_fn.forward_with_stats(x.clone(), labels(&y, &device));
            assert_eq!(scalar(loss.clone()), 0.0, "{mining} {y:?}");
            assert_eq!((stats.selected, stats.active), (0, 0), "{mining} {y:?}");
            assert_eq!(stats.active_fraction, 0.0);
            assert!(grads(&loss, &[&x])[0].iter().all(|&g| g == 0.0), "{mining}");
        }
    }
}

#[test]
fn triplet_without_active_triplets_is_zero_and_counts_them() {
    let device = device();
    // Two tight, far-apart clusters: every triplet satisfies the margin.
    let x = matrix(
        vec![1.0, 0.0, 0.99, 0.01, 0.0, 1.0, 0.01, 0.99],
        4,
        2,
        &device,
    )
    .require_grad();
    let (loss, stats) = TripletMarginLossConfig::new()
        .with_margin(0.1)
        .init()
        .forward_with_stats(x.clone(), labels(&[0, 0, 1, 1], &device));
    assert_eq!(scalar(loss.clone()), 0.0);
    // 4 anchors × 1 positive × 2 negatives, none active.
    assert_eq!((stats.selected, stats.active), (8, 0));
    assert!(grads(&loss, &[&x])[0].iter().all(|&g| g == 0.0));
}

#[test]
fn triplet_stats_count_active_triplets() {
    let device = device();
    // Anchor 0's positive (row 1) is farther than its negative (row 2); anchor 1's is not.
    let x = matrix(vec![1.0, 0.0, 0.0, 1.0, 1.0, -1.0], 3, 2, &device);
    let (_, stats) = TripletMarginLossConfig::new()
        .with_margin(0.1)
        .init()
        .forward_with_stats(x, labels(&[0, 0, 1], &device));
    // Triplets (0,1,2) and (1,0,2): the first violates, the second is easy.
    assert_eq!((stats.selected, stats.active), (2, 1));
    assert_eq!(stats.active_fraction, 0.5);
}

#[test]
fn contrastive_with_only_easy_pairs_is_zero_and_backpropagates() {
    let device = device();
    let x = matrix(vec![1.0, 0.0, 1.0, 0.0, -1.0, 0.0], 3, 2, &device).require_grad();
    let loss = ContrastiveLossConfig::new()
        .init()
        .forward(x.clone(), labels(&[0, 0, 1], &device));
    assert_eq!(scalar(loss.clone()), 0.0);
    assert_finite("grad", &grads(&loss, &[&x])[0]);
}

#[test]
fn masked_reconstruction_with_an_empty_mask_is_zero() {
    let device = device();
    let x = leaf(&mut Rng::new(8), 2, 3, &device);
    let target = matrix(vec![0.0; 6], 2, 3, &device);
    let loss = ReconstructionLossConfig::new().init().forward_masked(
        x.clone(),
        target,
        matrix(vec![0.0; 6], 2, 3, &device),
    );
    assert_eq!(scalar(loss.clone()), 0.0);
    assert!(grads(&loss, &[&x])[0].iter().all(|&g| g == 0.0));
}

#[test]
fn masked_reconstruction_averages_only_masked_positions() {
    let device = device();
    let x = matrix(vec![1.0, 2.0, 3.0, 4.0], 2, 2, &device);
    let target = matrix(vec![0.0; 4], 2, 2, &device);
    let mask = matrix(vec![1.0, 0.0, 0.0, 1.0], 2, 2, &device);
    let loss = ReconstructionLossConfig::new()
        .init()
        .forward_masked(x, target, mask);
    assert_eq!(scalar(loss), (1.0 + 16.0) / 2.0);
}

#[test]
#[should_panic(expected = "NtXentLoss: temperature must be > 0, got 0")]
fn nt_xent_rejects_zero_temperature() {
    NtXentLossConfig::new().with_temperature(0.0).init();
}

#[test]
#[should_panic(expected = "InfoNceLoss: temperature must be > 0, got -0.1")]
fn info_nce_rejects_negative_temperature() {
    InfoNceLossConfig::new().with_temperature(-0.1).init();
}

#[test]
#[should_panic(expected = "SupConLoss: temperature must be > 0, got -1")]
fn supcon_rejects_negative_temperature() {
    SupConLossConfig::new().with_temperature(-1.0).init();
}

#[test]
#[should_panic(expected = "NtXentLoss: chunk_size must be > 0 (or None), got 0")]
fn nt_xent_rejects_zero_chunk() {
    NtXentLossConfig::new().with_chunk_size(Some(0)).init();
}

#[test]
#[should_panic(expected = "TripletMarginLoss: margin must be >= 0, got -0.2")]
fn triplet_rejects_negative_margin() {
    TripletMarginLossConfig::new().with_margin(-0.2).init();
}

#[test]
#[should_panic(expected = "BarlowTwinsLoss: z_a must have at least 2 rows (batch size), got 1")]
fn barlow_twins_rejects_batch_of_one() {
    let device = device();
    let x = matrix(vec![1.0, 2.0], 1, 2, &device);
    BarlowTwinsLossConfig::new().init().forward(x.clone(), x);
}

#[test]
#[should_panic(expected = "VicRegLoss: z_a must have at least 2 rows (batch size), got 1")]
fn vicreg_rejects_batch_of_one() {
    let device = device();
    let x = matrix(vec![1.0, 2.0], 1, 2, &device);
    VicRegLossConfig::new().init().forward(x.clone(), x);
}

#[test]
#[should_panic(
    expected = "NtXentLoss: z_a and z_b must have the same shape, got z_a [2, 3] and z_b [3, 2]"
)]
fn nt_xent_rejects_mismatched_shapes() {
    let device = device();
    NtXentLossConfig::new().init().forward(
        matrix(vec![0.0; 6], 2, 3, &device),
        matrix(vec![0.0; 6], 3, 2, &device),
    );
}

#[test]
#[should_panic(
    expected = "InfoNceLoss: negatives must have the query's dimension 3, got shape [4, 2]"
)]
fn info_nce_rejects_negatives_of_another_dimension() {
    let device = device();
    let q = matrix(vec![0.0; 6], 2, 3, &device);
    InfoNceLossConfig::new()
        .init()
        .forward(q.clone(), q, matrix(vec![0.0; 8], 4, 2, &device));
}

#[test]
#[should_panic(
    expected = "SupConLoss: labels must have one entry per embedding row, got 3 labels for 4 rows"
)]
fn supcon_rejects_wrong_label_count() {
    let device = device();
    SupConLossConfig::new().init().forward(
        matrix(vec![0.0; 8], 4, 2, &device),
        labels(&[0, 1, 0], &device),
    );
}

#[test]
#[should_panic(
    expected = "TripletMarginLoss: labels must have one entry per embedding row, got 5 labels for 4 rows"
)]
fn triplet_rejects_wrong_label_count() {
    let device = device();
    TripletMarginLossConfig::new().init().forward(
        matrix(vec![0.0; 8], 4, 2, &device),
        labels(&[0, 1, 0, 1, 1], &device),
    );
}

#[test]
#[should_panic(expected = "ReconstructionLoss: x and target must have the same shape")]
fn reconstruction_rejects_mismatched_shapes() {
    let device = device();
    ReconstructionLossConfig::new().init().forward(
        matrix(vec![0.0; 6], 2, 3, &device),
        matrix(vec![0.0; 6], 3, 2, &device),
    );
}

#[test]
fn text_options_name_the_bad_value_and_the_valid_ones() {
    assert_eq!(
        "hardest".parse::<TripletMining>().unwrap_err(),
        "unknown mining mode 'hardest'; valid: all, violating, hard, semi_hard, batch_hard"
    );
    assert_eq!(
        "semi_hard".parse::<TripletMining>().unwrap(),
        TripletMining::SemiHard
    );
    assert_eq!(
        "manhattan".parse::<Distance>().unwrap_err(),
        "unknown distance 'manhattan'; valid: l2, squared_l2, cosine"
    );
    assert!(
        "sum"
            .parse::<TripletReduction>()
            .unwrap_err()
            .contains("mean_nonzero, mean")
    );
}

#[test]
#[should_panic(expected = "DinoLoss: needs two views")]
fn dino_rejects_a_single_pair_of_identical_views() {
    let device = device();
    let loss = DinoLossConfig::new(3).init(&device);
    let v = matrix(vec![0.0; 6], 2, 3, &device);
    loss.forward(std::slice::from_ref(&v), std::slice::from_ref(&v), 0);
}

#[test]
#[should_panic(expected = "VicRegLoss: eps must be > 0, got 0")]
fn vicreg_rejects_zero_eps() {
    VicRegLossConfig::new().with_eps(0.0).init();
}
