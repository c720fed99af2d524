use burn::config::Config;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Int, Tensor, TensorData};

/// Settings of the linear probe: a linear classifier trained on frozen, standardised features.
/// The defaults are selfsup's Fashion-MNIST protocol (30 epochs of Adam, lr 1e-3, batch 256).
#[derive(Config, Debug)]
pub struct LinearProbeConfig {
    /// Passes over the training features.
    #[config(default = 30)]
    pub epochs: usize,
    /// Adam learning rate.
    #[config(default = 1e-3)]
    pub lr: f64,
    /// Mini-batch size.
    #[config(default = 256)]
    pub batch_size: usize,
    /// Seed of the shuffling and of the classifier's initialisation.
    #[config(default = 0)]
    pub seed: u64,
}

/// What the probe reached.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearProbeReport {
    /// Accuracy on the features it was trained on.
    pub train_accuracy: f64,
    /// Accuracy on the held-out features.
    pub test_accuracy: f64,
}

/// Trains a linear classifier on frozen `train` features (standardised with the training
/// mean and standard deviation, which are applied to `test` too) and reports its accuracy.
/// It predicts only classes that occur in `train_labels`: a test sample of any other class
/// counts as wrong.
///
/// The features need no gradient; the classifier is trained on `train`'s device with autodiff.
///
/// # Shapes
///
/// - train: `[N, D]`, train_labels: `[N]` (values in `0..classes`)
/// - test: `[M, D]`, test_labels: `[M]`
///
/// # Panics
///
/// When epochs, batch size or classes are 0, the learning rate is not > 0, or shapes disagree.
pub fn linear_probe(
    config: &LinearProbeConfig,
    train: Tensor<2>,
    train_labels: Tensor<1, Int>,
    test: Tensor<2>,
    test_labels: Tensor<1, Int>,
    classes: usize,
) -> LinearProbeReport {
    let [n, d] = train.dims();
    let [m, d_test] = test.dims();
    assert!(config.epochs > 0, "linear probe: epochs must be > 0, got 0");
    assert!(
        config.batch_size > 0,
        "linear probe: batch_size must be > 0, got 0"
    );
    assert!(
        config.lr > 0.0,
        "linear probe: lr must be > 0, got {}",
        config.lr
    );
    assert!(classes > 0, "linear probe: classes must be > 0, got 0");
    assert!(
        n > 0 && m > 0,
        "linear probe: needs features, got {n} train and {m} test rows"
    );
    assert!(
        d == d_test,
        "linear probe: train features have {d} dimensions, test {d_test}"
    );
    assert!(
        train_labels.dims()[0] == n && test_labels.dims()[0] == m,
        "linear probe: {} train labels for {n} rows, {} test labels for {m} rows",
        train_labels.dims()[0],
        test_labels.dims()[0]
    );
    let device = train.device();
    let train = train.without_autodiff();
    let mean = train.clone().mean_dim(0);
    let std = train.clone().var(0).sqrt().add_scalar(1e-6);
    let standardise = |x: Tensor<2>| (x.without_autodiff() - mean.clone()) / std.clone();
    let (train, test) = (standardise(train), standardise(test));

    let autodiff = device.clone().autodiff();
    autodiff.seed(config.seed);
    let mut classifier: Linear = LinearConfig::new(d, classes).init(&autodiff);
    let mut optimizer = AdamConfig::new().init();
    let loss = CrossEntropyLossConfig::new().init(&autodiff);
    let mut rng = selfsup_data::Rng::new(config.seed);
    for _ in 0..config.epochs {
        let order = rng.permutation(n);
        for chunk in order.chunks(config.batch_size) {
            let indices = Tensor::<1, Int>::from_data(
                TensorData::new(chunk.iter().map(|&i| i as i64).collect(), [chunk.len()]),
                &device,
            );
            let x = train.clone().select(0, indices.clone());
            let y = train_labels.clone().select(0, indices);
            let logits = classifier.forward(x);
            let grads =
                GradientsParams::from_grads(loss.forward(logits, y).backward(), &classifier);
            classifier = optimizer.step(config.lr, classifier, grads);
        }
    }
    let classifier = classifier.valid();
    // Only classes the probe was trained on can be predicted: the output of a class without a
    // training sample is never trained towards anything, and out-of-distribution features
    // land on it by chance (which once scored test-only classes as right).
    let trained = train_labels
        .to_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("labels are integers");
    let mut excluded = vec![f32::NEG_INFINITY; classes];
    for &label in &trained {
        if let Some(slot) = usize::try_from(label)
            .ok()
            .and_then(|l| excluded.get_mut(l))
        {
            *slot = 0.0;
        }
    }
    let excluded =
        Tensor::<1>::from_data(TensorData::new(excluded, [classes]), &device).unsqueeze_dim::<2>(0);
    let accuracy = |x: Tensor<2>, y: Tensor<1, Int>| {
        let rows = x.dims()[0];
        let logits = classifier.forward(x) + excluded.clone();
        let predicted = logits.argmax(1).reshape([rows]);
        predicted.equal(y).int().sum().into_scalar::<i64>() as f64 / rows as f64
    };
    LinearProbeReport {
        train_accuracy: accuracy(train, train_labels),
        test_accuracy: accuracy(test, test_labels),
    }
}
