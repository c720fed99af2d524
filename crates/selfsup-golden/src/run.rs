//! Computes a golden case with selfsup's losses on a device.

use burn::tensor::{Device, Int, Tensor, TensorData};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::format::Case;
use selfsup_losses::{
    BarlowTwinsLossConfig, ContrastiveLossConfig, DinoLossConfig, Distance, InfoNceLossConfig,
    MocoV3LossConfig, NegativeCosineSimilarity, NtXentLossConfig, ReconstructionKind,
    ReconstructionLossConfig, SupConLossConfig, TripletMarginLossConfig, TripletMining,
    TripletReduction, VicRegLossConfig,
};

/// One quantity computed by selfsup next to the reference's value.
#[derive(Clone, Debug)]
pub struct Check {
    /// `loss`, `grad.<input>` or another named result (e.g. `center_after`).
    pub name: String,
    /// What selfsup computed.
    pub got: Vec<f64>,
    /// What the reference computed.
    pub want: Vec<f64>,
}

/// Why a case produced no checks.
#[derive(Clone, Debug, PartialEq)]
pub enum CaseError {
    /// selfsup has no implementation of this loss kind yet.
    NotImplemented(String),
    /// The case is malformed for its loss kind, or the loss rejected it (the message says why).
    Failed(String),
}

/// The loss kinds this runner can compute.
pub const IMPLEMENTED: &[&str] = &[
    "nt_xent",
    "info_nce",
    "moco_v3",
    "negative_cosine",
    "barlow_twins",
    "vicreg",
    "triplet_margin",
    "contrastive",
    "supcon",
    "dino",
    "mse",
    "bce_with_logits",
];

