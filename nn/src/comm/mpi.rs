//! [`MpiCommunicator`]: the ranks are processes started by `mpirun` (Open MPI, MPICH), on one
//! machine or several, through rsmpi, the `mpi` crate (cargo feature `mpi`).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ::mpi::datatype::{Partition, PartitionMut};
use ::mpi::environment::Universe;
use ::mpi::request::{scope, Request, Scope};
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::{Communicator as _, CommunicatorCollectives, Equivalence, Root};
use ::mpi::{Count, Threading};

use super::{add_into, Buffer, Communicator};

/// The world of processes `mpirun` started: MPI's `MPI_COMM_WORLD`.
///
/// Made once per process ([`MpiCommunicator::init`]); dropping it finalizes MPI, so keep it
/// until the program ends. Its operations may be called from any thread (they are serialized):
/// [`Ddp`](super::Ddp) calls them from its communication thread while backward runs.
///
/// The all-reduce is deterministic, unlike `MPI_Allreduce`, whose order of additions the
/// standard leaves open: each rank owns a W-th of the buffer, receives that part from every
/// rank (`MPI_Alltoallv`), sums it in rank order, and the parts are gathered back
/// (`MPI_Allgatherv`). That moves `2·(W−1)/W` of the buffer per rank, as a ring all-reduce does.
///
/// Every collective is started non-blocking and tested, with short sleeps, until done (see
/// `finish`): Open MPI progresses a non-blocking collective only inside MPI calls, so the
/// tests are what moves it, and the sleeps leave the core to the compute thread.
///
/// A process that panics while it holds the communicator aborts the whole job
/// (`MPI_Abort`), naming its rank, instead of finalizing: the other ranks would wait forever.
pub struct MpiCommunicator {
    universe: Mutex<Option<Universe>>,
    /// Serializes MPI calls (MPI may have been given fewer than `MPI_THREAD_MULTIPLE`).
    calls: Mutex<()>,
    rank: usize,
    size: usize,
}

