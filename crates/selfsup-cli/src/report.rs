//! The end of a run: evaluation with labels (kNN, linear probe, raw-pixel baseline), the
//! label-free metrics, `summary.json`, the pictures and the table printed for the user.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use selfsup_eval::{KnnConfig, LinearProbeConfig, knn_accuracy, linear_probe};
use serde::Serialize;

use crate::UserError;
use crate::config::RunConfig;
use crate::run::{Data, Measurements, labels};
use crate::samples::Split;

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Weighted kNN accuracy of the learned features (test against train).
    pub knn_acc: f64,
    /// Neighbours that vote in the kNN evaluations (`knn-k`).
    pub knn_k: usize,
    /// Linear-probe accuracy on the learned features.
    pub linear_acc: f64,
    /// The same kNN on raw pixels, same split.
    pub raw_knn_acc: f64,
    /// Effective rank of the test features.
    pub rankme: f64,
    /// Alignment of two views of test images.
    pub alignment: f64,
    /// Uniformity of the test features.
    pub uniformity: f64,
    /// Per-dimension spread × √D.
    pub relative_std: f64,
    /// Collapse alarm.
    pub collapsed: bool,
    /// Online probe accuracy over the last epoch (augmented views).
    pub online_probe_acc: f64,
    /// Training images per second.
    pub images_per_s: f64,
    /// Backend.
    pub backend: String,
    /// Method.
    pub method: String,
    /// Encoder.
    pub encoder: String,
    /// Dataset.
    pub dataset: String,
    /// Training / test images.
    pub train_images: usize,
    /// Test images.
    pub test_images: usize,
    /// Epochs.
    pub epochs: usize,
    /// Optimizer steps.
    pub steps: usize,
    /// Feature dimension.
    pub feature_dim: usize,
    /// Wall time of the command, seconds.
    pub wall_s: f64,
}

/// kNN on raw pixels of the same split (the baseline every SSL number is read against).
pub fn raw_knn(split: &Split, knn: &KnnConfig, classes: usize, device: &Device) -> f64 {
    if classes == 0 {
        return f64::NAN;
    }
    knn_accuracy(
        knn,
        split.train.raw_features(device),
        labels(&split.train, device),
        split.test.raw_features(device),
        labels(&split.test, device),
        classes,
    )
}

/// Linear probe on frozen features with the run's settings.
pub fn linear(
    config: &RunConfig,
    data: &Data,
    z_train: Tensor<2>,
    z_test: Tensor<2>,
    device: &Device,
) -> f64 {
    if !data.labelled() {
        return f64::NAN;
    }
    let probe = LinearProbeConfig::new()
        .with_epochs(config.probe_epochs)
        .with_seed(config.seed);
    linear_probe(
        &probe,
        z_train,
        labels(&data.split.train, device),
        z_test,
        labels(&data.split.test, device),
        data.classes,
    )
    .test_accuracy
}

/// Writes `summary.json`, `loss.png` and `pca.png`; returns the picture paths.
/// `class_names` label the scatter's legend (empty for unlabelled data).
#[allow(clippy::too_many_arguments)]
pub fn write(
    dir: &Path,
    summary: &Summary,
    step_losses: &[f64],
    steps_per_epoch: usize,
    z_test: Tensor<2>,
    test_labels: &[u8],
    class_names: &[String],
) -> Result<Vec<PathBuf>, UserError> {
    let json = serde_json::to_string_pretty(summary).expect("the summary serialises");
    crate::checkpoint::write_atomic(&dir.join("summary.json"), json.as_bytes())?;
    let loss_png = dir.join("loss.png");
    let run = format!(
        "{} on {}",
        method_title(&summary.method),
        dataset_title(&summary.dataset)
    );
    crate::plot::loss_curve(
        &loss_png,
        step_losses,
        steps_per_epoch,
        &format!("{run}: training loss"),
    )?;
    let [n, d] = z_test.dims();
    let rows = z_test
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("features convert to f32");
    let pca_png = dir.join("pca.png");
    crate::plot::scatter(
        &pca_png,
        &crate::plot::pca_2d(&rows, n, d),
        test_labels,
        class_names,
        &format!("{run}: test embeddings (PCA)"),
    )?;
    Ok(vec![loss_png, pca_png])
}

