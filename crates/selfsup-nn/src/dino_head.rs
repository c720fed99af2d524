use burn::config::Config;
use burn::module::{Module, Param, ParamId};
use burn::nn::{Gelu, Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// Configuration of [`DinoHead`].
#[derive(Config, Debug)]
pub struct DinoHeadConfig {
    /// Width of the backbone features.
    pub input_dim: usize,
    /// Width of the hidden layers.
    #[config(default = 2048)]
    pub hidden_dim: usize,
    /// Width of the L2-normalised bottleneck.
    #[config(default = 256)]
    pub bottleneck_dim: usize,
    /// Number of prototypes (the output width).
    #[config(default = 65536)]
    pub output_dim: usize,
}

impl DinoHeadConfig {
    /// Builds the head.
    ///
    /// # Panics
    ///
    /// When a width is 0.
    pub fn init(&self, device: &Device) -> DinoHead {
        for (name, value) in [
            ("input_dim", self.input_dim),
            ("hidden_dim", self.hidden_dim),
            ("bottleneck_dim", self.bottleneck_dim),
            ("output_dim", self.output_dim),
        ] {
            assert!(value > 0, "DinoHead: {name} must be > 0, got 0");
        }
        let prototypes = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        }
        .init_with(
            [self.bottleneck_dim, self.output_dim],
            Some(self.bottleneck_dim),
            Some(self.output_dim),
            device,
        );
        DinoHead {
            layer1: LinearConfig::new(self.input_dim, self.hidden_dim).init(device),
            layer2: LinearConfig::new(self.hidden_dim, self.hidden_dim).init(device),
            layer3: LinearConfig::new(self.hidden_dim, self.bottleneck_dim).init(device),
            prototypes,
            activation: Gelu::new(),
        }
    }
}

/// DINO's projection head: a 3-layer MLP with GELU to an L2-normalised bottleneck, then a
/// weight-normalised linear layer without bias whose columns (the prototypes) are kept at unit
/// norm (`norm_last_layer=True`), so the output is a cosine similarity to each prototype.
///
/// Reference: \[0\] DINO, 2021, arXiv:2104.14294.
#[derive(Module, Debug)]
pub struct DinoHead {
    layer1: Linear,
    layer2: Linear,
    layer3: Linear,
    /// Prototype directions `[bottleneck_dim, output_dim]`; normalised per column in `forward`.
    prototypes: Param<Tensor<2>>,
    activation: Gelu,
}

impl DinoHead {
    /// The id of the prototypes (the weight-normalised last layer), whose gradient DINO drops
    /// during its first steps (`freeze_last_layer`).
    pub fn prototypes_id(&self) -> ParamId {
        self.prototypes.id
    }

    /// # Shapes
    ///
    /// - input: `[N, input_dim]` → `[N, output_dim]`
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let x = self.activation.forward(self.layer1.forward(input));
        let x = self.activation.forward(self.layer2.forward(x));
        let x = self.layer3.forward(x);
        let x = x.clone() / x.square().sum_dim(1).clamp_min(1e-24).sqrt();
        let w = self.prototypes.val();
        let w = w.clone() / w.square().sum_dim(0).clamp_min(1e-24).sqrt();
        x.matmul(w)
    }
}
