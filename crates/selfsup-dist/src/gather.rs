//! Tensors across ranks: the gathered batch of the identity, scalars, whole modules.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Int, Tensor, TensorData};

use crate::collective::current;

/// The global batch of `local` (`[n, d]` on every rank): the ranks' rows in rank order, this
/// rank's still tracked by autodiff, the others' detached constants. With one rank it is
/// `local` itself.
///
/// # Shapes
///
/// `local`: `[n, d]` (the same on every rank) → `[world_size · n, d]`.
pub fn gather_rows(local: Tensor<2>) -> Tensor<2> {
    let comm = current();
    let world = comm.world_size();
    if world == 1 {
        return local;
    }
    let [n, d] = local.dims();
    let device = local.device();
    let mine = local
        .clone()
        .detach()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float data");
    let all = comm.all_gather(&mine);
    let rank = comm.rank();
    let parts = (0..world)
        .map(|r| {
            if r == rank {
                local.clone()
            } else {
                let rows = all[r * n * d..(r + 1) * n * d].to_vec();
                Tensor::from_data(TensorData::new(rows, [n, d]), &device)
            }
        })
        .collect();
    Tensor::cat(parts, 0)
}

/// The global batch of `local` labels, in rank order.
pub fn gather_labels(local: Tensor<1, Int>) -> Tensor<1, Int> {
    let comm = current();
    if comm.world_size() == 1 {
        return local;
    }
    let device = local.device();
    // Class indices are small integers: exact in f32.
    let mine: Vec<f32> = local
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("int data")
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let all: Vec<i64> = comm
        .all_gather(&mine)
        .into_iter()
        .map(|v| v as i64)
        .collect();
    let len = all.len();
    Tensor::from_data(TensorData::new(all, [len]), &device)
}

/// The sum of `value` over the ranks.
pub fn all_reduce_scalar(value: f64) -> f64 {
    let mut buffer = [value as f32];
    current().all_reduce_sum(&mut buffer);
    if current().world_size() == 1 {
        value
    } else {
        f64::from(buffer[0])
    }
}

/// `module` with rank 0's weights on every rank (so replicas start identical).
pub fn broadcast_module<M: Module>(module: M) -> M {
    let comm = current();
    if comm.world_size() == 1 {
        return module;
    }
    let mut bytes = if comm.rank() == 0 {
        module
            .clone()
            .into_record()
            .into_bytes()
            .expect("a module serialises")
            .to_vec()
    } else {
        Vec::new()
    };
    comm.broadcast(&mut bytes, 0);
    let record =
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).expect("rank 0 sent a whole record");
    module
        .try_load_record(record)
        .expect("every rank builds the same networks")
}
