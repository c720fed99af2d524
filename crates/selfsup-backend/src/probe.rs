//! Finds out whether a compiled-in backend works on this machine, without crashing or hanging.

use crate::{Backend, device};
use burn::tensor::{Tensor, TensorData};
use std::sync::Once;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a backend may take to answer a first tiny computation. Software Vulkan compiles its
/// first shaders in a few seconds; a minute means something is wrong.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
const PROBE_THREAD_PREFIX: &str = "selfsup-probe-";

/// What probing one backend found.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// The backend probed.
    pub backend: Backend,
    /// `Ok(seconds to answer)` when a small computation gave the right result, otherwise why not.
    pub result: Result<f64, String>,
}

impl Probe {
    /// Whether the backend is usable here.
    pub fn usable(&self) -> bool {
        self.result.is_ok()
    }
}

/// Probes every compiled-in backend, one after the other.
pub fn probe_all() -> Vec<Probe> {
    Backend::compiled().into_iter().map(probe).collect()
}

/// Runs a tiny computation on `backend` in a separate thread and reports whether it answered
/// correctly within a minute. A backend that panics (no adapter, no driver) or hangs is reported
/// as unusable with the reason; the calling thread never panics.
pub fn probe(backend: Backend) -> Probe {
    if !backend.is_compiled() {
        return Probe {
            backend,
            result: Err(format!(
                "not compiled in; rebuild with `--features {backend}`"
            )),
        };
    }
    silence_probe_panics();
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let spawned = std::thread::Builder::new()
        .name(format!("{PROBE_THREAD_PREFIX}{backend}"))
        .spawn(move || {
            let outcome = std::panic::catch_unwind(|| tiny_sum(backend));
            let _ = tx.send(outcome);
        });
    if let Err(e) = spawned {
        return Probe {
            backend,
            result: Err(format!("could not start a probe thread: {e}")),
        };
    }
    let result = match rx.recv_timeout(PROBE_TIMEOUT) {
        Ok(Ok(Ok(()))) => Ok(started.elapsed().as_secs_f64()),
        Ok(Ok(Err(wrong))) => Err(wrong),
        Ok(Err(panic)) => Err(explain(backend, &panic_message(panic.as_ref()))),
        Err(_) => Err(format!(
            "no answer within {} s (driver hung?)",
            PROBE_TIMEOUT.as_secs()
        )),
    };
    Probe { backend, result }
}

fn tiny_sum(backend: Backend) -> Result<(), String> {
    let device = device(backend);
    let x = Tensor::<1>::from_data(TensorData::from([1.0f32, 2.0, 3.0]), &device);
    let sum = x.sum().into_scalar::<f32>();
    if sum == 6.0 {
        Ok(())
    } else {
        Err(format!("computed 1 + 2 + 3 = {sum}"))
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked".to_string()
    }
}

/// Turns a backend's panic into a reason a user can act on.
fn explain(backend: Backend, message: &str) -> String {
    let first_line = message.lines().next().unwrap_or(message).trim();
    match backend {
        Backend::Wgpu | Backend::Vulkan if !vulkan_driver_present() => format!(
            "no Vulkan driver found (install Debian's `mesa-vulkan-drivers libvulkan1`, or run \
             `cargo xtask setup wgpu`): {first_line}"
        ),
        Backend::Wgpu | Backend::Vulkan => format!("no usable GPU adapter: {first_line}"),
        _ => first_line.to_string(),
    }
}

/// Whether a Vulkan ICD manifest is installed where the loader looks by default.
pub(crate) fn vulkan_driver_present() -> bool {
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .any(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
}

/// Keeps panics inside probe threads off stderr; every other thread keeps the previous hook.
fn silence_probe_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_probe = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(PROBE_THREAD_PREFIX));
            if !in_probe {
                previous(info);
            }
        }));
    });
}
