//! The collectives a data-parallel step needs, and the communicators that provide them.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Rank, world size and the four collectives, on flat `f32` / byte buffers. Every rank calls
/// the same collectives in the same order with buffers of the same length (a mismatch is a
/// programming error: implementations panic).
pub trait Communicator: Send + Sync {
    /// This process's rank, `0..world_size()`.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn world_size(&self) -> usize;
    /// Every rank's `local`, concatenated in rank order (all of one length).
    fn all_gather(&self, local: &[f32]) -> Vec<f32>;
    /// Replaces `values` by their element-wise sum over the ranks.
    fn all_reduce_sum(&self, values: &mut [f32]);
    /// Replaces `bytes` on every rank by rank `root`'s.
    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize);
    /// Returns once every rank has called it.
    fn barrier(&self);
}

/// Nanoseconds this process has spent inside MPI collectives (waiting for the other ranks
/// included), for [`communication_time`].
static COMMUNICATION_NANOS: AtomicU64 = AtomicU64::new(0);

/// The time this process has spent inside the collectives of an MPI run so far: moving data
/// and waiting for the slower ranks (zero in one process). The difference over a stretch of
/// training, against its wall-clock time, is the share of it spent communicating.
pub fn communication_time() -> Duration {
    Duration::from_nanos(COMMUNICATION_NANOS.load(Ordering::Relaxed))
}

/// Runs `f` and adds its time to [`communication_time`].
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) fn timed<R>(f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let out = f();
    let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    COMMUNICATION_NANOS.fetch_add(nanos, Ordering::Relaxed);
    out
}

/// One process: rank 0 of 1, every collective the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Single;

impl Communicator for Single {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_gather(&self, local: &[f32]) -> Vec<f32> {
        local.to_vec()
    }
    fn all_reduce_sum(&self, _values: &mut [f32]) {}
    fn broadcast(&self, _bytes: &mut Vec<u8>, _root: usize) {}
    fn barrier(&self) {}
}

/// Ranks as threads of one process, sharing buffers: the in-process stand-in for MPI that
/// the tests use to check that W ranks compute the one-process step.
#[derive(Clone)]
pub struct ThreadGroup {
    rank: usize,
    shared: Arc<Shared>,
}

struct Shared {
    size: usize,
    barrier: Barrier,
    slots: Mutex<Vec<Vec<u8>>>,
}

impl ThreadGroup {
    /// The `size` members of a new group, ranks `0..size`; give each to one thread.
    ///
    /// # Panics
    ///
    /// When `size` is 0.
    pub fn new(size: usize) -> Vec<ThreadGroup> {
        assert!(size > 0, "ThreadGroup: size must be at least 1, got 0");
        let shared = Arc::new(Shared {
            size,
            barrier: Barrier::new(size),
            slots: Mutex::new(vec![Vec::new(); size]),
        });
        (0..size)
            .map(|rank| ThreadGroup {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// Every rank's `bytes`, in rank order: deposit, wait for all, read, wait again (so no
    /// rank overwrites its slot before every other has read it).
    fn exchange(&self, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        self.shared.slots.lock().expect("no rank panicked")[self.rank] = bytes;
        self.shared.barrier.wait();
        let all = self.shared.slots.lock().expect("no rank panicked").clone();
        self.shared.barrier.wait();
        all
    }
}

fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn to_floats(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Communicator for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.shared.size
    }
    fn all_gather(&self, local: &[f32]) -> Vec<f32> {
        let all = self.exchange(to_bytes(local));
        assert!(
            all.iter().all(|b| b.len() == local.len() * 4),
            "all_gather: every rank must contribute {} values",
            local.len()
        );
        all.iter().flat_map(|b| to_floats(b)).collect()
    }
    fn all_reduce_sum(&self, values: &mut [f32]) {
        let all = self.exchange(to_bytes(values));
        values.fill(0.0);
        // Summed in rank order on every rank, as MPI's reduction on one machine: every rank
        // ends with the same bits.
        for bytes in &all {
            assert_eq!(
                bytes.len(),
                values.len() * 4,
                "all_reduce_sum: lengths differ"
            );
            for (v, x) in values.iter_mut().zip(to_floats(bytes)) {
                *v += x;
            }
        }
    }
    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) {
        let all = self.exchange(std::mem::take(bytes));
        *bytes = all[root].clone();
    }
    fn barrier(&self) {
        self.shared.barrier.wait();
    }
}

/// Runs `f(rank)` on `world` threads, each with a member of one [`ThreadGroup`] as its
/// communicator, and returns the results in rank order: W ranks in one process, to check
/// that a sharded computation gives the one-process result. `world = 1` runs `f(0)` on this
/// thread.
///
/// # Panics
///
/// When `world` is 0, and when `f` panics on a rank (the first such panic is raised again
/// here). A rank that panics while the others wait in a collective leaves them waiting: keep
/// `f` free of panics between collectives, as a test's assertions after the run are.
pub fn on_thread_ranks<T: Send>(world: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    assert!(
        world > 0,
        "on_thread_ranks: world must be at least 1, got 0"
    );
    if world == 1 {
        return vec![f(0)];
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = ThreadGroup::new(world)
            .into_iter()
            .map(|member| {
                scope.spawn(move || {
                    let rank = member.rank();
                    with_communicator(Arc::new(member), || f(rank))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

static GLOBAL: OnceLock<Arc<dyn Communicator>> = OnceLock::new();

thread_local! {
    static THREAD: RefCell<Option<Arc<dyn Communicator>>> = const { RefCell::new(None) };
}

/// Makes `comm` the communicator of the whole process (once, before training).
///
/// # Panics
///
/// When a process communicator was already set.
pub fn set_global(comm: Arc<dyn Communicator>) {
    assert!(
        GLOBAL.set(comm).is_ok(),
        "set_global: the process communicator is already set"
    );
}

/// Runs `f` with `comm` as this thread's communicator.
pub fn with_communicator<T>(comm: Arc<dyn Communicator>, f: impl FnOnce() -> T) -> T {
    let previous = THREAD.with(|t| t.borrow_mut().replace(comm));
    let out = f();
    THREAD.with(|t| *t.borrow_mut() = previous);
    out
}

/// The communicator in use: this thread's, else the process's, else [`Single`].
pub fn current() -> Arc<dyn Communicator> {
    THREAD
        .with(|t| t.borrow().clone())
        .or_else(|| GLOBAL.get().cloned())
        .unwrap_or_else(|| Arc::new(Single))
}
