use burn::tensor::Tensor;

fn normalize(x: Tensor<2>) -> Tensor<2> {
    x.clone() / x.square().sum_dim(1).clamp_min(1e-24).sqrt()
}

fn to_f64(t: Tensor<2>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("a float tensor converts to f64")
}

/// RankMe, the effective rank of an embedding matrix: `exp(−Σ pᵢ log pᵢ)` with
/// `pᵢ = σᵢ / Σσ + 1e-7` over its singular values. Between 1 (collapsed to a line) and
/// `min(N, D)` (every direction used equally); it tracks downstream accuracy without labels.
/// The singular values come from an eigen-decomposition of `ZᵀZ` on the host (Jacobi), so
/// `D` should stay in the hundreds.
///
/// Reference: \[0\] RankMe, 2023, arXiv:2210.02885.
///
/// # Shapes
///
/// - embeddings: `[N, D]`
pub fn rank_me(embeddings: Tensor<2>) -> f64 {
    let [_, d] = embeddings.dims();
    let gram = to_f64(embeddings.clone().transpose().matmul(embeddings));
    let singular: Vec<f64> = symmetric_eigenvalues(gram, d)
        .into_iter()
        .map(|l| l.max(0.0).sqrt())
        .collect();
    let total: f64 = singular.iter().sum();
    if total == 0.0 {
        return 1.0;
    }
    let entropy: f64 = singular
        .iter()
        .map(|s| s / total + 1e-7)
        .map(|p| -p * p.ln())
        .sum();
    entropy.exp()
}

/// Eigenvalues of a symmetric `n × n` matrix (row-major) by cyclic Jacobi rotations.
fn symmetric_eigenvalues(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let scale: f64 = (0..n)
            .map(|i| a[i * n + i] * a[i * n + i])
            .sum::<f64>()
            .max(1e-300);
        if off <= 1e-22 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum().max(0.0) * 2.0 - 1.0;
                let t = t / (theta.abs() + (theta * theta + 1.0).sqrt());
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), 0.0);
                let s = s + t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| a[i * n + i]).collect()
}

/// Alignment of positive pairs, `mean ‖f(x) − f(y)‖²` over the rows of two views after L2
/// normalisation (0 = every pair identical, 4 = opposite).
///
/// Reference: \[0\] Wang & Isola, 2020, arXiv:2005.10242.
///
/// # Shapes
///
/// - z_a, z_b: `[N, D]`
pub fn alignment(z_a: Tensor<2>, z_b: Tensor<2>) -> f64 {
    (normalize(z_a) - normalize(z_b))
        .square()
        .sum_dim(1)
        .mean()
        .into_scalar::<f64>()
}

/// Uniformity, `log mean_{i≠j} exp(−2‖f(xᵢ) − f(xⱼ)‖²)` over L2-normalised rows: lower is more
/// uniform on the sphere; 0 means collapsed to one point.
///
/// Reference: \[0\] Wang & Isola, 2020, arXiv:2005.10242.
///
/// # Shapes
///
/// - z: `[N, D]`, N ≥ 2
///
/// # Panics
///
/// When N < 2.
pub fn uniformity(z: Tensor<2>) -> f64 {
    let [n, _] = z.dims();
    assert!(n >= 2, "uniformity: needs at least 2 rows, got {n}");
    let z = normalize(z);
    // ‖a − b‖² = 2 − 2 a·b for unit vectors.
    let sq = z
        .clone()
        .matmul(z.transpose())
        .mul_scalar(-2.0)
        .add_scalar(2.0)
        .clamp_min(0.0);
    let kernel = sq.mul_scalar(-2.0).exp();
    let off_diagonal_sum = kernel.sum().into_scalar::<f64>() - n as f64;
    (off_diagonal_sum / (n * (n - 1)) as f64).ln()
}

/// The spread of the L2-normalised embeddings per dimension: a collapsed representation has
/// (almost) the same vector for every input, so every dimension's standard deviation is ~0; a
/// healthy one has about `1/√D` (SimSiam, §4).
#[derive(Clone, Debug, PartialEq)]
pub struct Collapse {
    /// Mean over dimensions of the standard deviation of the normalised embeddings.
    pub mean_std: f64,
    /// `mean_std · √D`: about 1 when the embedding spreads over the sphere, 0 when collapsed.
    pub relative_std: f64,
    /// `relative_std < 0.1`.
    pub collapsed: bool,
}

/// Measures [`Collapse`].
///
/// # Shapes
///
/// - z: `[N, D]`, N ≥ 2
///
/// # Panics
///
/// When N < 2.
pub fn collapse(z: Tensor<2>) -> Collapse {
    let [n, d] = z.dims();
    assert!(n >= 2, "collapse: needs at least 2 rows, got {n}");
    let mean_std = normalize(z).var(0).sqrt().mean().into_scalar::<f64>();
    let relative_std = mean_std * (d as f64).sqrt();
    Collapse {
        mean_std,
        relative_std,
        collapsed: relative_std < 0.1,
    }
}
