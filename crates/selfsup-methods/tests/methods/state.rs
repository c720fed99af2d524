//! Method state: momentum teachers, stop-gradients, MoCo's queue, and saving everything.

use crate::common::*;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Tensor, TensorData};
use selfsup_methods::*;
use selfsup_nn::Encoder;

#[test]
fn optimizer_leaves_the_teacher_alone_and_ema_moves_it_exactly() {
    let device = device();
    let method = Byol::new(encoder(&device), 32, 16, 0.9, 10, &device);
    let teacher_before = parameters(&method.target_encoder);
    let online_before = parameters(&method.encoder);

    let output = method.train_forward(batch(2, &device));
    let grads = GradientsParams::from_grads(output.loss.backward(), &method);
    let stepped = AdamConfig::new().init().step(1e-2, method, grads);
    assert_eq!(
        parameters(&stepped.target_encoder),
        teacher_before,
        "the optimizer moved the teacher"
    );
    let online_after = parameters(&stepped.encoder);
    assert_ne!(
        online_after, online_before,
        "the optimizer did not move the student"
    );

    let m = stepped.momentum();
    assert!(
        (m - 0.9).abs() < 1e-12,
        "momentum at step 0 is the base: {m}"
    );
    let updated = stepped.after_optimizer_step();
    for ((t, s), got) in teacher_before
        .iter()
        .zip(&online_after)
        .zip(parameters(&updated.target_encoder))
    {
        for ((t, s), g) in t.iter().zip(s).zip(&got) {
            let want = (m as f32) * t + (1.0 - m as f32) * s;
            assert!(
                (g - want).abs() <= 1e-6 * want.abs().max(1.0),
                "EMA gave {g}, want {want}"
            );
        }
    }
    assert_eq!(updated.steps.get(), 1);
}

#[test]
fn no_gradient_reaches_teachers_or_keys() {
    let device = device();
    let method = MocoV2::new(encoder(&device), 32, 16, 32, 0.2, 0.99, &device);
    let output = method.train_forward(batch(2, &device));
    let grads = output.loss.backward();
    let key_grads = GradientsParams::from_grads(grads, &method.key_encoder);
    assert_eq!(key_grads.len(), 0, "the key encoder received gradients");

    let method = Byol::new(encoder(&device), 32, 16, 0.9, 10, &device);
    let output = method.train_forward(batch(2, &device));
    let grads = output.loss.backward();
    assert_eq!(
        GradientsParams::from_grads(grads, &method.target_projector).len(),
        0
    );

    let method = MocoV3::new(encoder(&device), 32, 16, 32, 0.2, 0.9, 10, &device);
    let output = method.train_forward(batch(2, &device));
    let grads = output.loss.backward();
    assert_eq!(
        GradientsParams::from_grads(grads, &method.key_encoder).len(),
        0
    );
    let grads = method.train_forward(batch(2, &device)).loss.backward();
    assert_eq!(
        GradientsParams::from_grads(grads, &method.key_projector).len(),
        0
    );
}

#[test]
fn non_affine_batch_norm_stays_the_identity_transform() {
    // SimSiam's and MoCo v3's last BatchNorm (PyTorch's affine=False): γ and β get no gradient.
    let device = device();
    let method = MocoV3::new(encoder(&device), 32, 16, 32, 0.2, 0.9, 10, &device);
    let grads = method.train_forward(batch(2, &device)).loss.backward();
    let trained = GradientsParams::from_grads(grads, &method.projector).len();
    // Projector: 3 linear weights + 2 affine BatchNorms × (γ, β) = 7; the last BN has none.
    assert_eq!(trained, 7, "gradients reached {trained} projector tensors");
}

#[test]
fn cosine_momentum_rises_to_one() {
    assert_eq!(cosine_momentum(0.996, 0, 100), 0.996);
    assert!((cosine_momentum(0.996, 50, 100) - 0.998).abs() < 1e-12);
    assert_eq!(cosine_momentum(0.996, 100, 100), 1.0);
    assert_eq!(cosine_momentum(0.996, 500, 100), 1.0);
}

