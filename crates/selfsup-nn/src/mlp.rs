use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};

use crate::Encoder;

/// Configuration of [`MlpEncoder`].
#[derive(Config, Debug)]
pub struct MlpEncoderConfig {
    /// Number of input values per sample (`C·H·W` for images).
    pub input_dim: usize,
    /// Width of the hidden layer.
    #[config(default = 512)]
    pub hidden_dim: usize,
    /// Width of the output features.
    #[config(default = 128)]
    pub output_dim: usize,
}

impl MlpEncoderConfig {
    /// Builds the encoder.
    ///
    /// # Panics
    ///
    /// When a width is 0.
    pub fn init(&self, device: &Device) -> MlpEncoder {
        for (name, value) in [
            ("input_dim", self.input_dim),
            ("hidden_dim", self.hidden_dim),
            ("output_dim", self.output_dim),
        ] {
            assert!(value > 0, "MlpEncoder: {name} must be > 0, got 0");
        }
        MlpEncoder {
            hidden: LinearConfig::new(self.input_dim, self.hidden_dim).init(device),
            output: LinearConfig::new(self.hidden_dim, self.output_dim).init(device),
            activation: Relu::new(),
            input_dim: self.input_dim,
        }
    }
}

/// A two-layer perceptron, `Linear → ReLU → Linear → ReLU`, over flattened inputs.
#[derive(Module, Debug)]
pub struct MlpEncoder {
    hidden: Linear,
    output: Linear,
    activation: Relu,
    input_dim: usize,
}

impl MlpEncoder {
    /// Encodes flat vectors.
    ///
    /// # Shapes
    ///
    /// - input: `[N, input_dim]` → `[N, output_dim]`
    ///
    /// # Panics
    ///
    /// When the input width is not `input_dim`.
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let [_, d] = input.dims();
        assert!(
            d == self.input_dim,
            "MlpEncoder: expected {} input values per sample, got {d}",
            self.input_dim
        );
        let x = self.activation.forward(self.hidden.forward(input));
        self.activation.forward(self.output.forward(x))
    }
}

impl Encoder for MlpEncoder {
    fn output_dim(&self) -> usize {
        self.output.weight.dims()[1]
    }

    fn encode(&self, input: Tensor<4>) -> Tensor<2> {
        let [n, c, h, w] = input.dims();
        self.forward(input.reshape([n, c * h * w]))
    }
}
