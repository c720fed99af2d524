//! The `selfsup-golden-v1` file format: reading and validating it.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The format name every file must declare.
pub const FORMAT: &str = "selfsup-golden-v1";

/// A golden file: reference values for a list of loss cases.
#[derive(Clone, Debug, Deserialize)]
pub struct GoldenFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Which reference implementations produced the values (provenance).
    #[serde(default)]
    pub generated_by: String,
    /// The cases, each with a unique name.
    pub cases: Vec<Case>,
}

/// One reference computation: a loss, its parameters, inputs and expected loss and gradients.
#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    /// Unique name, e.g. `nt_xent/n8_d16_t0.5`.
    pub name: String,
    /// Which loss, e.g. `nt_xent` (see `FORMAT.md`).
    pub loss: String,
    /// The exact reference call, for humans.
    #[serde(default)]
    pub reference: String,
    /// Loss parameters: numbers, strings, booleans or tensors.
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// Float inputs; gradients are expected for each.
    #[serde(default)]
    pub inputs: BTreeMap<String, FloatTensor>,
    /// Integer inputs (labels).
    #[serde(default)]
    pub int_inputs: BTreeMap<String, IntTensor>,
    /// The reference loss and gradients.
    pub expected: Expected,
}

/// A float tensor stored row-major.
#[derive(Clone, Debug, Deserialize)]
pub struct FloatTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
}

/// An integer tensor stored row-major.
#[derive(Clone, Debug, Deserialize)]
pub struct IntTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<i64>,
}

/// What the reference computed.
#[derive(Clone, Debug, Deserialize)]
pub struct Expected {
    /// The scalar loss.
    pub loss: f64,
    /// `d loss / d input` for each float input (zeros for inputs the reference treats as
    /// constants).
    #[serde(default)]
    pub grad: BTreeMap<String, FloatTensor>,
}

/// Why a golden file or case could not be used.
#[derive(Debug)]
pub enum GoldenError {
    /// The file could not be read.
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid JSON in the expected layout.
    Parse {
        /// The file.
        path: String,
        /// What serde found.
        message: String,
    },
    /// The file parsed but something in it is inconsistent.
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, naming the case and field.
        message: String,
    },
}

impl fmt::Display for GoldenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoldenError::Io { path, source } => write!(f, "{path}: cannot read: {source}"),
            GoldenError::Parse { path, message } => {
                write!(f, "{path}: not a {FORMAT} file: {message}")
            }
            GoldenError::Invalid { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for GoldenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GoldenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl GoldenFile {
    /// Reads and validates a golden file.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, is not JSON in this format, or is inconsistent (a shape
    /// that does not match its data, a duplicated case name, a gradient for an unknown input).
    pub fn load(path: impl AsRef<Path>) -> Result<GoldenFile, GoldenError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        // Golden files are megabytes; a device like /dev/zero or a huge file is refused, not
        // read into memory.
        use std::io::Read;
        const MAX_BYTES: u64 = 256 << 20;
        let io = |source| GoldenError::Io {
            path: shown.clone(),
            source,
        };
        if let Ok(meta) = std::fs::metadata(path)
            && !meta.is_file()
        {
            return Err(GoldenError::Invalid {
                path: shown,
                message: "not a regular file (a folder, FIFO or device); give a golden file".into(),
            });
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_BYTES + 1).read_to_end(&mut bytes))
            .map_err(io)?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(GoldenError::Invalid {
                path: shown,
                message: format!("larger than {} MiB; not a golden file", MAX_BYTES >> 20),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| GoldenError::Invalid {
            path: shown.clone(),
            message: "not UTF-8 text; not a golden file".into(),
        })?;
        GoldenFile::parse(&text, &shown)
    }

    /// Parses and validates the text of a golden file; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`GoldenFile::load`], except for I/O.
    pub fn parse(text: &str, origin: &str) -> Result<GoldenFile, GoldenError> {
        let failed = |message: String| GoldenError::Parse {
            path: origin.to_string(),
            message,
        };
        // With the path of what is wrong (`cases[0].expected: missing field `loss``): serde
        // alone names the field, not the object it is missing from.
        let mut reader = serde_json::Deserializer::from_str(text);
        let file: GoldenFile = serde_path_to_error::deserialize(&mut reader).map_err(|e| {
            let at = e.path().to_string();
            let message = plain_serde(&e.into_inner().to_string());
            failed(if at.is_empty() || at == "." {
                message
            } else {
                format!("{at}: {message}")
            })
        })?;
        reader
            .end()
            .map_err(|e| failed(plain_serde(&e.to_string())))?;
        file.validate().map_err(|message| GoldenError::Invalid {
            path: origin.to_string(),
            message,
        })?;
        Ok(file)
    }

    fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format is '{}', expected '{FORMAT}'", self.format));
        }
        let mut seen = std::collections::HashSet::new();
        for case in &self.cases {
            if !seen.insert(case.name.as_str()) {
                return Err(format!("case name '{}' appears twice", case.name));
            }
            case.validate()
                .map_err(|e| format!("case '{}': {e}", case.name))?;
        }
        Ok(())
    }
}

