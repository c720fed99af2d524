use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::ops::{l2_normalize, pairwise_l2, pairwise_squared_l2};

/// How metric-learning losses compare two embeddings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// Euclidean distance `‖a − b‖` (smaller = more alike).
    L2,
    /// Squared Euclidean distance `‖a − b‖²` (smaller = more alike).
    SquaredL2,
    /// Cosine similarity of the L2-normalised rows (larger = more alike).
    Cosine,
}

impl Distance {
    /// Whether larger values mean more alike (a similarity rather than a distance).
    pub fn is_similarity(self) -> bool {
        matches!(self, Distance::Cosine)
    }

    /// All pairwise values between the rows of `x`, L2-normalising the rows first when
    /// `normalize` is set (cosine always normalises).
    ///
    /// # Shapes
    ///
    /// - x: `[N, D]` → `[N, N]`
    pub fn pairwise(self, x: Tensor<2>, normalize: bool) -> Tensor<2> {
        let x = if normalize || self.is_similarity() {
            l2_normalize(x)
        } else {
            x
        };
        match self {
            Distance::L2 => pairwise_l2(x),
            Distance::SquaredL2 => pairwise_squared_l2(x),
            Distance::Cosine => x.clone().matmul(x.transpose()),
        }
    }

    /// The name used in configuration files and golden files.
    pub fn name(self) -> &'static str {
        match self {
            Distance::L2 => "l2",
            Distance::SquaredL2 => "squared_l2",
            Distance::Cosine => "cosine",
        }
    }
}

impl fmt::Display for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Distance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "l2" => Ok(Distance::L2),
            "squared_l2" => Ok(Distance::SquaredL2),
            "cosine" => Ok(Distance::Cosine),
            other => Err(format!(
                "unknown distance '{other}'; valid: l2, squared_l2, cosine"
            )),
        }
    }
}
