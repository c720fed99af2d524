//! NumPy's `.npy` format (version 1.0), written atomically, as new files only.

use std::path::Path;

use crate::UserError;

/// Writes `values` with `shape` and NumPy type `descr` (e.g. `<f4`, `<i8`).
fn write(path: &Path, descr: &str, shape: &[usize], body: Vec<u8>) -> Result<(), UserError> {
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64,
    // ending in a newline.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + body.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(body);
    // `embed` writes only new files, also against another `embed` started at the same time.
    crate::checkpoint::write_new(path, &bytes)
}

/// Writes an `[n, d]` float32 matrix.
pub fn write_f32(path: &Path, values: &[f32], n: usize, d: usize) -> Result<(), UserError> {
    write(
        path,
        "<f4",
        &[n, d],
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// Writes an `[n]` int64 vector.
pub fn write_i64(path: &Path, values: &[i64]) -> Result<(), UserError> {
    write(
        path,
        "<i8",
        &[values.len()],
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}
