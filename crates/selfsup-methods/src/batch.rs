use burn::tensor::{Int, Tensor};

/// A batch of augmented views: `views[v]` holds view `v` of every sample, row `i` of each view
/// comes from sample `i`. Labels are present for supervised methods (SupCon, labelled triplet)
/// and for evaluation.
#[derive(Clone, Debug)]
pub struct MultiViewBatch {
    /// One `[N, C, H, W]` tensor per view (DINO: global crops first, then local crops).
    pub views: Vec<Tensor<4>>,
    /// Class labels `[N]`, if known.
    pub labels: Option<Tensor<1, Int>>,
}

impl MultiViewBatch {
    /// A batch without labels.
    pub fn new(views: Vec<Tensor<4>>) -> Self {
        MultiViewBatch {
            views,
            labels: None,
        }
    }

    /// The same batch with labels.
    pub fn with_labels(self, labels: Tensor<1, Int>) -> Self {
        MultiViewBatch {
            labels: Some(labels),
            ..self
        }
    }

    /// Panics unless the batch has at least `n` views of one shape.
    pub(crate) fn expect_views(&self, method: &str, n: usize) {
        assert!(
            self.views.len() >= n,
            "{method}: needs at least {n} views per batch, got {}",
            self.views.len()
        );
        let first = self.views[0].dims();
        for (i, v) in self.views.iter().enumerate().take(n) {
            assert!(
                v.dims()[0] == first[0],
                "{method}: every view must hold the same samples; view 0 has {} rows, view {i} has {}",
                first[0],
                v.dims()[0]
            );
        }
    }

    /// The labels, or a panic naming the method that needs them.
    pub(crate) fn expect_labels(&self, method: &str) -> Tensor<1, Int> {
        self.labels.clone().unwrap_or_else(|| {
            panic!("{method}: needs labels; build the batch with MultiViewBatch::with_labels")
        })
    }
}