/// A method as its paper writes it.
pub fn method_title(method: &str) -> String {
    match method {
        "simclr" => "SimCLR",
        "moco" => "MoCo v2",
        "moco-v3" => "MoCo v3",
        "byol" => "BYOL",
        "simsiam" => "SimSiam",
        "barlow-twins" => "Barlow Twins",
        "vicreg" => "VICReg",
        "dino" => "DINO",
        "supcon" => "SupCon",
        "triplet" => "Triplet",
        "autoencoder" => "Autoencoder",
        "denoising-autoencoder" => "Denoising autoencoder",
        "masked-autoencoder" => "Masked autoencoder",
        other => other,
    }
    .to_string()
}

/// A dataset by its name, or a folder or file by its last component.
fn dataset_title(dataset: &str) -> String {
    Path::new(dataset)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| dataset.to_string())
}

/// A fraction as a percentage; `-` for a measurement that needs labels the data lacks.
fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:5.1} %", x * 100.0)
    } else {
        "    -  ".to_string()
    }
}

/// The table printed at the end of `pretrain` (and by `eval`).
pub fn table(summary: &Summary, measured: &Measurements) -> String {
    let (samples, raw) = if crate::samples::is_csv(&summary.dataset) {
        ("rows", "raw features")
    } else {
        ("images", "raw pixels")
    };
    let mut out = String::new();
    out.push_str(&format!(
        "\n{} + {} on {} ({} train / {} test {samples}), {}, {} epoch{} ({} steps), {:.0} s, {:.0} {samples}/s\n\n",
        summary.method,
        summary.encoder,
        summary.dataset,
        summary.train_images,
        summary.test_images,
        summary.backend,
        summary.epochs,
        crate::plural(summary.epochs),
        summary.steps,
        summary.wall_s,
        summary.images_per_s
    ));
    out.push_str(&format!(
        "  features              {:<21}linear probe\n",
        format!("kNN (k={}, cosine)", summary.knn_k)
    ));
    out.push_str(&format!(
        "  {raw:<20}  {}              -\n",
        percent(summary.raw_knn_acc)
    ));
    out.push_str(&format!(
        "  {:<20}  {}              {}\n",
        format!("{} ({}-d)", summary.method, summary.feature_dim),
        percent(summary.knn_acc),
        percent(summary.linear_acc)
    ));
    let verdict = if !summary.knn_acc.is_finite() {
        "  no labels (no class sub-folders): kNN and linear probe need them; the label-free \
         metrics below still judge the features\n"
            .to_string()
    } else if summary.knn_acc > summary.raw_knn_acc {
        format!(
            "  the learned features beat {raw} by {:.1} points of kNN accuracy\n",
            (summary.knn_acc - summary.raw_knn_acc) * 100.0
        )
    } else if (summary.raw_knn_acc - summary.knn_acc) * 100.0 < 0.05 {
        format!("  the learned features are level with {raw} in kNN accuracy (a tie)\n")
    } else {
        format!(
            "  the learned features do NOT beat {raw} yet ({:.1} points behind); train longer\n",
            (summary.raw_knn_acc - summary.knn_acc) * 100.0
        )
    };
    out.push_str(&verdict);
    out.push_str(&format!(
        "\n  label-free: RankMe {:.1} of {}, alignment {:.3}, uniformity {:.3}, std×√D {:.2} ({})\n",
        measured.rankme,
        summary.feature_dim,
        measured.alignment,
        measured.uniformity,
        measured.relative_std,
        if measured.collapsed { "COLLAPSED" } else { "no collapse" }
    ));
    out.push_str(&format!(
        "  online probe (last epoch, augmented views): {}\n",
        percent(summary.online_probe_acc)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_a_title_and_datasets_their_last_component() {
        for method in crate::config::METHODS {
            assert_ne!(method_title(method), method, "{method} has no title");
        }
        assert_eq!(dataset_title("fashion-mnist-10k"), "fashion-mnist-10k");
        assert_eq!(dataset_title("/data/flowers/"), "flowers");
    }
}
