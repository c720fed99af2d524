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
        let (values, indices) = sims.topk_with_indices(config.k, 1);
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
