//! `selfsup golden FILE`: checks every case of a golden file on each backend.

use crate::{UserError, parse_backends};
use clap::Args;
use selfsup_backend::{Backend, device, probe};
use selfsup_golden::{CaseError, GoldenFile, Tolerance, compare, evaluate};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct GoldenArgs {
    /// A file in the selfsup-golden-v1 format.
    file: PathBuf,
    /// Backends to check on, comma-separated [default: the default backend].
    #[arg(long, value_name = "LIST")]
    backends: Option<String>,
    /// Report loss kinds selfsup does not implement without counting them as failures.
    #[arg(long)]
    allow_missing: bool,
}

pub fn run(args: GoldenArgs) -> Result<ExitCode, UserError> {
    let backends = match &args.backends {
        Some(list) => parse_backends("--backends", list)?,
        None => vec![Backend::from_env().map_err(|e| UserError(e.to_string()))?],
    };
    let file = GoldenFile::load(&args.file).map_err(|e| UserError(e.to_string()))?;
    if file.cases.is_empty() {
        return Err(UserError(format!(
            "{}: the file holds no cases",
            args.file.display()
        )));
    }
    let cases = match file.cases.len() {
        1 => "1 case".to_string(),
        n => format!("{n} cases"),
    };
    let by = file.generated_by.trim();
    if by.is_empty() {
        println!("golden: {} ({cases})", args.file.display());
    } else {
        println!("golden: {} ({cases}; {by})", args.file.display());
    }

    let (mut passed, mut failed, mut missing) = (0usize, 0usize, 0usize);
    let width = file.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for backend in backends {
        if let Err(why) = probe(backend).result {
            println!("{backend}: unusable here: {why}");
            failed += file.cases.len();
            continue;
        }
        let dev = device(backend);
        let tolerance = Tolerance::for_backend(backend);
        for case in &file.cases {
            let name = &case.name;
            match crate::quietly(|| evaluate(case, &dev)) {
                Ok(checks) => {
                    let cmp = compare(&checks, tolerance);
                    let verdict = if cmp.passed {
                        passed += 1;
                        "pass".to_string()
                    } else {
                        failed += 1;
                        format!("FAIL  {}", cmp.first_failure.unwrap_or_default())
                    };
                    println!(
                        "{name:<width$}  {backend:<7}  abs {:.1e}  rel {:.1e}  {verdict}",
                        cmp.worst_abs, cmp.worst_rel
                    );
                }
                Err(CaseError::NotImplemented(kind)) => {
                    missing += 1;
                    println!("{name:<width$}  {backend:<7}  not implemented (loss '{kind}')");
                }
                Err(CaseError::Failed(why)) => {
                    failed += 1;
                    println!("{name:<width$}  {backend:<7}  FAIL  {why}");
                }
            }
        }
    }
    println!("golden: {passed} passed, {failed} failed, {missing} not implemented");
    let ok = failed == 0 && (missing == 0 || args.allow_missing);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