impl MpiCommunicator {
    /// Initializes MPI (`MPI_Init_thread`) and returns the world, or `None` if MPI was
    /// initialized before in this process or cannot be.
    pub fn init() -> Option<Self> {
        let (universe, threading) = ::mpi::initialize_with_threading(Threading::Multiple)?;
        if threading < Threading::Serialized {
            // Calls come from more than one thread, one at a time: Serialized is the least we need.
            SimpleCommunicator::world().abort(3);
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Some(MpiCommunicator { universe: Mutex::new(Some(universe)), calls: Mutex::new(()), rank, size })
    }

    /// Whether this process was started by an MPI launcher (`mpirun`, `mpiexec`, `srun`): the
    /// variables Open MPI, MPICH and PMIx set for each process. A program can check this
    /// before [`init`](Self::init) to run alone, without MPI, when started directly.
    pub fn launched() -> bool {
        ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
    }

    fn call<R>(&self, f: impl FnOnce(&SimpleCommunicator) -> R) -> R {
        let _one_at_a_time = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        f(&SimpleCommunicator::world())
    }

    /// The deterministic all-reduce (see the type's docs) of one element type.
    fn reduce<T: Equivalence + Copy + Default + std::ops::Add<Output = T>>(&self, buf: &mut [T]) {
        let (n, w) = (buf.len(), self.size);
        if w == 1 {
            return;
        }
        let bounds: Vec<usize> = (0..=w).map(|r| n * r / w).collect();
        let counts: Vec<Count> = bounds.windows(2).map(|b| count(b[1] - b[0])).collect();
        let displs: Vec<Count> = bounds[..w].iter().map(|&b| count(b)).collect();
        let mine = bounds[self.rank + 1] - bounds[self.rank];
        let mut parts = vec![T::default(); mine * w];
        self.call(|world| {
            let send = Partition::new(&buf[..], &counts[..], &displs[..]);
            let recv_counts = vec![count(mine); w];
            let recv_displs: Vec<Count> = (0..w).map(|r| count(r * mine)).collect();
            let mut recv = PartitionMut::new(&mut parts[..], &recv_counts[..], &recv_displs[..]);
            scope(|sc| finish(world.immediate_all_to_all_varcount_into(sc, &send, &mut recv)));
        });
        let (sum, rest) = parts.split_at_mut(mine);
        for part in rest.chunks_exact(mine.max(1)) {
            add_into(sum, part);
        }
        self.call(|world| {
            let mut all = PartitionMut::new(buf, &counts[..], &displs[..]);
            scope(|sc| finish(world.immediate_all_gather_varcount_into(sc, &*sum, &mut all)));
        });
    }
}

/// Waits for a non-blocking collective by testing it, sleeping between tests once it has
/// taken more than a moment. Open MPI's blocking calls spin on a core until the other ranks
/// arrive; on a machine with a core per rank, a communication thread spinning beside the
/// compute thread takes half its core away for as long as backward runs.
fn finish<'a, D: ?Sized, S: Scope<'a>>(mut request: Request<'a, D, S>) {
    let mut tests = 0u32;
    loop {
        match request.test() {
            Ok(_) => return,
            Err(pending) => request = pending,
        }
        tests += 1;
        if tests < 4096 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// An element count as MPI takes it.
fn count(n: usize) -> Count {
    Count::try_from(n).unwrap_or_else(|_| panic!("MPI: {n} elements exceed MPI's count limit ({})", Count::MAX))
}

/// Checks the ranks agree on a buffer's length and element type (a mismatch would make MPI
/// read past a buffer or mix types): the length, and 1 for f32 or 2 for f64, gathered.
fn agree(comm: &MpiCommunicator, what: &str, len: usize, kind: u64) {
    let mine = (len as u64) << 2 | kind;
    let all = comm.all_gather(mine);
    if let Some(r) = all.iter().position(|&x| x != mine) {
        let (their_len, their_kind) = (all[r] >> 2, all[r] & 3);
        comm.abort(&format!(
            "{what}: rank {r} gave {their_len} elements of {}, rank {} gave {len} of {}",
            ["?", "f32", "f64", "?"][their_kind as usize],
            comm.rank,
            ["?", "f32", "f64", "?"][kind as usize]
        ));
    }
}

impl Communicator for MpiCommunicator {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, buf: Buffer<'_>) {
        match buf {
            Buffer::F32(b) => {
                agree(self, "all_reduce_sum", b.len(), 1);
                self.reduce(b);
            }
            Buffer::F64(b) => {
                agree(self, "all_reduce_sum", b.len(), 2);
                self.reduce(b);
            }
        }
    }

    fn broadcast(&self, buf: Buffer<'_>) {
        match buf {
            Buffer::F32(b) => {
                agree(self, "broadcast", b.len(), 1);
                self.call(|world| scope(|sc| finish(world.process_at_rank(0).immediate_broadcast_into(sc, b))));
            }
            Buffer::F64(b) => {
                agree(self, "broadcast", b.len(), 2);
                self.call(|world| scope(|sc| finish(world.process_at_rank(0).immediate_broadcast_into(sc, b))));
            }
        }
    }

    fn all_gather(&self, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.size];
        self.call(|world| scope(|sc| finish(world.immediate_all_gather_into(sc, &value, &mut all[..]))));
        all
    }

    fn barrier(&self) {
        self.call(|world| finish(world.immediate_barrier()));
    }

    fn abort(&self, message: &str) -> ! {
        eprintln!("rank {} of {}: {message}", self.rank, self.size);
        // Not through `calls`: another thread may be waiting in a collective for the rank
        // that failed, holding it. MPI_Abort ends every process of the job.
        SimpleCommunicator::world().abort(1)
    }
}

impl Drop for MpiCommunicator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Finalizing would wait for the other ranks, which wait for this one.
            self.abort("panicked (see above); ending every rank");
        }
        // Dropping the universe finalizes MPI (MPI_Finalize).
        drop(self.universe.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}