/// serde's message with its Rust type names in the words of a JSON file.
fn plain_serde(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, json) in [
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected i64", "expected an integer"),
        ("expected a sequence", "expected a list [...]"),
        ("expected a map", "expected an object {...}"),
        ("expected a string", "expected a string \"...\""),
    ] {
        out = out.replace(rust, json);
    }
    // "expected struct Case" and the like.
    while let Some(at) = out.find("expected struct ") {
        let end = out[at + 16..]
            .find(|c: char| !c.is_alphanumeric())
            .map_or(out.len(), |i| at + 16 + i);
        out.replace_range(at..end, "expected an object {...}");
    }
    out
}

/// Values selfsup computes in f32: a larger one would become infinity and the case NaN.
fn check_f32_range(what: &str, values: &[f64]) -> Result<(), String> {
    match values.iter().position(|v| v.abs() > f32::MAX as f64) {
        Some(i) => Err(format!(
            "{what}[{i}] = {:e} is beyond f32's range (±3.4e38): selfsup computes in f32",
            values[i]
        )),
        None => Ok(()),
    }
}

impl Case {
    fn validate(&self) -> Result<(), String> {
        for (name, t) in &self.inputs {
            check_len(&format!("input '{name}'"), &t.shape, t.data.len())?;
            check_f32_range(&format!("input '{name}'"), &t.data)?;
        }
        check_f32_range("expected loss", &[self.expected.loss])?;
        for (name, t) in &self.int_inputs {
            check_len(&format!("int input '{name}'"), &t.shape, t.data.len())?;
        }
        for (name, g) in &self.expected.grad {
            check_len(&format!("expected grad '{name}'"), &g.shape, g.data.len())?;
            check_f32_range(&format!("expected grad '{name}'"), &g.data)?;
            let input = self
                .inputs
                .get(name)
                .ok_or_else(|| format!("expected grad '{name}' has no matching input"))?;
            if input.shape != g.shape {
                return Err(format!(
                    "expected grad '{name}' has shape {:?} but the input has {:?}",
                    g.shape, input.shape
                ));
            }
        }
        Ok(())
    }

    /// A float parameter.
    pub fn param_f64(&self, key: &str) -> Result<f64, String> {
        match self.params.get(key) {
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| format!("param '{key}' is not a number")),
            Some(other) => Err(format!("param '{key}' must be a number, got {other}")),
            None => Err(format!("param '{key}' is missing")),
        }
    }

    /// An integer parameter.
    pub fn param_usize(&self, key: &str) -> Result<usize, String> {
        match self.params.get(key) {
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| format!("param '{key}' must be a non-negative integer, got {n}")),
            Some(other) => Err(format!("param '{key}' must be an integer, got {other}")),
            None => Err(format!("param '{key}' is missing")),
        }
    }

    /// A string parameter.
    pub fn param_str(&self, key: &str) -> Result<&str, String> {
        match self.params.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(format!("param '{key}' must be a string, got {other}")),
            None => Err(format!("param '{key}' is missing")),
        }
    }

    /// A boolean parameter.
    pub fn param_bool(&self, key: &str) -> Result<bool, String> {
        match self.params.get(key) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(format!("param '{key}' must be true or false, got {other}")),
            None => Err(format!("param '{key}' is missing")),
        }
    }

    /// A tensor parameter (`{"shape": [...], "data": [...]}`).
    pub fn param_tensor(&self, key: &str) -> Result<FloatTensor, String> {
        let value = self
            .params
            .get(key)
            .ok_or_else(|| format!("param '{key}' is missing"))?;
        let tensor: FloatTensor = serde_json::from_value(value.clone())
            .map_err(|e| format!("param '{key}' is not a tensor: {e}"))?;
        check_len(&format!("param '{key}'"), &tensor.shape, tensor.data.len())?;
        Ok(tensor)
    }

    /// A float input.
    pub fn input(&self, key: &str) -> Result<&FloatTensor, String> {
        self.inputs
            .get(key)
            .ok_or_else(|| format!("input '{key}' is missing"))
    }

    /// An integer input.
    pub fn int_input(&self, key: &str) -> Result<&IntTensor, String> {
        self.int_inputs
            .get(key)
            .ok_or_else(|| format!("int input '{key}' is missing"))
    }
}

fn check_len(what: &str, shape: &[usize], len: usize) -> Result<(), String> {
    let dims = || {
        shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("×")
    };
    if shape.contains(&0) {
        return Err(format!(
            "{what} has shape {}: a dimension of 0 holds no values, and every loss here needs \
             at least one sample of at least one feature",
            dims()
        ));
    }
    match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        Some(want) if want == len => Ok(()),
        Some(want) => Err(format!(
            "{what} has shape {} ({want} values) but {len} data values",
            dims()
        )),
        None => Err(format!("{what} has shape {}, which overflows", dims())),
    }
}
