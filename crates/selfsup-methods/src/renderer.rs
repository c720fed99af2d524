use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};

/// A burn-train renderer that prints one line per epoch instead of one per batch (burn-train's
/// text renderer without its `tui` feature), for `SupervisedTraining::renderer`.
#[derive(Debug, Default)]
pub struct EpochRenderer {
    total_epochs: usize,
}

impl EpochRenderer {
    /// A new renderer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl MetricsRendererTraining for EpochRenderer {
    fn update_train(&mut self, _state: MetricState) {}
    fn update_valid(&mut self, _state: MetricState) {}
}

impl MetricsRendererEvaluation for EpochRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl TrainingProgressLogger for EpochRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        _starting: usize,
        _items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
    }
    fn update_epoch(&mut self, epoch: usize) {
        println!("epoch {epoch}/{} done", self.total_epochs);
    }
    fn start_split(&mut self, _split: &str, _total_items: usize) {}
    fn update_split(&mut self, _items_processed: usize) {}
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for EpochRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, _name: &str, _total_items: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for EpochRenderer {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _definition: MetricDefinition) {}
}
