//! kNN and label-free metrics on inputs whose answers are known by construction.

use burn::tensor::{Distribution, Int, Tensor, TensorData};
use selfsup_eval::*;

fn device() -> burn::tensor::Device {
    selfsup_backend::test_device()
}

fn matrix(values: Vec<f32>, rows: usize, cols: usize) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), &device())
}

fn labels(values: &[i64]) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), &device())
}

#[test]
fn knn_weights_votes_by_similarity() {
    // Two weak neighbours of class 0 against one close neighbour of class 1.
    let bank = matrix(vec![0.1, 1.0, 0.1, -1.0, 1.0, 0.05], 3, 2);
    let query = matrix(vec![1.0, 0.0], 1, 2);
    let weighted = KnnConfig::new().with_k(3);
    let predicted = knn_predict(
        &weighted,
        bank.clone(),
        labels(&[0, 0, 1]),
        query.clone(),
        2,
    );
    assert_eq!(
        predicted
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap(),
        vec![1]
    );
    // With a flat temperature the two class-0 votes win.
    let flat = KnnConfig::new().with_k(3).with_temperature(1e6);
    let predicted = knn_predict(&flat, bank, labels(&[0, 0, 1]), query, 2);
    assert_eq!(
        predicted
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap(),
        vec![0]
    );
}

#[test]
fn knn_accuracy_on_separated_clusters_and_chunks_agree() {
    let d = device();
    let centers = Tensor::<2>::random([4, 8], Distribution::Normal(0.0, 1.0), &d);
    let bank_labels: Vec<i64> = (0..40).map(|i| i % 4).collect();
    let query_labels: Vec<i64> = (0..13).map(|i| (i * 3) % 4).collect();
    let around = |ls: &[i64]| {
        let idx = Tensor::<1, Int>::from_data(TensorData::new(ls.to_vec(), [ls.len()]), &d);
        centers.clone().select(0, idx) * 5.0
            + Tensor::random([ls.len(), 8], Distribution::Normal(0.0, 0.1), &d)
    };
    let (bank, queries) = (around(&bank_labels), around(&query_labels));
    for chunk in [1, 5, 1024] {
        let config = KnnConfig::new().with_k(5).with_chunk(chunk);
        let acc = knn_accuracy(
            &config,
            bank.clone(),
            labels(&bank_labels),
            queries.clone(),
            labels(&query_labels),
            4,
        );
        assert_eq!(acc, 1.0, "chunk {chunk}");
    }
}

#[test]
#[should_panic(expected = "kNN: k must be in 1..=3 (the bank size), got 20")]
fn knn_rejects_k_larger_than_the_bank() {
    knn_predict(
        &KnnConfig::new(),
        matrix(vec![0.0; 6], 3, 2),
        labels(&[0, 1, 2]),
        matrix(vec![1.0, 0.0], 1, 2),
        3,
    );
}

#[test]
fn rank_me_counts_equally_used_directions() {
    // Four orthogonal directions used equally (rows ±e_i), then rotated: rank 4 of 6.
    let mut rows = Vec::new();
    for i in 0..4 {
        for sign in [1.0f32, -1.0] {
            let mut r = vec![0.0f32; 6];
            r[i] = sign;
            rows.extend(r);
        }
    }
    let z = matrix(rows, 8, 6);
    let rotation = {
        let a = Tensor::<2>::random([6, 6], Distribution::Normal(0.0, 1.0), &device());
        // Gram–Schmidt-free orthogonal matrix: Q = (I - 2vvᵀ/|v|²) Householder reflection.
        let v = a.narrow(0, 0, 1);
        let vv = v.clone().transpose().matmul(v.clone()) / v.square().sum().reshape([1, 1]);
        Tensor::<2>::eye(6, &device()) - vv.mul_scalar(2.0)
    };
    // Rotated, f32 rounding leaves singular values ~1e-4 in the unused directions, which
    // RankMe (like its reference) counts a little.
    for (what, z, tolerance) in [
        ("axis-aligned", z.clone(), 1e-3),
        ("rotated", z.matmul(rotation), 5e-3),
    ] {
        let r = rank_me(z);
        assert!((r - 4.0).abs() < tolerance, "{what}: RankMe {r}, want 4");
    }
    let collapsed = matrix([1.0f32, 2.0, 3.0].repeat(5), 5, 3);
    assert!((rank_me(collapsed) - 1.0).abs() < 1e-3);
}

#[test]
fn alignment_and_uniformity_have_their_extremes() {
    let z = Tensor::<2>::random([32, 8], Distribution::Normal(0.0, 1.0), &device());
    assert!(alignment(z.clone(), z.clone().mul_scalar(3.0)).abs() < 1e-6);
    assert!((alignment(z.clone(), z.clone().neg()) - 4.0).abs() < 1e-4);
    let point = matrix([0.6f32, 0.8].repeat(10), 10, 2);
    assert!(
        uniformity(point).abs() < 1e-6,
        "a collapsed embedding has uniformity 0"
    );
    assert!(
        uniformity(z) < -1.0,
        "a spread embedding has negative uniformity"
    );
}

#[test]
fn collapse_is_flagged_and_spread_is_not() {
    let z = Tensor::<2>::random([256, 16], Distribution::Normal(0.0, 1.0), &device());
    let healthy = collapse(z.clone());
    assert!(
        !healthy.collapsed && (healthy.relative_std - 1.0).abs() < 0.2,
        "{healthy:?}"
    );
    let nearly_constant = z.mul_scalar(1e-4) + Tensor::ones([256, 16], &device());
    let collapsed = collapse(nearly_constant);
    assert!(collapsed.collapsed, "{collapsed:?}");
}

