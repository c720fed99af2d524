//! Teachers: momentum (EMA) copies of a student network.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// A copy of `student` to serve as its teacher: same weights, fresh parameter ids (so the
/// optimizer never confuses the two) and no gradients (so it never trains).
pub fn teacher_of<M: Module>(student: &M) -> M {
    student.clone().map(&mut FreshIds).no_grad()
}

/// `teacher ← momentum · teacher + (1 − momentum) · student`, parameter by parameter, outside
/// autodiff. Both modules must have the same structure (the teacher is a copy of the student).
///
/// # Panics
///
/// When `momentum` is outside `[0, 1]` or the structures differ.
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
    };
    let updated = teacher.map(&mut mapper);
    assert!(
        mapper.student.next().is_none(),
        "ema_update: the student has more parameters ({count}) than the teacher"
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

struct FreshIds;

impl ModuleMapper for FreshIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, value, mapper) = param.consume();
        Param::from_mapped_value(ParamId::new(), value.detach(), mapper)
    }
}

struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0
            .push(param.val().detach().without_autodiff().reshape([-1]));
    }
}

struct Ema {
    student: std::vec::IntoIter<Tensor<1>>,
    momentum: f64,
}

impl ModuleMapper for Ema {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let student = self
            .student
            .next()
            .expect("ema_update: the teacher has more parameters than the student");
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