fn rows(queue: &KeyQueue) -> Vec<f32> {
    queue
        .keys()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn queue_is_fifo_of_fixed_size() {
    let device = device();
    let queue = KeyQueue::new(4, 2, &device);
    let initial = rows(&queue);
    let keys =
        |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [v.len() / 2, 2]), &device);

    queue.enqueue(keys(&[1.0, 1.0, 2.0, 2.0]));
    let after = rows(&queue);
    assert_eq!(&after[..4], &[1.0, 1.0, 2.0, 2.0], "newest first");
    assert_eq!(&after[4..], &initial[..4], "the oldest two were dropped");

    queue.enqueue(keys(&[3.0, 3.0, 4.0, 4.0, 5.0, 5.0]));
    assert_eq!(rows(&queue), vec![3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 1.0, 1.0]);
    assert_eq!(queue.len(), 4);

    // A full turn: only the last four keys remain.
    queue.enqueue(keys(&[6.0, 6.0, 7.0, 7.0, 8.0, 8.0, 9.0, 9.0]));
    assert_eq!(rows(&queue), vec![6.0, 6.0, 7.0, 7.0, 8.0, 8.0, 9.0, 9.0]);
}

#[test]
#[should_panic(expected = "KeyQueue: can enqueue at most 4 keys of dimension 2, got [5, 2]")]
fn queue_rejects_more_keys_than_it_holds() {
    let device = device();
    KeyQueue::new(4, 2, &device).enqueue(Tensor::zeros([5, 2], &device));
}

