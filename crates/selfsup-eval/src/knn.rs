use burn::config::Config;
use burn::tensor::{Int, Tensor};

/// Settings of the weighted kNN classifier (the defaults are the common SSL protocol:
/// cosine similarity, k = 20, votes weighted by `exp(sim / 0.1)`).
#[derive(Config, Debug)]
pub struct KnnConfig {
    /// Neighbours that vote.
    #[config(default = 20)]
    pub k: usize,
    /// Vote temperature: a neighbour with cosine similarity `s` votes `exp(s / temperature)`.
    #[config(default = 0.1)]
    pub temperature: f64,
    /// Queries handled at once, bounding memory to `chunk × bank` similarities.
    #[config(default = 1024)]
    pub chunk: usize,
}

fn normalize(x: Tensor<2>) -> Tensor<2> {
    x.clone() / x.square().sum_dim(1).clamp_min(1e-24).sqrt()
}

/// The `k` largest values of every row and their column indices, largest first:
/// `Tensor::topk_with_indices(k, 1)`, computed without sorting whole rows.
///
/// The row is cut into blocks of `block` columns. Every one of the row's `k` largest values
/// lies in a block whose maximum is at least the k-th largest value, and at most `k` blocks
/// have such a maximum, so the `k` blocks with the largest maxima hold all of them. Only those
/// `k × block` candidates are then ranked. With `block ≈ √(columns / k)` both rankings handle
/// about `√(columns · k)` values instead of `columns` (60,000 → about 1,100 for k = 20): the
/// backends' top-k sorts each whole row, which made it most of kNN evaluation's time.
///
/// Values equal `topk_with_indices`'s exactly; among equal values the indices may differ.
fn top_k_rows(x: Tensor<2>, k: usize) -> (Tensor<2>, Tensor<2, Int>) {
    let [rows, cols] = x.dims();
    let block = block_size(cols, k);
    let blocks = cols.div_ceil(block);
    if blocks <= k {
        return x.topk_with_indices(k, 1);
    }
    // Pad the last block with -∞, which never outranks a real value (k ≤ cols).
    let x = match blocks * block - cols {
        0 => x,
        pad => x.pad([(0, 0), (0, pad)], f32::NEG_INFINITY),
    };
    let grid = x.reshape([rows, blocks, block]);
    let block_max = grid.clone().max_dim(2).reshape([rows, blocks]);
    let (_, best_blocks) = block_max.topk_with_indices(k, 1);
    let members = best_blocks
        .clone()
        .reshape([rows, k, 1])
        .expand([rows, k, block]);
    let candidates = grid.gather(1, members).reshape([rows, k * block]);
    let (values, position) = candidates.topk_with_indices(k, 1);
    let block_of = best_blocks.gather(1, position.clone().div_scalar(block as i64));
    let indices = block_of.mul_scalar(block as i64) + position.remainder_scalar(block as i64);
    (values, indices)
}

/// About `√(cols / k)`; a divisor of `cols` within a factor of two of it when there is one, so
/// that no padded copy of the rows is needed.
fn block_size(cols: usize, k: usize) -> usize {
    let ideal = ((cols as f64 / k as f64).sqrt().ceil() as usize).max(1);
    (ideal.div_ceil(2)..=2 * ideal)
        .filter(|b| cols.is_multiple_of(*b))
        .min_by_key(|b| b.abs_diff(ideal))
        .unwrap_or(ideal)
}

