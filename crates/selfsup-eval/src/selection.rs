//! Choosing a checkpoint without labels, and measuring how well a label-free metric ranks
//! checkpoints the way a labelled one does.

/// The label-free measurements of one checkpoint (one row of a run's per-epoch metrics).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointMetrics {
    /// RankMe of the test features.
    pub rankme: f64,
    /// Alignment of two views (lower is better).
    pub alignment: f64,
    /// Uniformity (lower is better).
    pub uniformity: f64,
    /// Per-dimension spread × √D.
    pub relative_std: f64,
    /// The collapse alarm.
    pub collapsed: bool,
}

/// The checkpoint a label-free criterion picks: the highest RankMe among the checkpoints the
/// collapse alarm did not flag (RankMe tracks downstream accuracy across checkpoints and
/// hyper-parameters; Garrido et al. 2023, arXiv:2210.02885). Ties go to the later checkpoint.
/// `None` when every checkpoint collapsed or RankMe is not finite anywhere.
pub fn select_label_free(checkpoints: &[CheckpointMetrics]) -> Option<usize> {
    checkpoints
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.collapsed && c.rankme.is_finite())
        .fold(None, |best: Option<(usize, f64)>, (i, c)| match best {
            Some((_, r)) if r > c.rankme => best,
            _ => Some((i, c.rankme)),
        })
        .map(|(i, _)| i)
}

/// Spearman's rank correlation of two equally long series (ties get their mean rank): 1 when
/// `b` orders the items exactly as `a` does, −1 when exactly reversed. NaN when there are fewer
/// than two items or a series is constant.
///
/// # Panics
///
/// When the lengths differ or a value is NaN.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "spearman: the series have {} and {} values",
        a.len(),
        b.len()
    );
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// 0-based ranks, ties at their mean rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    assert!(
        values.iter().all(|v| !v.is_nan()),
        "spearman: a value is NaN: {values:?}"
    );
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        for &i in &order[start..=end] {
            ranks[i] = (start + end) as f64 / 2.0;
        }
        start = end + 1;
    }
    ranks
}
