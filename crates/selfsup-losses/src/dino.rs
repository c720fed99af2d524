use burn::config::Config;
use burn::module::{Module, RunningState};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Tensor};

/// Configuration of [`DinoLoss`].
#[derive(Config, Debug)]
pub struct DinoLossConfig {
    /// Dimension of the head's output (the number of prototypes), e.g. 65536.
    pub output_dim: usize,
    /// Teacher temperature at epoch 0 of the warm-up; must be > 0.
    #[config(default = 0.04)]
    pub warmup_teacher_temp: f64,
    /// Teacher temperature after the warm-up; must be > 0.
    #[config(default = 0.04)]
    pub teacher_temp: f64,
    /// Epochs over which the teacher temperature moves linearly from `warmup_teacher_temp` to
    /// `teacher_temp`.
    #[config(default = 30)]
    pub warmup_teacher_temp_epochs: usize,
    /// Student temperature; must be > 0.
    #[config(default = 0.1)]
    pub student_temp: f64,
    /// Momentum of the center's exponential moving average, in `[0, 1]`.
    #[config(default = 0.9)]
    pub center_momentum: f64,
}

impl DinoLossConfig {
    /// Builds the loss with a zero center on `device`.
    ///
    /// # Panics
    ///
    /// When `output_dim` is 0, a temperature is not > 0, or `center_momentum` is outside `[0, 1]`.
    pub fn init(&self, device: &Device) -> DinoLoss {
        assert!(
            self.output_dim > 0,
            "DinoLoss: output_dim must be > 0, got 0"
        );
        for (name, value) in [
            ("warmup_teacher_temp", self.warmup_teacher_temp),
            ("teacher_temp", self.teacher_temp),
            ("student_temp", self.student_temp),
        ] {
            assert!(
                value.is_finite() && value > 0.0,
                "DinoLoss: {name} must be > 0, got {value}"
            );
        }
        assert!(
            (0.0..=1.0).contains(&self.center_momentum),
            "DinoLoss: center_momentum must be in [0, 1], got {}",
            self.center_momentum
        );
        DinoLoss {
            center: RunningState::new(Tensor::zeros([1, self.output_dim], device)),
            warmup_teacher_temp: self.warmup_teacher_temp,
            teacher_temp: self.teacher_temp,
            warmup_teacher_temp_epochs: self.warmup_teacher_temp_epochs,
            student_temp: self.student_temp,
            center_momentum: self.center_momentum,
        }
    }
}

/// The DINO self-distillation loss, with its center as module state.
///
/// The teacher's outputs are centred and sharpened, `q_t = softmax((teacher_t − c) / τ_t)`, and
/// the student's views are trained to predict them: the loss is the cross-entropy
/// `−q_t · log_softmax(student_s / τ_s)` summed over every pair of a teacher view `t` and a
/// student view `s ≠ t` (same view index skipped) and averaged over pairs and rows. Teacher
/// outputs are constants (detached). After the loss, [`forward`](Self::forward) moves the center
/// towards the batch mean of the teacher outputs, `c ← m·c + (1 − m)·mean(teacher)`: centring
/// keeps one prototype from dominating, sharpening keeps the output from going uniform. The
/// center is saved and loaded with the module. Equals `lightly.loss.DINOLoss`.
///
/// The teacher temperature warms up linearly from `warmup_teacher_temp` to `teacher_temp` over
/// `warmup_teacher_temp_epochs` epochs ([`teacher_temperature`](Self::teacher_temperature)).
///
/// Reference: \[0\] DINO, 2021, arXiv:2104.14294.
///
/// # Example
///
/// ```
/// use burn::tensor::{Distribution, Tensor};
/// use selfsup_losses::DinoLossConfig;
///
/// # let device = selfsup_backend::test_device();
/// let loss = DinoLossConfig::new(16).init(&device);
/// let view = || Tensor::<2>::random([4, 16], Distribution::Normal(0.0, 1.0), &device);
/// let teacher = [view(), view()];                 // global crops
/// let student = [view(), view(), view(), view()]; // global + local crops
/// let value = loss.forward(&teacher, &student, 0);
/// assert!(value.into_scalar::<f32>() > 0.0);
/// ```
#[derive(Module, Debug)]
pub struct DinoLoss {
    /// The running mean of the teacher's outputs, `[1, output_dim]`.
    pub center: RunningState<Tensor<2>>,
    /// Teacher temperature at epoch 0.
    pub warmup_teacher_temp: f64,
    /// Teacher temperature after the warm-up.
    pub teacher_temp: f64,
    /// Length of the warm-up in epochs.
    pub warmup_teacher_temp_epochs: usize,
    /// Student temperature.
    pub student_temp: f64,
    /// Momentum of the center update.
    pub center_momentum: f64,
}

