//! DINO's center: its EMA update, the teacher-temperature schedule, and that it is saved and
//! loaded with the module.

use crate::common::*;
use burn::module::Module;
use selfsup_losses::DinoLossConfig;

#[test]
fn center_moves_by_the_ema_of_teacher_means() {
    let device = device();
    let loss = DinoLossConfig::new(3)
        .with_center_momentum(0.75)
        .init(&device);
    let t0 = matrix(vec![1.0, 2.0, 3.0, 3.0, 2.0, 1.0], 2, 3, &device);
    let t1 = matrix(vec![0.0, 0.0, 4.0, 4.0, 0.0, 0.0], 2, 3, &device);
    let s = matrix(vec![0.5; 6], 2, 3, &device);
    loss.forward(&[t0.clone(), t1.clone()], &[s.clone(), s.clone()], 0);
    // mean of the four teacher rows = [2, 1, 2]; c = 0.75·0 + 0.25·mean
    assert_close(
        "center",
        &values(loss.center()),
        &[0.5, 0.25, 0.5],
        1e-6,
        1e-7,
    );
    loss.forward(&[t0, t1], &[s.clone(), s], 0);
    assert_close(
        "center",
        &values(loss.center()),
        &[0.875, 0.4375, 0.875],
        1e-6,
        1e-7,
    );
}

#[test]
fn loss_uses_the_center_before_its_update() {
    let device = device();
    let loss = DinoLossConfig::new(3).init(&device);
    let t = matrix(vec![5.0, 0.0, 0.0, 5.0, 0.0, 0.0], 2, 3, &device);
    let s = matrix(vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0], 2, 3, &device);
    let before = loss.loss(std::slice::from_ref(&t), &[s.clone(), s.clone()], 0.04);
    let with_update = loss.forward(
        std::slice::from_ref(&t),
        &[s.clone(), s.clone()],
        usize::MAX,
    );
    assert_eq!(scalar(before), scalar(with_update));
}

#[test]
fn teacher_temperature_warms_up_linearly() {
    let device = device();
    let loss = DinoLossConfig::new(4)
        .with_warmup_teacher_temp(0.04)
        .with_teacher_temp(0.07)
        .with_warmup_teacher_temp_epochs(4)
        .init(&device);
    let temps: Vec<f64> = (0..6).map(|e| loss.teacher_temperature(e)).collect();
    for (got, want) in temps.iter().zip([0.04, 0.05, 0.06, 0.07, 0.07, 0.07]) {
        assert!((got - want).abs() < 1e-12, "{temps:?}");
    }
}

#[test]
fn center_is_saved_and_loaded_with_the_module() {
    let device = device();
    let loss = DinoLossConfig::new(3)
        .with_center_momentum(0.5)
        .init(&device);
    let t = matrix(vec![2.0, 4.0, 6.0], 1, 3, &device);
    let s = matrix(vec![0.0; 3], 1, 3, &device);
    loss.forward(&[t], &[s.clone(), s], 0);
    let saved = values(loss.center());

    let dir = std::env::temp_dir().join(format!("selfsup-dino-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dino.bpk");
    loss.clone().save_file(&path).expect("saving the loss");
    let fresh = DinoLossConfig::new(3).init(&device).load_file(&path);
    let loaded = values(fresh.center());
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(saved, vec![1.0, 2.0, 3.0]);
    assert_eq!(loaded, saved);
}
