//! Small fixed batches and a hand-written training loop.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use selfsup_methods::{Method, MultiViewBatch};
use selfsup_nn::{MlpEncoder, MlpEncoderConfig};

pub const N: usize = 16;
pub const SIDE: usize = 8;

pub fn device() -> Device {
    let device = selfsup_backend::test_device().autodiff();
    device.seed(3);
    device
}

/// An MLP encoder for 1×8×8 inputs.
pub fn encoder(device: &Device) -> MlpEncoder {
    MlpEncoderConfig::new(SIDE * SIDE)
        .with_hidden_dim(32)
        .with_output_dim(16)
        .init(device)
}

/// `views` noisy views of `N` fixed random images, with 4 classes.
pub fn batch(views: usize, device: &Device) -> MultiViewBatch {
    noisy_batch(views, 0.05, device)
}

/// Like [`batch`], with views perturbed by Gaussian noise of standard deviation `noise`.
pub fn noisy_batch(views: usize, noise: f64, device: &Device) -> MultiViewBatch {
    let base = Tensor::<4>::random([N, 1, SIDE, SIDE], Distribution::Uniform(0.0, 1.0), device);
    let views = (0..views)
        .map(|_| {
            (base.clone() + base.random_like(Distribution::Normal(0.0, noise))).clamp(0.0, 1.0)
        })
        .collect();
    let labels: Vec<i64> = (0..N as i64).map(|i| i % 4).collect();
    MultiViewBatch::new(views).with_labels(Tensor::<1, Int>::from_data(
        TensorData::new(labels, [N]),
        device,
    ))
}

/// Trains `steps` Adam steps on the same batch; returns the first and the last loss.
pub fn train<M: Method>(
    mut method: M,
    batch: &MultiViewBatch,
    steps: usize,
    lr: f64,
) -> (M, f32, f32) {
    let mut optimizer = AdamConfig::new().init();
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..steps {
        let output = method.train_forward(batch.clone());
        last = output.loss.clone().into_scalar::<f32>();
        first.get_or_insert(last);
        let grads = GradientsParams::from_grads(output.loss.backward(), &method);
        let grads = method.prepare_gradients(grads);
        method = optimizer.step(lr, method, grads).after_optimizer_step();
    }
    (method, first.unwrap(), last)
}

/// Every float parameter of a module, flattened, in visiting order.
pub fn parameters<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            let data = p.val().into_data().convert::<f32>();
            self.0.push(data.try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}
