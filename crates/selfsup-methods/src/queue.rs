use burn::module::{Module, RunningState};
use burn::tensor::{Device, Distribution, Tensor};

/// A fixed-size first-in first-out queue of key vectors, MoCo's dictionary of negatives.
///
/// Row 0 is the newest key; enqueuing a batch of `B` keys puts them on top and drops the `B`
/// oldest, so the queue always holds the last `K` keys seen. It is module state: saved and
/// loaded with the method, never trained. Enqueuing takes `&self` so that a training step,
/// which only borrows the model, can push the batch's keys.
#[derive(Module, Debug)]
pub struct KeyQueue {
    keys: RunningState<Tensor<2>>,
}

impl KeyQueue {
    /// A queue of `size` random unit vectors of dimension `dim` (MoCo's initialisation).
    ///
    /// # Panics
    ///
    /// When `size` or `dim` is 0.
    pub fn new(size: usize, dim: usize, device: &Device) -> Self {
        assert!(
            size > 0 && dim > 0,
            "KeyQueue: size and dim must be > 0, got {size} and {dim}"
        );
        let keys = Tensor::<2>::random([size, dim], Distribution::Normal(0.0, 1.0), device);
        let keys = keys.clone() / keys.square().sum_dim(1).sqrt().clamp_min(1e-12);
        KeyQueue {
            keys: RunningState::new(keys),
        }
    }

    /// A queue holding the given keys, newest first (e.g. restored from elsewhere).
    pub fn from_keys(keys: Tensor<2>) -> Self {
        let [size, dim] = keys.dims();
        assert!(
            size > 0 && dim > 0,
            "KeyQueue: needs at least one key of dimension > 0, got [{size}, {dim}]"
        );
        KeyQueue {
            keys: RunningState::new(keys.detach()),
        }
    }

    /// The queued keys, newest first, `[K, D]` (detached).
    pub fn keys(&self) -> Tensor<2> {
        self.keys.value_sync().detach()
    }

    /// Number of keys `K`.
    pub fn len(&self) -> usize {
        self.keys.value().dims()[0]
    }

    /// Always false: a queue holds `K ≥ 1` keys.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Pushes a batch of keys (detached) and drops as many of the oldest.
    ///
    /// # Panics
    ///
    /// When the keys have another dimension, or more rows than the queue.
    pub fn enqueue(&self, keys: Tensor<2>) {
        let old = self.keys();
        let [size, dim] = old.dims();
        let [batch, key_dim] = keys.dims();
        assert!(
            key_dim == dim && batch <= size,
            "KeyQueue: can enqueue at most {size} keys of dimension {dim}, got [{batch}, {key_dim}]"
        );
        let new = if batch == size {
            keys.detach()
        } else {
            Tensor::cat(vec![keys.detach(), old.narrow(0, 0, size - batch)], 0)
        };
        self.keys.update(new);
        // Fold the update in now, so that saving the module right after sees it.
        self.keys.value_sync();
    }
}
