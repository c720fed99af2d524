//! CSV tables for tabular self-supervised learning: numeric feature columns and, optionally, an
//! integer class label in the last column.

use std::path::Path;

use crate::DataError;

/// Rows of `f32` features with optional labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Row-major features, `len() · columns`.
    pub features: Vec<f32>,
    /// One label per row when the table is labelled, else empty.
    pub labels: Vec<u8>,
    /// Feature columns.
    pub columns: usize,
    /// Names of the feature columns (from the header; `c0, c1, …` without one).
    pub names: Vec<String>,
}

impl Table {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.features.len() / self.columns.max(1)
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The features of row `i`.
    ///
    /// # Panics
    ///
    /// When `i` is out of range.
    pub fn row(&self, i: usize) -> &[f32] {
        assert!(
            i < self.len(),
            "Table: row {i} out of range (len {})",
            self.len()
        );
        &self.features[i * self.columns..(i + 1) * self.columns]
    }
}

/// Parses CSV text (comma-separated, no quoting). A first line with a non-numeric field is a
/// header: column names, or scikit-learn's `n_samples,n_features,class names…` (checked against
/// the rows). With `labelled`, the last column is the class label (an integer in `0..=255`).
///
/// # Errors
///
/// Ragged rows, non-numeric or non-finite values, bad labels, or no data row — each naming the
/// line and column.
pub fn parse_csv(text: &str, labelled: bool, path: &Path) -> Result<Table, DataError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .peekable();
    let split = |line: &str| {
        line.split(',')
            .map(str::trim)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    if let Some((_, first)) = lines.peek()
        && !first.contains(',')
        && let Some(separator) = [';', '\t', '|'].into_iter().find(|c| first.contains(*c))
    {
        return Err(DataError::new(
            path,
            format!(
                "fields are separated by {separator:?}, and selfsup reads comma-separated \
                 values: convert the file (e.g. `tr {separator:?} ','`)"
            ),
        ));
    }
    if let Some((number, first)) = lines.peek()
        && first.trim_start().starts_with('#')
    {
        return Err(DataError::new(
            path,
            format!(
                "line {} is a comment, and CSV has none: remove the lines starting with #",
                number + 1
            ),
        ));
    }
    let mut header = None;
    if let Some((_, first)) = lines.peek()
        && split(first)
            .iter()
            .any(|field| field.parse::<f64>().is_err())
    {
        header = Some(split(first));
        lines.next();
    }
    // scikit-learn's bundled tables (iris.csv, wine_data.csv, breast_cancer.csv) start with
    // `n_samples,n_features,class names…` instead of column names.
    let sklearn = header.as_ref().and_then(|h| match h.as_slice() {
        [samples, columns, ..] => Some((
            samples.parse::<usize>().ok()?,
            columns.parse::<usize>().ok()?,
        )),
        _ => None,
    });
    if sklearn.is_some() {
        header = None;
    }
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    let mut width = header.as_ref().map(Vec::len);
    let mut rows = 0;
    for (number, line) in lines {
        rows += 1;
        let fields = split(line);
        let expected = *width.get_or_insert(fields.len());
        if fields.len() != expected {
            // `"1,5"` is a decimal comma inside quotes: the split above cut it in two.
            let hint = if line.contains('"') {
                "; a quoted field holds a comma, and selfsup reads plain numbers \
                 (write decimals with a point, e.g. 1.5, and remove the quotes)"
            } else if line.trim_start().starts_with('#') {
                "; it is a comment, and CSV has none: remove the lines starting with #"
            } else {
                ""
            };
            return Err(DataError::new(
                path,
                format!(
                    "line {}: {} fields, expected {expected}{hint}",
                    number + 1,
                    fields.len()
                ),
            ));
        }
        let feature_fields = if labelled { expected - 1 } else { expected };
        for (column, field) in fields[..feature_fields].iter().enumerate() {
            match field.parse::<f32>() {
                Ok(value) if value.is_finite() => features.push(value),
                parsed => {
                    let why = match parsed {
                        Ok(_) if field.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
                            "is beyond the range of 32-bit floats (±3.4e38)"
                        }
                        _ if field.trim().starts_with('"') || field.trim().starts_with('\'') => {
                            "is quoted; selfsup reads plain numbers (remove the quotes)"
                        }
                        _ => "is not a finite number",
                    };
                    return Err(DataError::new(
                        path,
                        format!(
                            "line {}, column {}: '{field}' {why}",
                            number + 1,
                            column + 1
                        ),
                    ));
                }
            }
        }
        if labelled {
            let field = &fields[expected - 1];
            let label = field
                .parse::<f64>()
                .ok()
                .filter(|v| v.fract() == 0.0 && (0.0..=255.0).contains(v));
            let Some(label) = label else {
                return Err(DataError::new(
                    path,
                    format!(
                        "line {}: label '{field}' is not an integer class in 0..=255 (last column)",
                        number + 1
                    ),
                ));
            };
            labels.push(label as u8);
        }
    }
    let Some(width) = width.filter(|_| rows > 0) else {
        return Err(DataError::new(path, "no data rows"));
    };
    let columns = if labelled { width - 1 } else { width };
    if columns == 0 {
        return Err(DataError::new(path, "no feature column"));
    }
    if let Some((samples, expected)) = sklearn
        && (samples != rows || expected != columns)
    {
        return Err(DataError::new(
            path,
            format!(
                "the first line announces {samples} rows of {expected} features, the file has \
                 {rows} rows of {columns}"
            ),
        ));
    }
    let names = match header {
        Some(names) => names[..columns].to_vec(),
        None => (0..columns).map(|c| format!("c{c}")).collect(),
    };
    Ok(Table {
        features,
        labels,
        columns,
        names,
    })
}

/// Reads a CSV file (see [`parse_csv`]); `.gz` files are decompressed.
///
/// # Errors
///
/// An unreadable file, or the errors of [`parse_csv`].
pub fn read_csv(path: impl AsRef<Path>, labelled: bool) -> Result<Table, DataError> {
    let path = path.as_ref();
    crate::check_regular_file(path)?;
    let raw = std::fs::read(path).map_err(|e| DataError::new(path, format!("cannot read: {e}")))?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        crate::idx::gunzip(&raw, path)?
    } else {
        raw
    };
    // UTF-16 (what some spreadsheet programs save as "Unicode text") has a NUL byte beside
    // every ASCII character, which is valid UTF-8 but no number.
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) || bytes.contains(&0) {
        return Err(DataError::new(
            path,
            "is UTF-16 text (or binary); save it as UTF-8 (plain) CSV",
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| DataError::new(path, "not UTF-8 text; is it a CSV file?"))?;
    // A UTF-8 byte-order mark would make the first field no number (and a data row a header).
    parse_csv(
        text.strip_prefix('\u{feff}').unwrap_or(&text),
        labelled,
        path,
    )
}
