//! Numerical building blocks shared by the losses.

use burn::tensor::{Bool, DType, Tensor};

/// `torch.nn.functional.normalize`'s epsilon: rows with a smaller norm are divided by it.
pub(crate) const NORMALIZE_EPS: f64 = 1e-12;

/// Divides each row by `max(‖row‖₂, 1e-12)`, like `torch.nn.functional.normalize(x, dim=1)`.
///
/// The clamp is applied to the squared norm (`1e-24`) before the square root, which gives the
/// same values but keeps the gradient of an all-zero row finite (zero) instead of `0 · ∞`.
///
/// In f16, whose smallest normal number is about 6e-5, the floor is that number instead, so it
/// does not round to zero (the norm floor becomes about 8e-3).
pub(crate) fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let floor = squared_norm_floor(&x);
    let norm = x.clone().square().sum_dim(1).clamp_min(floor).sqrt();
    x / norm
}

/// `1e-24`, or the smallest normal f16 number for f16 tensors.
pub(crate) fn squared_norm_floor<const D: usize>(x: &Tensor<D>) -> f64 {
    match x.dtype() {
        DType::F16 => 6.1e-5,
        _ => NORMALIZE_EPS * NORMALIZE_EPS,
    }
}

/// `log Σ_j exp(x_ij)` along dimension 1, shifted by the (detached) row maximum so that large
/// logits (small temperatures) cannot overflow. Entries equal to `-∞` contribute nothing.
///
/// # Shapes
/// - x: `[rows, cols]` → `[rows, 1]`
pub(crate) fn log_sum_exp(x: Tensor<2>) -> Tensor<2> {
    let max = x.clone().detach().max_dim(1);
    (x - max.clone()).exp().sum_dim(1).log() + max
}

/// Boolean mask, `true` on the main diagonal of an `n × n` matrix.
pub(crate) fn diagonal_mask(n: usize, like: &Tensor<2>) -> Tensor<2, Bool> {
    offset_diagonal_mask([n, n], 0, like)
}

/// Boolean mask, `true` where `column − row = offset`. (Burn's `diag_mask` is the opposite:
/// `false` on the diagonal.)
pub(crate) fn offset_diagonal_mask(
    shape: [usize; 2],
    offset: i64,
    like: &Tensor<2>,
) -> Tensor<2, Bool> {
    Tensor::<2, Bool>::diag_mask(shape, offset, &like.device()).bool_not()
}

/// Panics unless the two tensors have the same shape, naming both.
pub(crate) fn assert_same_shape<const D: usize>(
    loss: &str,
    (a_name, a): (&str, &Tensor<D>),
    (b_name, b): (&str, &Tensor<D>),
) {
    let (a, b) = (a.dims(), b.dims());
    assert!(
        a == b,
        "{loss}: {a_name} and {b_name} must have the same shape, got {a_name} {a:?} and {b_name} {b:?}"
    );
}

/// Panics unless a batch has at least `min` rows.
pub(crate) fn assert_min_rows(loss: &str, name: &str, rows: usize, min: usize) {
    assert!(
        rows >= min,
        "{loss}: {name} must have at least {min} rows (batch size), got {rows}"
    );
}

/// Panics unless `labels` has one entry per row of `embeddings`.
pub(crate) fn assert_labels(loss: &str, rows: usize, labels: &Tensor<1, burn::tensor::Int>) {
    let [n] = labels.dims();
    assert!(
        n == rows,
        "{loss}: labels must have one entry per embedding row, got {n} labels for {rows} rows"
    );
}

/// `same[i, j]` = labels i and j are equal, over all ordered pairs (including i = j).
///
/// # Shapes
/// - labels: `[N]` → `[N, N]`
pub(crate) fn same_label(labels: Tensor<1, burn::tensor::Int>) -> Tensor<2, Bool> {
    let [n] = labels.dims();
    let rows = labels.clone().reshape([n, 1]).repeat_dim(1, n);
    let cols = labels.reshape([1, n]).repeat_dim(0, n);
    rows.equal(cols)
}

/// Squared Euclidean distances between all rows, `‖xᵢ‖² + ‖xⱼ‖² − 2xᵢ·xⱼ`, clamped at 0
/// against rounding.
///
/// # Shapes
/// - x: `[N, D]` → `[N, N]`
pub(crate) fn pairwise_squared_l2(x: Tensor<2>) -> Tensor<2> {
    let [n, _] = x.dims();
    let sq = x.clone().square().sum_dim(1);
    let gram = x.clone().matmul(x.transpose());
    (sq.clone().repeat_dim(1, n) + sq.transpose().repeat_dim(0, n) - gram.mul_scalar(2.0))
        .clamp_min(0.0)
}

/// Euclidean distances between all rows. Distances below `1e-12` (a row with itself, or two
/// identical rows) are 0 with a zero gradient, as `torch.cdist` gives, instead of `1/0`.
///
/// # Shapes
/// - x: `[N, D]` → `[N, N]`
pub(crate) fn pairwise_l2(x: Tensor<2>) -> Tensor<2> {
    let squared = pairwise_squared_l2(x);
    let floor = squared_norm_floor(&squared);
    let coincident = squared.clone().detach().lower_elem(floor);
    squared.clamp_min(floor).sqrt().mask_fill(coincident, 0.0)
}