/// Predicts a class for every query from its `k` most cosine-similar bank rows.
///
/// # Shapes
///
/// - bank: `[B, D]`, bank_labels: `[B]` (values in `0..classes`)
/// - queries: `[Q, D]` → `[Q]`
///
/// # Panics
///
/// When `k` is 0 or larger than the bank, the temperature is not > 0, the chunk is 0, the
/// dimensions differ, or the label count is not `B`.
pub fn knn_predict(
    config: &KnnConfig,
    bank: Tensor<2>,
    bank_labels: Tensor<1, Int>,
    queries: Tensor<2>,
    classes: usize,
) -> Tensor<1, Int> {
    let [b, d] = bank.dims();
    let [q, dq] = queries.dims();
    assert!(
        config.k > 0 && config.k <= b,
        "kNN: k must be in 1..={b} (the bank size), got {}",
        config.k
    );
    assert!(
        config.temperature > 0.0,
        "kNN: temperature must be > 0, got {}",
        config.temperature
    );
    assert!(config.chunk > 0, "kNN: chunk must be > 0, got 0");
    assert!(d == dq, "kNN: bank has dimension {d} but queries have {dq}");
    assert!(
        bank_labels.dims()[0] == b,
        "kNN: {} labels for a bank of {b}",
        bank_labels.dims()[0]
    );

    let bank_t = normalize(bank).transpose();
    let queries = normalize(queries);
    let mut predictions = Vec::new();
    for start in (0..q).step_by(config.chunk) {
        let len = config.chunk.min(q - start);
        let sims = queries.clone().narrow(0, start, len).matmul(bank_t.clone());
        let (values, indices) = top_k_rows(sims, config.k);
        let weights = values.div_scalar(config.temperature).exp();
        let neighbour_labels = bank_labels
            .clone()
            .select(0, indices.reshape([len * config.k]))
            .reshape([len, config.k]);
        let votes = neighbour_labels.one_hot::<3>(classes).float() * weights.unsqueeze_dim(2);
        predictions.push(
            votes
                .sum_dim(1)
                .reshape([len, classes])
                .argmax(1)
                .reshape([len]),
        );
    }
    Tensor::cat(predictions, 0)
}

/// Fraction of queries whose kNN prediction equals their label.
///
/// # Panics
///
/// As [`knn_predict`], and when the query label count differs from the queries.
pub fn knn_accuracy(
    config: &KnnConfig,
    bank: Tensor<2>,
    bank_labels: Tensor<1, Int>,
    queries: Tensor<2>,
    query_labels: Tensor<1, Int>,
    classes: usize,
) -> f64 {
    let [q, _] = queries.dims();
    assert!(
        query_labels.dims()[0] == q,
        "kNN: {} labels for {q} queries",
        query_labels.dims()[0]
    );
    let predicted = knn_predict(config, bank, bank_labels, queries, classes);
    let correct = predicted
        .equal(query_labels)
        .int()
        .sum()
        .into_scalar::<i64>();
    correct as f64 / q as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    fn rows(rows: usize, cols: usize) -> Tensor<2> {
        let device = selfsup_backend::test_device();
        Tensor::random([rows, cols], Distribution::Normal(0.0, 1.0), &device)
    }

    /// The block-maxima top-k against the backend's own, on shapes that take every path:
    /// whole blocks, a padded last block (1,009 and 11 are prime), k = 1, and few blocks
    /// (falls back to the backend).
    #[test]
    fn top_k_rows_equals_the_backends_topk() {
        for (n, cols, k) in [
            (33, 6_000, 20),
            (5, 1_001, 7),
            (4, 500, 1),
            (3, 40, 40),
            (2, 9, 3),
        ] {
            let x = rows(n, cols);
            let (values, indices) = top_k_rows(x.clone(), k);
            let (want_values, want_indices) = x.topk_with_indices(k, 1);
            assert_eq!(values.dims(), [n, k]);
            values.into_data().assert_eq(&want_values.into_data(), true);
            indices
                .into_data()
                .assert_eq(&want_indices.into_data(), true);
        }
    }

    #[test]
    fn block_size_prefers_a_divisor_near_the_square_root() {
        assert_eq!(block_size(60_000, 20), 50);
        assert_eq!(block_size(1_009, 7), 13);
        assert_eq!(block_size(6_000, 20), 16);
        assert_eq!(block_size(5, 20), 1);
    }

    /// A row whose largest values all sit in one block, and one where they are spread over
    /// the last (padded) block.
    #[test]
    fn top_k_rows_finds_values_crowded_into_one_block_or_in_the_padding_block() {
        let device = selfsup_backend::test_device();
        let cols = 997;
        let mut values = vec![0.0f32; 2 * cols];
        for j in 0..5 {
            values[100 + j] = 10.0 - j as f32;
            values[cols + cols - 1 - j] = 10.0 - j as f32;
        }
        let x = Tensor::<2>::from_data(TensorData::new(values, [2, cols]), &device);
        let (top, indices) = top_k_rows(x, 5);
        let want: Vec<f32> = (0..5).map(|j| 10.0 - j as f32).collect();
        assert_eq!(
            top.into_data().try_to_vec::<f32>().unwrap(),
            [want.clone(), want].concat()
        );
        let idx = indices
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        assert_eq!(idx, [100, 101, 102, 103, 104, 996, 995, 994, 993, 992]);
    }
}
