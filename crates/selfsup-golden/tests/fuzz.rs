//! Property tests of the golden-file reader: any text, and the shipped file damaged at random,
//! parses or fails with one error naming the file; a case that parses is evaluated without
//! a panic escaping.

use proptest::prelude::*;
use selfsup_backend::test_device;
use selfsup_golden::{GoldenFile, evaluate};

const SMALL: &str = r#"{"format": "selfsup-golden-v1", "generated_by": "fuzz seed",
  "cases": [{"name": "c", "loss": "nt_xent", "reference": "-", "params": {"temperature": 0.5},
    "inputs": {"z_a": {"shape": [2, 2], "data": [1, 0, 0, 1]},
               "z_b": {"shape": [2, 2], "data": [0, 1, 1, 0]}},
    "int_inputs": {}, "expected": {"loss": 1.0, "grad": {}}}]}"#;

fn check(text: &str) -> Result<(), TestCaseError> {
    match GoldenFile::parse(text, "fuzz.json") {
        Ok(file) => {
            let device = test_device();
            for case in &file.cases {
                // Wrong values fail the comparison; they must not panic out of evaluate.
                let _ = evaluate(case, &device);
            }
        }
        Err(e) => {
            let message = e.to_string();
            prop_assert!(message.contains("fuzz.json"), "{message}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_text_is_read_or_refused(text in "\\PC{0,120}") {
        check(&text)?;
    }

    #[test]
    fn a_damaged_file_is_read_or_refused(
        edits in prop::collection::vec((0usize..SMALL.len(), "[0-9\\-eE.,:\\[\\]{}\" a-z]"), 1..4),
    ) {
        let mut text: Vec<char> = SMALL.chars().collect();
        for (at, with) in edits {
            let at = at % text.len();
            text.splice(at..=at, with.chars());
        }
        check(&text.into_iter().collect::<String>())?;
    }

    #[test]
    fn any_shape_is_read_or_refused(shape in prop::collection::vec(0usize..usize::MAX, 0..4)) {
        let text = SMALL.replace("\"shape\": [2, 2], \"data\": [1, 0, 0, 1]", &format!(
            "\"shape\": {shape:?}, \"data\": [1, 0, 0, 1]"
        ));
        check(&text)?;
    }
}

#[test]
fn errors_speak_json_and_refuse_values_beyond_f32() {
    let message = |text: &str| GoldenFile::parse(text, "g.json").unwrap_err().to_string();
    let typed = message(&SMALL.replace("\"loss\": 1.0", "\"loss\": \"one\""));
    assert!(typed.contains("expected a number"), "{typed}");
    assert!(!typed.contains("f64"), "{typed}");
    let listed = message(&SMALL.replace("\"cases\": [", "\"cases\": 3, \"x\": ["));
    assert!(listed.contains("expected a list"), "{listed}");
    let huge = message(&SMALL.replace("[1, 0, 0, 1]", "[1e300, 0, 0, 1]"));
    assert!(
        huge.contains("input 'z_a'[0] = 1e300 is beyond f32's range"),
        "{huge}"
    );
    // In range, the same file parses.
    assert!(GoldenFile::parse(SMALL, "g.json").is_ok());
}