/// Two Gaussian clusters per class in 8 dimensions, shifted far apart along class-specific axes.
fn clusters(n: usize, classes: usize, seed: u64) -> (Tensor<2>, Tensor<1, Int>) {
    let mut rng = selfsup_data::Rng::new(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let class = i % classes;
        for j in 0..8 {
            let centre = if j == class { 3.0 } else { 0.0 };
            x.push((centre + rng.normal()) as f32 * 10.0 + 5.0);
        }
        y.push(class as i64);
    }
    (matrix(x, n, 8), labels(&y))
}

#[test]
fn the_linear_probe_separates_separable_classes_and_not_random_labels() {
    let (train, train_y) = clusters(400, 4, 1);
    let (test, test_y) = clusters(200, 4, 2);
    let config = LinearProbeConfig::new()
        .with_epochs(20)
        .with_batch_size(64)
        .with_lr(1e-2);
    let report = linear_probe(&config, train.clone(), train_y, test.clone(), test_y, 4);
    assert!(report.test_accuracy > 0.9, "{report:?}");
    // Labels unrelated to the features: held-out accuracy stays near chance (1/4).
    let shuffled: Vec<i64> = (0..400).map(|i| ((i * 7 + i / 3) % 4) as i64).collect();
    let unrelated: Vec<i64> = (0..200).map(|i| ((i * 5 + i / 7) % 4) as i64).collect();
    let report = linear_probe(
        &config,
        train,
        labels(&shuffled),
        test,
        labels(&unrelated),
        4,
    );
    assert!(report.test_accuracy < 0.45, "{report:?}");
}

/// The rows of `clusters(n, 4, seed)` whose class is in `keep`.
fn clusters_of(n: usize, seed: u64, keep: &[usize]) -> (Tensor<2>, Tensor<1, Int>) {
    let (x, y) = clusters(n, 4, seed);
    let rows: Vec<i64> = (0..n)
        .filter(|i| keep.contains(&(i % 4)))
        .map(|i| i as i64)
        .collect();
    let index = Tensor::<1, Int>::from_data(TensorData::new(rows.clone(), [rows.len()]), &device());
    (x.select(0, index.clone()), y.select(0, index))
}

#[test]
fn the_linear_probe_predicts_only_classes_it_was_trained_on() {
    let config = LinearProbeConfig::new()
        .with_epochs(20)
        .with_batch_size(64)
        .with_lr(1e-2);
    // Trained on classes 0 and 1, tested on class 2 alone: every answer is wrong, whatever
    // the untrained outputs of classes 2 and 3 say.
    let (train, train_y) = clusters_of(400, 1, &[0, 1]);
    let (test, test_y) = clusters_of(200, 2, &[2]);
    let report = linear_probe(&config, train, train_y, test, test_y, 4);
    assert_eq!(report.test_accuracy, 0.0, "{report:?}");
    // One class in training and in testing: the only answer, and right.
    let (train, train_y) = clusters_of(400, 1, &[3]);
    let (test, test_y) = clusters_of(200, 2, &[3]);
    let report = linear_probe(&config, train, train_y, test, test_y, 4);
    assert_eq!(report.test_accuracy, 1.0, "{report:?}");
}

#[test]
#[should_panic(expected = "linear probe: train features have 8 dimensions, test 3")]
fn the_linear_probe_names_mismatched_dimensions() {
    let (train, y) = clusters(8, 2, 1);
    linear_probe(
        &LinearProbeConfig::new(),
        train,
        y.clone(),
        matrix(vec![0.0; 24], 8, 3),
        y,
        2,
    );
}

#[test]
fn the_online_probe_learns_without_touching_its_input() {
    use burn::optim::{AdamConfig, GradientsParams};
    let device = device().autodiff();
    let (x, y) = clusters(128, 4, 3);
    let x = x.autodiff().require_grad();
    let mut probe = OnlineProbe::new(8, 4, &device);
    let mut optimizer = AdamConfig::new().init();
    let mut first = None;
    let mut last = 0;
    for _ in 0..60 {
        let out = probe.forward(x.clone() / 10.0, y.clone());
        last = out.correct.into_scalar::<i64>();
        first.get_or_insert(last);
        let grads = out.loss.backward();
        assert!(
            x.grad(&grads).is_none(),
            "the probe sent a gradient into its input"
        );
        let grads = GradientsParams::from_grads(grads, &probe);
        probe = optimizer.step(1e-2, probe, grads);
    }
    assert!(
        last > 110 && last > first.unwrap(),
        "{first:?} → {last} of 128"
    );
}

#[test]
fn spearman_matches_scipy() {
    // scipy.stats.spearmanr (scipy in the bench venv): 0.9486832980505139 and 0.7.
    let close = |got: f64, want: f64| assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    close(
        spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]),
        0.9486832980505139,
    );
    close(
        spearman(&[0.5, 0.1, 0.9, 0.3, 0.7], &[20.0, 11.0, 25.0, 19.0, 18.0]),
        0.7,
    );
    close(spearman(&[1.0, 2.0, 3.0], &[30.0, 20.0, 10.0]), -1.0);
    assert!(spearman(&[1.0], &[2.0]).is_nan());
    assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
}

#[test]
fn label_free_selection_takes_the_highest_rankme_that_did_not_collapse() {
    let at = |rankme: f64, collapsed: bool| CheckpointMetrics {
        rankme,
        alignment: 0.1,
        uniformity: -1.0,
        relative_std: 0.5,
        collapsed,
    };
    assert_eq!(
        select_label_free(&[at(10.0, false), at(30.0, true), at(20.0, false)]),
        Some(2)
    );
    assert_eq!(
        select_label_free(&[at(20.0, false), at(20.0, false)]),
        Some(1)
    );
    assert_eq!(select_label_free(&[at(5.0, true)]), None);
    assert_eq!(select_label_free(&[]), None);
}