/// Computes the case's loss and gradients on `device` (autodiff is enabled on it here) and
/// pairs every result with the expected value. A loss that panics on the case's parameters is
/// reported as [`CaseError::Failed`] with the panic message, not propagated.
pub fn evaluate(case: &Case, device: &Device) -> Result<Vec<Check>, CaseError> {
    if !IMPLEMENTED.contains(&case.loss.as_str()) {
        return Err(CaseError::NotImplemented(case.loss.clone()));
    }
    let device = device.clone().autodiff();
    match catch_unwind(AssertUnwindSafe(|| compute(case, &device))) {
        Ok(result) => result.map_err(CaseError::Failed),
        Err(panic) => Err(CaseError::Failed(format!(
            "the loss refuses the case: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        ))),
    }
}

/// Every float input becomes a flat leaf that requires a gradient; losses see it reshaped to
/// its declared shape, so gradients land on the leaf whatever the rank.
struct Leaves<'a> {
    case: &'a Case,
    device: &'a Device,
    flat: BTreeMap<String, Tensor<1>>,
}

impl<'a> Leaves<'a> {
    fn new(case: &'a Case, device: &'a Device) -> Self {
        let flat = case
            .inputs
            .iter()
            .map(|(name, t)| {
                let values: Vec<f32> = t.data.iter().map(|&v| v as f32).collect();
                let leaf = Tensor::<1>::from_data(TensorData::new(values, [t.data.len()]), device)
                    .require_grad();
                (name.clone(), leaf)
            })
            .collect();
        Leaves { case, device, flat }
    }

    fn leaf(&self, name: &str) -> Result<Tensor<1>, String> {
        self.case.input(name)?;
        Ok(self.flat[name].clone())
    }

    fn matrix(&self, name: &str) -> Result<Tensor<2>, String> {
        let shape = &self.case.input(name)?.shape;
        match shape.as_slice() {
            &[rows, cols] => Ok(self.flat[name].clone().reshape([rows, cols])),
            other => Err(format!(
                "input '{name}' must be 2-D [N, D], got shape {other:?}"
            )),
        }
    }

    fn labels(&self, name: &str) -> Result<Tensor<1, Int>, String> {
        let t = self.case.int_input(name)?;
        if t.shape.len() != 1 {
            return Err(format!(
                "int input '{name}' must be 1-D [N], got shape {:?}",
                t.shape
            ));
        }
        Ok(Tensor::<1, Int>::from_data(
            TensorData::new(t.data.clone(), [t.data.len()]),
            self.device,
        ))
    }
}

fn compute(case: &Case, device: &Device) -> Result<Vec<Check>, String> {
    let x = Leaves::new(case, device);
    let mut extra = Vec::new();
    let loss = match case.loss.as_str() {
        "nt_xent" => NtXentLossConfig::new()
            .with_temperature(case.param_f64("temperature")?)
            .init()
            .forward(x.matrix("z_a")?, x.matrix("z_b")?),
        "info_nce" => InfoNceLossConfig::new()
            .with_temperature(case.param_f64("temperature")?)
            .init()
            .forward(
                x.matrix("query")?,
                x.matrix("positive_key")?,
                x.matrix("negatives")?,
            ),
        "moco_v3" => MocoV3LossConfig::new()
            .with_temperature(case.param_f64("temperature")?)
            .init()
            .forward(
                x.matrix("query_a")?,
                x.matrix("query_b")?,
                x.matrix("key_a")?,
                x.matrix("key_b")?,
            ),
        "negative_cosine" => {
            NegativeCosineSimilarity::new().forward(x.matrix("x0")?, x.matrix("x1")?)
        }
        "barlow_twins" => BarlowTwinsLossConfig::new()
            .with_lambda(case.param_f64("lambda")?)
            .init()
            .forward(x.matrix("z_a")?, x.matrix("z_b")?),
        "vicreg" => VicRegLossConfig::new()
            .with_lambda(case.param_f64("lambda")?)
            .with_mu(case.param_f64("mu")?)
            .with_nu(case.param_f64("nu")?)
            .with_eps(case.param_f64("eps")?)
            .init()
            .forward(x.matrix("z_a")?, x.matrix("z_b")?),
        "triplet_margin" => {
            let reduction = match case.params.get("reduction") {
                Some(_) => case.param_str("reduction")?.parse::<TripletReduction>()?,
                None => TripletReduction::MeanNonzero,
            };
            TripletMarginLossConfig::new()
                .with_margin(case.param_f64("margin")?)
                .with_distance(case.param_str("distance")?.parse::<Distance>()?)
                .with_normalize(case.param_bool("normalize")?)
                .with_mining(case.param_str("mining")?.parse::<TripletMining>()?)
                .with_reduction(reduction)
                .init()
                .forward(x.matrix("embeddings")?, x.labels("labels")?)
        }
        "contrastive" => {
            if let Some(reduction) = case.params.get("reduction")
                && reduction != "mean_nonzero_per_term"
            {
                return Err(format!(
                    "contrastive reduction {reduction} is not supported; selfsup implements \
                     mean_nonzero_per_term"
                ));
            }
            ContrastiveLossConfig::new()
                .with_pos_margin(case.param_f64("pos_margin")?)
                .with_neg_margin(case.param_f64("neg_margin")?)
                .with_distance(case.param_str("distance")?.parse::<Distance>()?)
                .with_normalize(case.param_bool("normalize")?)
                .init()
                .forward(x.matrix("embeddings")?, x.labels("labels")?)
        }
        "supcon" => SupConLossConfig::new()
            .with_temperature(case.param_f64("temperature")?)
            .init()
            .forward(x.matrix("embeddings")?, x.labels("labels")?),
        "dino" => {
            let views = |prefix: &str, count: usize| -> Result<Vec<Tensor<2>>, String> {
                (0..count)
                    .map(|i| x.matrix(&format!("{prefix}_{i}")))
                    .collect()
            };
            let teacher = views("teacher", case.param_usize("teacher_views")?)?;
            let student = views("student", case.param_usize("student_views")?)?;
            let center = case.param_tensor("center_before")?;
            let dim = *center
                .shape
                .last()
                .ok_or("param 'center_before' has no dimensions")?;
            let center_values: Vec<f32> = center.data.iter().map(|&v| v as f32).collect();
            let teacher_temp = case.param_f64("teacher_temp")?;
            let dino = DinoLossConfig::new(dim)
                .with_warmup_teacher_temp(teacher_temp)
                .with_teacher_temp(teacher_temp)
                .with_student_temp(case.param_f64("student_temp")?)
                .with_center_momentum(case.param_f64("center_momentum")?)
                .init(device)
                .with_center(Tensor::from_data(
                    TensorData::new(center_values, [1, dim]),
                    device,
                ));
            let loss = dino.forward(&teacher, &student, usize::MAX);
            if case.params.contains_key("center_after") {
                extra.push(Check {
                    name: "center_after".to_string(),
                    got: to_f64(dino.center()),
                    want: case.param_tensor("center_after")?.data,
                });
            }
            loss
        }
        "mse" => reconstruction(ReconstructionKind::Mse, x.leaf("x")?, x.leaf("target")?)?,
        "bce_with_logits" => reconstruction(
            ReconstructionKind::BceWithLogits,
            x.leaf("logits")?,
            x.leaf("target")?,
        )?,
        other => return Err(format!("loss '{other}' has no runner")),
    };
    Ok(checks(case, &x, loss, extra))
}

fn reconstruction(
    kind: ReconstructionKind,
    x: Tensor<1>,
    target: Tensor<1>,
) -> Result<Tensor<1>, String> {
    Ok(ReconstructionLossConfig::new()
        .with_kind(kind)
        .init()
        .forward(x, target))
}

/// Back-propagates `loss` and pairs the loss, every expected gradient and any `extra` results
/// with their reference values. An input that received no gradient (a constant) counts as 0.
fn checks(case: &Case, x: &Leaves<'_>, loss: Tensor<1>, extra: Vec<Check>) -> Vec<Check> {
    let grads = loss.backward();
    let loss_value = to_f64(loss.detach());
    let mut out = vec![Check {
        name: "loss".to_string(),
        got: loss_value,
        want: vec![case.expected.loss],
    }];
    for (name, want) in &case.expected.grad {
        let leaf = &x.flat[name];
        let got = match leaf.grad(&grads) {
            Some(g) => to_f64(g),
            None => vec![0.0; want.data.len()],
        };
        out.push(Check {
            name: format!("grad.{name}"),
            got,
            want: want.data.clone(),
        });
    }
    out.extend(extra);
    out
}

fn to_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("a float tensor converts to f64")
}