impl DinoLoss {
    /// The teacher temperature at `epoch`: linear from `warmup_teacher_temp` (epoch 0) to
    /// `teacher_temp` (epoch `warmup_teacher_temp_epochs − 1`), then constant.
    pub fn teacher_temperature(&self, epoch: usize) -> f64 {
        let warmup = self.warmup_teacher_temp_epochs;
        if epoch >= warmup {
            return self.teacher_temp;
        }
        if warmup == 1 {
            return self.warmup_teacher_temp;
        }
        let t = epoch as f64 / (warmup - 1) as f64;
        self.warmup_teacher_temp + t * (self.teacher_temp - self.warmup_teacher_temp)
    }

    /// The current center, `[1, output_dim]`.
    pub fn center(&self) -> Tensor<2> {
        self.center.value_sync()
    }

    /// Replaces the center (e.g. to resume from an external checkpoint).
    ///
    /// # Panics
    ///
    /// When the shape is not `[1, output_dim]`.
    pub fn with_center(self, center: Tensor<2>) -> Self {
        let want = self.center().dims();
        assert!(
            center.dims() == want,
            "DinoLoss: center must have shape {want:?}, got {:?}",
            center.dims()
        );
        DinoLoss {
            center: RunningState::new(center.detach()),
            ..self
        }
    }

    /// Computes the loss at `epoch`'s teacher temperature, then updates the center with the
    /// teacher outputs.
    ///
    /// # Shapes
    ///
    /// - teacher: `T` views, each `[N, output_dim]`
    /// - student: `S` views, each `[N, output_dim]`
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// When a view is missing, the shapes disagree, or there is no pair of different views
    /// (`T = S = 1`).
    pub fn forward(&self, teacher: &[Tensor<2>], student: &[Tensor<2>], epoch: usize) -> Tensor<1> {
        let loss = self.loss(teacher, student, self.teacher_temperature(epoch));
        self.update_center(teacher);
        loss
    }

    /// The loss at an explicit teacher temperature, leaving the center unchanged.
    pub fn loss(
        &self,
        teacher: &[Tensor<2>],
        student: &[Tensor<2>],
        teacher_temp: f64,
    ) -> Tensor<1> {
        self.check_views(teacher, student);
        let center = self.center();
        let [n, _] = teacher[0].dims();
        let targets: Vec<Tensor<2>> = teacher
            .iter()
            .map(|t| {
                softmax(
                    (t.clone().detach() - center.clone()).div_scalar(teacher_temp),
                    1,
                )
            })
            .collect();
        let log_predictions: Vec<Tensor<2>> = student
            .iter()
            .map(|s| log_softmax(s.clone().div_scalar(self.student_temp), 1))
            .collect();

        let mut total: Option<Tensor<1>> = None;
        for (t, q) in targets.iter().enumerate() {
            for (s, log_p) in log_predictions.iter().enumerate() {
                if s == t {
                    continue;
                }
                let term = (q.clone() * log_p.clone()).sum().neg();
                total = Some(match total {
                    Some(acc) => acc + term,
                    None => term,
                });
            }
        }
        let pairs = teacher.len() * student.len() - teacher.len().min(student.len());
        total
            .expect("checked: at least one pair")
            .div_scalar((pairs * n) as f64)
    }

    /// `c ← m·c + (1 − m)·mean(all teacher rows)`.
    pub fn update_center(&self, teacher: &[Tensor<2>]) {
        let rows = Tensor::cat(teacher.iter().map(|t| t.clone().detach()).collect(), 0);
        let batch_center = rows.mean_dim(0);
        let m = self.center_momentum;
        let updated = self.center().mul_scalar(m) + batch_center.mul_scalar(1.0 - m);
        self.center.update(updated);
    }

    fn check_views(&self, teacher: &[Tensor<2>], student: &[Tensor<2>]) {
        assert!(
            !teacher.is_empty(),
            "DinoLoss: needs at least one teacher view, got 0"
        );
        assert!(
            !student.is_empty(),
            "DinoLoss: needs at least one student view, got 0"
        );
        assert!(
            teacher.len() * student.len() > teacher.len().min(student.len()),
            "DinoLoss: needs two views (one teacher and one student view with different \
             indices), got {} teacher and {} student views",
            teacher.len(),
            student.len()
        );
        let [_, d] = self.center().dims();
        let want = teacher[0].dims();
        for (kind, views) in [("teacher", teacher), ("student", student)] {
            for (i, v) in views.iter().enumerate() {
                assert!(
                    v.dims() == want && want[1] == d,
                    "DinoLoss: every view must be [N, {d}] like teacher view 0 {want:?}, got \
                     {kind} view {i} {:?}",
                    v.dims()
                );
            }
        }
    }
}
