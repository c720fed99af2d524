//! Data-parallel training across processes and machines, for every Burn backend.
//!
//! Burn 0.22 has one collective (`all_reduce`, CUDA/NCCL, between the devices of one
//! process). selfsup trains data-parallel on any backend with a [`Communicator`] underneath:
//! [`Single`] (one process, every collective the identity), [`ThreadGroup`] (ranks as threads
//! of one process, for tests: [`on_thread_ranks`] runs a closure on W of them), and `Mpi` (feature `mpi`: rsmpi over Open MPI, launched with
//! `mpirun`, one machine or many).
//!
//! **The identity everything rests on.** Rank `r` holds shard `r` of the global batch. It
//! gathers every rank's embeddings ([`gather_rows`]: the other ranks' rows detached, its own
//! still tracked, in rank order), computes the *global* loss, and back-propagates. Its
//! gradient is then ∂L/∂(its shard) only, and the **sum** of the ranks' parameter gradients
//! ([`all_reduce_gradients`]) is exactly the gradient of the one-process loss on the global
//! batch — for any loss of the whole batch (NT-Xent, InfoNCE, SupCon, triplet mining, Barlow
//! Twins, VICReg, DINO), with no differentiable collective.
//!
//! The communicator in use is the thread's own ([`with_communicator`], for tests), else the
//! process's ([`set_global`]), else [`Single`].
#![warn(missing_docs)]

mod collective;
mod gather;
mod grads;
#[cfg(feature = "mpi")]
mod mpi_comm;

pub use collective::{
    Communicator, Single, ThreadGroup, communication_time, current, on_thread_ranks, set_global,
    with_communicator,
};
pub use gather::{all_reduce_scalar, broadcast_module, gather_labels, gather_rows};
pub use grads::all_reduce_gradients;
#[cfg(feature = "mpi")]
pub use mpi_comm::{Mpi, MpiSession};