#[test]
fn moco_save_and_load_keeps_queue_teacher_and_outputs() {
    let device = device();
    let fixed = batch(2, &device);
    let (trained, _, _) = train(
        MocoV2::new(encoder(&device), 32, 16, 32, 0.2, 0.99, &device),
        &fixed,
        3,
        1e-2,
    );

    let dir = std::env::temp_dir().join(format!("selfsup-moco-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("moco.bpk");
    trained.clone().save_file(&path).unwrap();
    let loaded = MocoV2::new(encoder(&device), 32, 16, 32, 0.2, 0.99, &device).load_file(&path);

    let same = |a: Vec<Vec<f32>>, b: Vec<Vec<f32>>, what: &str| {
        assert_eq!(a, b, "{what} differs after loading")
    };
    same(
        parameters(&trained.key_encoder),
        parameters(&loaded.key_encoder),
        "key encoder",
    );
    same(
        parameters(&trained.encoder),
        parameters(&loaded.encoder),
        "encoder",
    );
    assert_eq!(
        rows(&trained.queue),
        rows(&loaded.queue),
        "queue differs after loading"
    );
    let (a, b) = (
        trained.forward(fixed.clone()).loss,
        loaded.forward(fixed).loss,
    );
    assert_eq!(a.into_scalar::<f32>(), b.into_scalar::<f32>());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn byol_save_and_load_keeps_teacher_and_step_count() {
    let device = device();
    let fixed = batch(2, &device);
    let (trained, _, _) = train(
        Byol::new(encoder(&device), 32, 16, 0.9, 10, &device),
        &fixed,
        3,
        1e-2,
    );
    let dir = std::env::temp_dir().join(format!("selfsup-byol-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("byol.bpk");
    trained.clone().save_file(&path).unwrap();
    let loaded = Byol::new(encoder(&device), 32, 16, 0.9, 10, &device).load_file(&path);
    assert_eq!(loaded.steps.get(), 3);
    assert_eq!(loaded.clone().after_optimizer_step().steps.get(), 4);
    assert_eq!(
        parameters(&trained.target_encoder),
        parameters(&loaded.target_encoder)
    );
    assert_eq!(
        parameters(&trained.predictor),
        parameters(&loaded.predictor)
    );
    // The counter keeps a host copy of its count: loading an older record into the very
    // module that went on must still give the record's count, and its momentum.
    let went_on = trained.after_optimizer_step().after_optimizer_step();
    assert_eq!(went_on.steps.get(), 5);
    let reloaded = went_on.load_file(&path);
    assert_eq!(reloaded.steps.get(), 3);
    assert_eq!(reloaded.momentum(), loaded.momentum());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dino_freezes_its_prototypes_for_the_first_steps_only() {
    let device = device();
    let mut method = Dino::new(
        encoder(&device),
        selfsup_nn::DinoHeadConfig::new(16)
            .with_hidden_dim(32)
            .with_bottleneck_dim(8)
            .with_output_dim(32),
        selfsup_losses::DinoLossConfig::new(32),
        0.99,
        100,
        10,
        &device,
    )
    .with_freeze_last_layer_steps(2);
    let id = method.head.prototypes_id();
    let fixed = batch(2, &device);
    let mut optimizer = AdamConfig::new().init();
    for step in 0..4 {
        let frozen = step < 2;
        let before = parameters(&method.head);
        let output = method.train_forward(fixed.clone());
        let grads = GradientsParams::from_grads(output.loss.backward(), &method);
        let grads = method.prepare_gradients(grads);
        assert_eq!(grads.get::<2>(id).is_none(), frozen, "step {step}");
        method = optimizer.step(1e-2, method, grads).after_optimizer_step();
        let after = parameters(&method.head);
        // The head's parameters in field order: three linear layers, then the prototypes.
        assert_ne!(
            before[0], after[0],
            "step {step}: the first layer did not train"
        );
        assert_eq!(
            before.last() == after.last(),
            frozen,
            "step {step}: prototypes frozen {frozen}"
        );
    }
}

/// Every BatchNorm running statistic of `module` (parameters excluded), in visiting order,
/// with this thread's pending updates applied (`valid()` syncs them; a visit alone does not).
fn running_statistics<M: Module>(module: &M) -> Vec<Vec<f32>> {
    let module = module.valid();
    struct Collect {
        path: Vec<String>,
        found: Vec<Vec<f32>>,
    }
    impl burn::module::ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            if self.path.last().is_some_and(|n| n.starts_with("running_")) {
                let data = p.val().into_data().convert::<f32>();
                self.found.push(data.try_to_vec::<f32>().unwrap());
            }
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        found: Vec::new(),
    };
    module.visit(&mut c);
    assert!(!c.found.is_empty(), "the module has no running statistics");
    c.found
}

#[test]
fn a_teacher_owns_its_running_statistics() {
    let device = device();
    let method = Byol::new(encoder(&device), 32, 16, 0.9, 10, &device);
    let views = batch(2, &device).views;
    let student_start = running_statistics(&method.projector);
    let teacher_start = running_statistics(&method.target_projector);
    assert_eq!(student_start, teacher_start, "a teacher starts as a copy");

    // A train-mode forward of the student moves its statistics only...
    method
        .projector
        .forward(method.encoder.encode(views[0].clone()));
    let student_moved = running_statistics(&method.projector);
    assert_ne!(
        student_moved, student_start,
        "the student's forward moved nothing"
    );
    assert_eq!(
        running_statistics(&method.target_projector),
        teacher_start,
        "the student's forward moved the teacher's running statistics"
    );
    // ... and the teacher's forward moves the teacher's only.
    method
        .target_projector
        .forward(method.target_encoder.encode(views[1].clone()));
    let teacher_moved = running_statistics(&method.target_projector);
    assert_ne!(
        teacher_moved, teacher_start,
        "the teacher's forward moved nothing"
    );
    assert_eq!(
        running_statistics(&method.projector),
        student_moved,
        "the teacher's forward moved the student's running statistics"
    );

    // The momentum update moves parameters, not buffers.
    let updated = method.after_optimizer_step();
    assert_eq!(running_statistics(&updated.target_projector), teacher_moved);
    assert_eq!(running_statistics(&updated.projector), student_moved);
}

#[test]
fn saving_and_loading_keeps_teacher_and_student_statistics_apart() {
    let device = device();
    let fixed = batch(2, &device);
    let (trained, _, _) = train(
        Byol::new(encoder(&device), 32, 16, 0.9, 10, &device),
        &fixed,
        3,
        1e-2,
    );
    let (student, teacher) = (
        running_statistics(&trained.projector),
        running_statistics(&trained.target_projector),
    );
    assert_ne!(
        student, teacher,
        "three steps left both with the same statistics"
    );
    let dir = std::env::temp_dir().join(format!("selfsup-byol-bn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("byol.bpk");
    trained.save_file(&path).unwrap();
    let loaded = Byol::new(encoder(&device), 32, 16, 0.9, 10, &device).load_file(&path);
    assert_eq!(running_statistics(&loaded.projector), student);
    assert_eq!(running_statistics(&loaded.target_projector), teacher);
    // Still apart after loading: a student forward leaves the loaded teacher alone.
    loaded
        .projector
        .forward(loaded.encoder.encode(fixed.views[0].clone()));
    assert_eq!(running_statistics(&loaded.target_projector), teacher);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_teacher_of_a_plain_device_module_stays_off_autodiff() {
    let device = selfsup_backend::test_device();
    let head = selfsup_nn::ProjectionHeadConfig::byol(8, 16, 4).init(&device);
    let teacher = teacher_of(&head);
    let input = Tensor::<2>::ones([4, 8], &device);
    assert_eq!(
        head.forward(input.clone()).into_data(),
        teacher.forward(input).into_data()
    );
}

#[test]
#[should_panic(expected = "ema_update: the teacher shares all")]
fn ema_update_refuses_a_plain_clone() {
    let device = device();
    let head = selfsup_nn::ProjectionHeadConfig::byol(8, 16, 4).init(&device);
    ema_update(head.clone(), &head, 0.9);
}
