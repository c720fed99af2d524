//! The [`Communicator`] over MPI (rsmpi, Open MPI): ranks are the processes `mpirun` starts,
//! on one machine or many.

use std::sync::Mutex;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives, Root};

use crate::collective::{Communicator, timed};

/// MPI's world communicator. Collectives are called from the training thread only (MPI is
/// initialised at its default, single-threaded level); the lock makes that a guarantee.
pub struct Mpi {
    world: Mutex<SimpleCommunicator>,
    rank: usize,
    size: usize,
}

/// MPI itself, from [`Mpi::init`] to its end: keep it alive as long as the program runs
/// (`main`'s scope); dropping it finalises MPI, which every rank must do before it exits.
pub struct MpiSession {
    _universe: Universe,
}

// SAFETY: every use of the communicator goes through the mutex, one call at a time, which is
// what MPI's single-threaded level asks of a program.
unsafe impl Send for Mpi {}
// SAFETY: as above.
unsafe impl Sync for Mpi {}

impl Mpi {
    /// Initialises MPI: the world communicator and the session that ends MPI when dropped;
    /// `None` when this process was not started by `mpirun` with more than one rank (a plain
    /// run is one rank: use [`crate::Single`]).
    ///
    /// # Panics
    ///
    /// When MPI was already initialised in this process.
    pub fn init() -> Option<(Mpi, MpiSession)> {
        let universe = mpi::initialize().expect("MPI is initialised once per process");
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        if size < 2 {
            return None;
        }
        let mpi = Mpi {
            world: Mutex::new(world),
            rank,
            size,
        };
        Some((
            mpi,
            MpiSession {
                _universe: universe,
            },
        ))
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.size
    }

    fn all_gather(&self, local: &[f32]) -> Vec<f32> {
        timed(|| {
            let world = self.world.lock().expect("MPI lock");
            let mut out = vec![0f32; local.len() * self.size];
            world.all_gather_into(local, &mut out[..]);
            out
        })
    }

    fn all_reduce_sum(&self, values: &mut [f32]) {
        timed(|| {
            let world = self.world.lock().expect("MPI lock");
            let local = values.to_vec();
            world.all_reduce_into(&local[..], values, SystemOperation::sum());
        })
    }

    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) {
        timed(|| {
            let world = self.world.lock().expect("MPI lock");
            let process = world.process_at_rank(root as i32);
            let mut len = bytes.len() as u64;
            process.broadcast_into(&mut len);
            bytes.resize(len as usize, 0);
            process.broadcast_into(&mut bytes[..]);
        })
    }

    fn barrier(&self) {
        timed(|| self.world.lock().expect("MPI lock").barrier());
    }
}
