//! Teachers: momentum (EMA) copies of a student network.
//!
//! A teacher owns all of its state. Burn's `RunningState` (BatchNorm's running mean and
//! variance) is shared by a module's clones, so a plain `clone` would let every train-mode
//! teacher forward move the student's running statistics too. [`teacher_of`] rebuilds those
//! buffers, and [`ema_update`] moves parameters only: each network's running statistics come
//! from its own forward passes, as in lightly's `update_momentum` and solo-learn's
//! `MomentumUpdater` (which iterate over `parameters()`, not buffers).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// A copy of `student` to serve as its teacher: same weights and running statistics, its own
/// buffers (a later forward of either network leaves the other's running statistics alone),
/// fresh parameter ids (so the optimizer never confuses the two) and no gradients (so it never
/// trains).
pub fn teacher_of<M: Module>(student: &M) -> M {
    let mut probe = AutodiffProbe(None);
    student.visit(&mut probe);
    // `valid()` rebuilds every `RunningState` with a buffer of its own (a clone shares it);
    // `train()` restores the training flags and puts the tensors back on autodiff, which a
    // student built on a plain device did not have.
    let copy = student.valid().train();
    let mut fresh = FreshIds {
        autodiff: probe.0.unwrap_or(true),
    };
    copy.map(&mut fresh).no_grad()
}

/// `teacher ← momentum · teacher + (1 − momentum) · student`, parameter by parameter, outside
/// autodiff. Both modules must have the same structure (the teacher is a copy of the student,
/// made by [`teacher_of`]). Buffers (running statistics) are left alone: each network keeps
/// the statistics of its own forward passes. A buffer is recognised by its id, which a
/// `RunningState` keeps through every mapping, so the teacher's buffers carry the student's
/// ids while [`teacher_of`] gave its parameters new ones.
///
/// # Panics
///
/// When `momentum` is outside `[0, 1]`, the structures differ, or the teacher shares every
/// parameter id with the student (a plain clone, not made by [`teacher_of`]).
pub fn ema_update<M: Module>(teacher: M, student: &M, momentum: f64) -> M {
    assert!(
        (0.0..=1.0).contains(&momentum),
        "ema_update: momentum must be in [0, 1], got {momentum}"
    );
    let mut collect = Collect(Vec::new());
    student.visit(&mut collect);
    let count = collect.0.len();
    let mut mapper = Ema {
        student: collect.0.into_iter(),
        momentum,
        updated: 0,
    };
    let updated = teacher.map(&mut mapper);
    assert!(
        mapper.student.next().is_none(),
        "ema_update: the student has more parameters ({count}) than the teacher"
    );
    assert!(
        mapper.updated > 0 || count == 0,
        "ema_update: the teacher shares all {count} parameter ids with the student, so it is \
         a clone, not a teacher; build it with teacher_of(&student)"
    );
    updated
}

/// BYOL's schedule: the momentum rises from `base` to 1 along a half cosine,
/// `1 − (1 − base)·(cos(π·step/total) + 1)/2`.
pub fn cosine_momentum(base: f64, step: usize, total_steps: usize) -> f64 {
    if total_steps == 0 {
        return base;
    }
    let progress = (step.min(total_steps) as f64) / total_steps as f64;
    1.0 - (1.0 - base) * ((std::f64::consts::PI * progress).cos() + 1.0) / 2.0
}

/// Whether the student's tensors are on autodiff (`None`: it has none).
struct AutodiffProbe(Option<bool>);

impl ModuleVisitor for AutodiffProbe {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.get_or_insert_with(|| param.val().is_autodiff());
    }
}

/// New ids for parameters (a `RunningState` keeps its own), values detached and on autodiff
/// exactly when the student's were.
struct FreshIds {
    autodiff: bool,
}

impl ModuleMapper for FreshIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, value, mapper) = param.consume();
        let value = value.detach();
        let value = if self.autodiff {
            value
        } else {
            value.without_autodiff()
        };
        Param::from_mapped_value(ParamId::new(), value, mapper)
    }
}

struct Collect(Vec<(ParamId, Tensor<1>)>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push((
            param.id,
            param.val().detach().without_autodiff().reshape([-1]),
        ));
    }
}

struct Ema {
    student: std::vec::IntoIter<(ParamId, Tensor<1>)>,
    momentum: f64,
    updated: usize,
}

impl ModuleMapper for Ema {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, student) = self
            .student
            .next()
            .expect("ema_update: the teacher has more parameters than the student");
        if id == param.id {
            // A buffer (see `ema_update`): the teacher's own statistics stay.
            return param;
        }
        self.updated += 1;
        let m = self.momentum;
        param.map(|teacher| {
            let autodiff = teacher.is_autodiff();
            let shape = teacher.shape();
            let updated = teacher.without_autodiff().mul_scalar(m)
                + student.reshape(shape).mul_scalar(1.0 - m);
            if autodiff {
                updated.autodiff()
            } else {
                updated
            }
        })
    }
}
