//! A run's optimizer and learning-rate schedule, from its config.

use burn::grad_clipping::GradientClippingConfig;
use burn::lr_scheduler::LrSchedulerConfig;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer};

use crate::UserError;
use crate::config::RunConfig;

/// The optimizer `config` names: Adam with L2 weight decay, or AdamW with decoupled weight
/// decay; ε = 1e-8 (PyTorch's) and, when `clip_grad > 0`, each parameter's gradient clipped
/// to that norm.
pub fn optimizer(config: &RunConfig) -> ModuleOptimizer {
    let clip =
        (config.clip_grad > 0.0).then_some(GradientClippingConfig::Norm(config.clip_grad as f32));
    match config.optimizer.as_str() {
        "adamw" => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(config.weight_decay as f32)
            .with_grad_clipping(clip)
            .init(),
        _ => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)))
            .with_grad_clipping(clip)
            .init(),
    }
}

/// The learning rate of every step of a run of `total_steps` (Burn's schedulers): constant, or
/// a linear warm-up over `warmup_epochs` followed by a cosine to `min_lr` at the last step.
/// The schedule is a function of the step alone, so a resumed run replays it to its step.
///
/// # Errors
///
/// A schedule Burn rejects (a learning rate above 1).
pub fn lr_scheduler(
    config: &RunConfig,
    steps_per_epoch: usize,
    total_steps: usize,
) -> Result<ModuleLrScheduler, UserError> {
    let lr = config.lr;
    if config.lr_schedule == "constant" {
        return Ok(ModuleLrScheduler::new(lr));
    }
    let total = total_steps.max(1);
    let warmup = ((config.warmup_epochs * steps_per_epoch as f64).round() as usize).min(total - 1);
    let cosine =
        CosineAnnealingLrSchedulerConfig::new(lr, total - warmup).with_min_lr(config.min_lr);
    let built = if warmup == 0 {
        cosine.init()
    } else {
        SequentialLrSchedulerConfig::new(
            vec![
                LrSchedulerConfig::Linear(LinearLrSchedulerConfig::new(
                    lr / warmup as f64,
                    lr,
                    warmup,
                )),
                LrSchedulerConfig::Cosine(cosine),
            ],
            vec![warmup],
        )
        .init()
    };
    built.map_err(|e| UserError(format!("learning-rate schedule: {e}")))
}
