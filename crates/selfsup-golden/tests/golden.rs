//! selfsup's losses against the reference values shipped in `tests/fixtures/losses.json`
//! (torch 2.9.0, lightly 1.6.0, pytorch-metric-learning 2.9.0, float64; see `FORMAT.md`).
//! Runs on the backend chosen by `SELFSUP_BACKEND`.

use selfsup_backend::{Backend, test_device};
use selfsup_golden::{CaseError, GoldenFile, SHIPPED, Tolerance, compare, evaluate};

fn shipped() -> GoldenFile {
    GoldenFile::parse(SHIPPED, "tests/fixtures/losses.json").expect("the shipped file is valid")
}

/// Checks every shipped case of one loss kind, loss and gradients.
fn check_kind(kind: &str) {
    let device = test_device();
    let tolerance = Tolerance::for_backend(Backend::from_env().unwrap());
    let file = shipped();
    let cases: Vec<_> = file.cases.iter().filter(|c| c.loss == kind).collect();
    assert!(!cases.is_empty(), "no shipped case of kind {kind}");
    let mut failures = Vec::new();
    for case in cases {
        match evaluate(case, &device) {
            Ok(checks) => {
                let cmp = compare(&checks, tolerance);
                if !cmp.passed {
                    failures.push(format!("{}: {}", case.name, cmp.first_failure.unwrap()));
                }
            }
            Err(e) => failures.push(format!("{}: {e:?}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn nt_xent_matches_lightly() {
    check_kind("nt_xent");
}

#[test]
fn info_nce_matches_moco() {
    check_kind("info_nce");
}

#[test]
fn negative_cosine_matches_lightly() {
    check_kind("negative_cosine");
}

#[test]
fn barlow_twins_matches_lightly() {
    check_kind("barlow_twins");
}

#[test]
fn vicreg_matches_lightly() {
    check_kind("vicreg");
}

#[test]
fn triplet_margin_matches_pml() {
    check_kind("triplet_margin");
}

#[test]
fn contrastive_matches_pml() {
    check_kind("contrastive");
}

#[test]
fn supcon_matches_reference() {
    check_kind("supcon");
}

#[test]
fn dino_matches_lightly_including_center() {
    check_kind("dino");
}

#[test]
fn mse_matches_torch() {
    check_kind("mse");
}

#[test]
fn bce_with_logits_matches_torch() {
    check_kind("bce_with_logits");
}

/// A wrong expected value must be caught and the failure must name what differs.
#[test]
fn wrong_expected_value_fails() {
    let mut json: serde_json::Value = serde_json::from_str(SHIPPED).unwrap();
    let case = &mut json["cases"][0];
    let name = case["name"].as_str().unwrap().to_string();
    let loss = case["expected"]["loss"].as_f64().unwrap();
    case["expected"]["loss"] = serde_json::json!(loss * 1.01);
    case["expected"]["grad"]["z_b"]["data"][3] = serde_json::json!(0.5);
    let file = GoldenFile::parse(&json.to_string(), "edited.json").unwrap();

    let checks = evaluate(&file.cases[0], &test_device()).unwrap();
    let cmp = compare(&checks, Tolerance::GPU_F32);
    assert!(!cmp.passed, "{name} should fail");
    assert!(cmp.first_failure.unwrap().starts_with("loss: got"));

    let only_grad: Vec<_> = checks.into_iter().filter(|c| c.name != "loss").collect();
    let cmp = compare(&only_grad, Tolerance::GPU_F32);
    assert_eq!(
        cmp.first_failure.unwrap().split(':').next().unwrap(),
        "grad.z_b[3]"
    );
}

#[test]
fn every_shipped_kind_is_implemented() {
    for case in &shipped().cases {
        assert!(
            selfsup_golden::IMPLEMENTED.contains(&case.loss.as_str()),
            "{} uses loss '{}', which the runner does not implement",
            case.name,
            case.loss
        );
    }
}

#[test]
fn unknown_loss_kind_is_not_implemented() {
    let mut json: serde_json::Value = serde_json::from_str(SHIPPED).unwrap();
    json["cases"][0]["loss"] = serde_json::json!("arcface");
    let file = GoldenFile::parse(&json.to_string(), "edited.json").unwrap();
    assert_eq!(
        evaluate(&file.cases[0], &test_device()).unwrap_err(),
        CaseError::NotImplemented("arcface".into())
    );
}

#[test]
fn invalid_parameter_is_a_failure_not_a_crash() {
    let mut json: serde_json::Value = serde_json::from_str(SHIPPED).unwrap();
    json["cases"][0]["params"]["temperature"] = serde_json::json!(-0.5);
    let file = GoldenFile::parse(&json.to_string(), "edited.json").unwrap();
    match evaluate(&file.cases[0], &test_device()) {
        Err(CaseError::Failed(msg)) => {
            assert!(msg.contains("temperature must be > 0, got -0.5"), "{msg}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn inconsistent_files_are_rejected_with_the_case_name() {
    let mut json: serde_json::Value = serde_json::from_str(SHIPPED).unwrap();
    json["cases"][1]["inputs"]["z_a"]["shape"] = serde_json::json!([5, 3]);
    let err = GoldenFile::parse(&json.to_string(), "bad.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("bad.json: case 'nt_xent/n4_d3_t0.1': input 'z_a' has shape [5, 3]"),
        "{err}"
    );

    let err = GoldenFile::parse("{\"format\": \"other\", \"cases\": []}", "x.json")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "x.json: format is 'other', expected 'selfsup-golden-v1'"
    );

    let err = GoldenFile::parse("[1, 2", "y.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("y.json: not a selfsup-golden-v1 file:"),
        "{err}"
    );

    let err = GoldenFile::load("/nonexistent/golden.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/nonexistent/golden.json: cannot read:"),
        "{err}"
    );
}
