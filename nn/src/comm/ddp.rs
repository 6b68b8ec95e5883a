//! [`Ddp`]: one data-parallel training step across the ranks of a [`Communicator`], its
//! gradients reduced in buckets while backward is still running (PyTorch's
//! `DistributedDataParallel`).
//!
//! Each rank records its shard's forward on its own tape. Before backward, a gradient hook is
//! put on every parameter's node; the reverse sweep reaches a parameter's node once every use
//! of it has passed its gradient back, so the hook sees the parameter's complete gradient and
//! copies it into its bucket. Buckets hold the parameters in reverse creation order (the order
//! backward finishes them in a model built in the order it runs), about
//! [`DdpConfig::bucket_bytes`] each; a full bucket goes to a communication thread that
//! all-reduces it while the sweep goes on with earlier layers. After the sweep, what is left is
//! sent, and the step waits for the last reduction. Buckets are sent in a fixed order on every
//! rank, whichever finishes first, so the ranks' collectives always match.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use autograd::{Float, Tape, Tensor, Var};

use super::{Buffer, Communicator};
use crate::params::{Bound, ParamGrads, ParamId, ParamStore};

/// How [`Ddp`] reduces gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DdpConfig {
    /// The size of a bucket of gradients in bytes: a bucket is all-reduced as soon as
    /// backward has finished all its parameters. 0 reduces every gradient in one bucket after
    /// backward (no overlap).
    pub bucket_bytes: usize,
    /// Check every this many steps that the ranks' parameters are equal
    /// ([`Ddp::check_parameters`]), panicking if not; 0 never checks. Default: every step in
    /// debug builds, never in release builds.
    pub check_every: u64,
}

impl Default for DdpConfig {
    fn default() -> Self {
        DdpConfig { bucket_bytes: 512 * 1024, check_every: u64::from(cfg!(debug_assertions)) }
    }
}

/// Where the time of [`Ddp`]'s steps went, summed over the steps so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DdpStats {
    /// Steps taken.
    pub steps: u64,
    /// Seconds in backward (the sweep, hooks included).
    pub backward_seconds: f64,
    /// Seconds the communication thread spent in all-reduces.
    pub reduce_seconds: f64,
    /// Seconds from the end of backward until the last reduction was done: the communication
    /// that backward did not hide.
    pub exposed_seconds: f64,
    /// Buckets reduced.
    pub buckets: u64,
}

impl DdpStats {
    /// The share of the all-reduce time hidden behind backward: `1 − exposed / reduce`.
    pub fn overlap(&self) -> f64 {
        if self.reduce_seconds <= 0.0 {
            return 0.0;
        }
        (1.0 - self.exposed_seconds / self.reduce_seconds).clamp(0.0, 1.0)
    }
}

/// The ranks' parameters differ: [`Ddp::check_parameters`] found checksums that are not rank
/// 0's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamsDiffer {
    /// The step at which they were compared.
    pub step: u64,
    /// Every rank's checksum, in rank order.
    pub checksums: Vec<u64>,
}

impl ParamsDiffer {
    /// The ranks whose parameters differ from rank 0's.
    pub fn ranks(&self) -> Vec<usize> {
        self.checksums.iter().enumerate().filter(|&(_, &c)| c != self.checksums[0]).map(|(r, _)| r).collect()
    }
}

impl fmt::Display for ParamsDiffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranks: Vec<String> = self.ranks().iter().map(ToString::to_string).collect();
        write!(
            f,
            "the parameters of rank {} differ from rank 0's at step {} (checksums {:016x?})",
            ranks.join(", "),
            self.step,
            self.checksums
        )
    }
}

impl std::error::Error for ParamsDiffer {}

/// A bucket sent to the communication thread, and what comes back.
struct Job<T> {
    index: usize,
    data: Vec<T>,
}

struct Done<T> {
    index: usize,
    data: Vec<T>,
    seconds: f64,
    end: Instant,
}

/// Data-parallel steps across the ranks of a [`Communicator`] (PyTorch's
/// `DistributedDataParallel`).
///
/// Each rank records its shard's forward on its own tape. Before backward, a gradient hook is
/// put on every parameter's node: the reverse sweep reaches a parameter's node once every use
/// of it has passed its gradient back, so the hook sees the complete gradient and copies it
/// into its bucket. Buckets hold the parameters in reverse creation order, about
/// [`DdpConfig::bucket_bytes`] each; a full bucket goes to a communication thread that
/// all-reduces it while the sweep goes on. Buckets are sent in the same order on every rank, so
/// the ranks' collectives always match.
///
/// ```
/// use std::sync::Arc;
/// use autograd::Tensor;
/// use nn::comm::{Communicator, Ddp, DdpConfig, LocalCommunicator};
/// use nn::{loss, Activation, Mlp, ParamStore};
///
/// let x: Vec<f64> = (0..24).map(|i| f64::from(i) / 10.0).collect(); // 8 rows of 3
/// let y = [0, 1, 1, 0, 1, 0, 0, 1];
/// // Two ranks (threads here; processes under mpirun with MpiCommunicator), each with its
/// // own copy of the model, each taking half the batch.
/// let results = LocalCommunicator::run(2, |comm| {
///     let mut store = ParamStore::<f64>::with_seed(comm.rank() as u64); // rank 0's wins
///     let mlp = Mlp::new(store.scope("mlp"), &[3, 4, 2], Activation::Tanh);
///     let mut ddp = Ddp::new(Arc::new(comm.clone()), DdpConfig::default(), &mut store);
///     let rows = 4 * comm.rank()..4 * (comm.rank() + 1);
///     let (loss, grads) = ddp.value_and_grad(&store, 0, |p| {
///         let xs = p.tape().constant(Tensor::from_vec(x[rows.start * 3..rows.end * 3].to_vec(), &[4, 3]));
///         loss::cross_entropy(mlp.forward(p, xs), &y[rows.clone()]) * 0.5
///     });
///     (loss, grads.global_norm())
/// });
/// assert_eq!(results[0], results[1]); // every rank has the whole batch's loss and gradient
/// ```
pub struct Ddp<T: Float> {
    comm: Arc<dyn Communicator>,
    config: DdpConfig,
    jobs: Option<Sender<Job<T>>>,
    done: Receiver<Done<T>>,
    worker: Option<JoinHandle<()>>,
    stats: DdpStats,
}

impl<T: Float> Ddp<T> {
    /// Steps across `comm`'s ranks, starting a communication thread, after replacing `store`'s
    /// parameters with rank 0's ([`Ddp::broadcast_parameters`]) so that the ranks start equal.
    /// Every rank must call this, with a store of the same parameters.
    ///
    /// # Panics
    /// If the thread cannot be started; as [`Communicator::broadcast`].
    pub fn new(comm: Arc<dyn Communicator>, config: DdpConfig, store: &mut ParamStore<T>) -> Self {
        let (jobs, inbox) = channel::<Job<T>>();
        let (outbox, done) = channel::<Done<T>>();
        let worker_comm = Arc::clone(&comm);
        let worker = std::thread::Builder::new()
            .name(format!("pente-reduce-{}", comm.rank()))
            .spawn(move || {
                for mut job in inbox {
                    let start = Instant::now();
                    worker_comm.all_reduce_sum(Buffer::of(&mut job.data));
                    let end = Instant::now();
                    let seconds = (end - start).as_secs_f64();
                    if outbox.send(Done { index: job.index, data: job.data, seconds, end }).is_err() {
                        break;
                    }
                }
            })
            .expect("Ddp: cannot start the communication thread");
        let ddp = Ddp { comm, config, jobs: Some(jobs), done, worker: Some(worker), stats: DdpStats::default() };
        ddp.broadcast_parameters(store);
        ddp
    }

    /// The communicator.
    pub fn comm(&self) -> &dyn Communicator {
        &*self.comm
    }

    /// The configuration.
    pub fn config(&self) -> DdpConfig {
        self.config
    }

    /// Where the time went so far.
    pub fn stats(&self) -> DdpStats {
        self.stats
    }

    /// Replaces every parameter and buffer of `store` with rank 0's (one broadcast of them all).
    ///
    /// # Panics
    /// As [`Communicator::broadcast`] (e.g. stores of different sizes).
    pub fn broadcast_parameters(&self, store: &mut ParamStore<T>) {
        let mut flat: Vec<T> = Vec::with_capacity(store.num_params());
        for (_, _, t) in store.iter() {
            flat.extend_from_slice(t.data());
        }
        self.comm.broadcast(Buffer::of(&mut flat));
        let mut at = 0;
        for (_, t, _) in store.iter_mut() {
            let n = t.numel();
            t.data_mut().copy_from_slice(&flat[at..at + n]);
            at += n;
        }
    }

    /// Saves the checkpoint `make` builds on rank 0 only (crash-safely, through
    /// [`Checkpoint::save`](crate::Checkpoint::save)), then waits until it is written: the
    /// ranks hold the same parameters, so one copy is the run's.
    ///
    /// # Errors
    /// On rank 0, the save's error; the other ranks then wait in their next collective until
    /// the caller ends the run ([`Communicator::abort`]).
    pub fn save_on_rank_0(
        &self,
        make: impl FnOnce() -> crate::Checkpoint,
        path: &std::path::Path,
    ) -> crate::Result<()> {
        if self.comm.rank() == 0 {
            make().save(path)?;
        }
        self.comm.barrier();
        Ok(())
    }

    /// Compares a checksum of `store`'s parameters (their bits, in order) across the ranks.
    ///
    /// # Errors
    /// [`ParamsDiffer`], naming the ranks whose parameters are not rank 0's.
    pub fn check_parameters(&self, store: &ParamStore<T>) -> Result<(), ParamsDiffer> {
        let checksums = self.comm.all_gather(checksum(store));
        if checksums.iter().all(|&c| c == checksums[0]) {
            Ok(())
        } else {
            Err(ParamsDiffer { step: self.stats.steps, checksums })
        }
    }

    /// Runs `f` on a fresh tape seeded with `seed` (this rank's shard: it returns the shard's
    /// term of the batch's loss, as with [`DataParallel`](crate::DataParallel)), back-propagates
    /// it while all-reducing the gradients in buckets, and returns the sum over the ranks of the
    /// terms and of the parameters' gradients: the same on every rank. A parameter has a
    /// gradient if it has one on any rank. Buffers (batch norm's running statistics) come back
    /// as rank 0's step set them, broadcast to every rank as PyTorch's DDP does, so `W` ranks
    /// compute what `W` shards of [`DataParallel`](crate::DataParallel) do, bit for bit.
    ///
    /// # Panics
    /// If the parameters differ across ranks at a step that [`DdpConfig::check_every`] checks
    /// (naming the ranks); if another rank failed; if `f`'s result has more than one element.
    pub fn value_and_grad<F>(&mut self, store: &ParamStore<T>, seed: u64, f: F) -> (T, ParamGrads<T>)
    where
        F: for<'t> FnOnce(&Bound<'t, T>) -> Var<'t, T>,
    {
        let every = self.config.check_every;
        if every > 0 && self.stats.steps.is_multiple_of(every) {
            if let Err(e) = self.check_parameters(store) {
                panic!("Ddp: {e}");
            }
        }
        let plan = Rc::new(Plan::new(store, self.config.bucket_bytes / std::mem::size_of::<T>()));
        let jobs = self.jobs.clone().expect("the communication thread runs until Ddp is dropped");
        let fill = Rc::new(RefCell::new(Filling::new(Rc::clone(&plan), jobs)));
        let tape = Tape::with_seed(seed);
        let bound = store.bind(&tape);
        let loss = f(&bound);
        let value = loss.item();
        if self.config.bucket_bytes > 0 {
            for (id, v) in bound.lifted() {
                if v.requires_grad() && plan.slot[id.index()].is_some() {
                    let fill = Rc::clone(&fill);
                    v.register_hook(move |g| {
                        fill.borrow_mut().arrive(id, g.value().data());
                        None
                    });
                }
            }
        }
        let start = Instant::now();
        let mut grads = bound.backward(loss);
        let backward_end = Instant::now();
        drop(bound);
        drop(tape); // the hooks and their references to `fill`
        let mut fill = Rc::try_unwrap(fill).ok().expect("the tape and its hooks are gone").into_inner();
        let mut present = vec![T::ZERO; plan.params.len() + 1];
        present[0] = value;
        for (k, &id) in plan.params.iter().enumerate() {
            if let Some(g) = grads.get(id) {
                present[k + 1] = T::ONE;
                if !fill.arrived[k] {
                    fill.arrive(id, g.data());
                }
            }
        }
        fill.finish();
        let n = plan.buckets.len();
        let jobs = fill.jobs;
        jobs.send(Job { index: n, data: present }).expect("the communication thread is running");
        drop(jobs);
        let mut reduced: Vec<Option<Vec<T>>> = vec![None; n + 1];
        let mut last_end = backward_end;
        for _ in 0..=n {
            let done = self.done.recv().unwrap_or_else(|_| self.worker_failed());
            self.stats.reduce_seconds += done.seconds;
            last_end = last_end.max(done.end);
            reduced[done.index] = Some(done.data);
        }
        self.stats.steps += 1;
        self.stats.buckets += n as u64;
        self.stats.backward_seconds += (backward_end - start).as_secs_f64();
        self.stats.exposed_seconds += (last_end - backward_end).as_secs_f64();
        let present = reduced[n].take().expect("every job comes back");
        let mut out: Vec<Option<Tensor<T>>> = vec![None; store.len()];
        for (b, bucket) in plan.buckets.iter().enumerate() {
            let data = reduced[b].take().expect("every job comes back");
            for &k in bucket {
                let id = plan.params[k];
                if present[k + 1] > T::ZERO {
                    let (at, len) = plan.slot[id.index()].expect("planned");
                    let shape = store.get(id).shape();
                    out[id.index()] = Some(Tensor::from_vec(data[at..at + len].to_vec(), shape));
                }
            }
        }
        let mut reduced = ParamGrads::from_vec(out);
        reduced.buffers = self.rank_0_buffers(store, std::mem::take(&mut grads.buffers));
        (present[0], reduced)
    }

    /// The buffers' new values as rank 0's step set them (`mine` are this rank's), on every
    /// rank: PyTorch's DDP broadcasts rank 0's buffers too, so that running statistics never
    /// drift apart. One broadcast of every buffer of the store, each behind a flag saying
    /// whether the step set it; none when the store has no buffers (the store is the same on
    /// every rank, so all of them skip it or none does).
    ///
    /// # Panics
    /// If a value in `mine` does not have its buffer's size.
    fn rank_0_buffers(&self, store: &ParamStore<T>, mine: Vec<(ParamId, Tensor<T>)>) -> Vec<(ParamId, Tensor<T>)> {
        let buffers: Vec<(ParamId, &str, usize)> =
            store.iter().filter(|&(id, _, _)| store.is_buffer(id)).map(|(id, name, t)| (id, name, t.numel())).collect();
        if buffers.is_empty() {
            return mine;
        }
        let mut flat: Vec<T> = Vec::with_capacity(buffers.iter().map(|&(_, _, n)| n + 1).sum());
        for &(id, name, n) in &buffers {
            match mine.iter().find(|(i, _)| *i == id) {
                Some((_, t)) => {
                    assert_eq!(t.numel(), n, "Ddp: buffer `{name}` of {n} elements given a value of {}", t.numel());
                    flat.push(T::ONE);
                    flat.extend_from_slice(t.data());
                }
                None => flat.extend(std::iter::repeat_n(T::ZERO, n + 1)),
            }
        }
        self.comm.broadcast(Buffer::of(&mut flat));
        let mut at = 0;
        let mut theirs = Vec::new();
        for &(id, _, n) in &buffers {
            if flat[at] > T::ZERO {
                theirs.push((id, Tensor::from_vec(flat[at + 1..at + 1 + n].to_vec(), store.get(id).shape())));
            }
            at += n + 1;
        }
        theirs
    }

    /// The communication thread ended (its all-reduce panicked): its panic, on this thread.
    fn worker_failed(&mut self) -> ! {
        drop(self.jobs.take());
        match self.worker.take().map(JoinHandle::join) {
            Some(Err(e)) => std::panic::resume_unwind(e),
            _ => panic!("Ddp: the communication thread stopped"),
        }
    }
}

impl<T: Float> Drop for Ddp<T> {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// FNV-1a over the bits of every parameter, in order.
fn checksum<T: Float>(store: &ParamStore<T>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (_, _, t) in store.iter() {
        for x in t.data() {
            for byte in x.to_f64().to_bits().to_le_bytes() {
                h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    h
}

/// The buckets of one step: the trainable parameters in reverse creation order, cut into runs
/// of about `bucket_elems` elements (one bucket of all when 0).
struct Plan {
    /// The trainable parameters, in bucket order.
    params: Vec<ParamId>,
    /// Per parameter of the store: its offset and length in its bucket, if trainable.
    slot: Vec<Option<(usize, usize)>>,
    /// Per parameter of the store: its bucket.
    bucket_of: Vec<usize>,
    /// Per parameter of the store: its index in `params`.
    index: Vec<usize>,
    /// Per bucket: indices into `params`.
    buckets: Vec<Vec<usize>>,
    /// Per bucket: its length in elements.
    lens: Vec<usize>,
}

impl Plan {
    fn new<T: Float>(store: &ParamStore<T>, bucket_elems: usize) -> Self {
        let params: Vec<ParamId> = (0..store.len()).rev().map(ParamId).filter(|&id| !store.is_frozen(id)).collect();
        let mut slot = vec![None; store.len()];
        let mut bucket_of = vec![0; store.len()];
        let mut index = vec![0; store.len()];
        let (mut buckets, mut lens) = (vec![Vec::new()], vec![0usize]);
        for (k, &id) in params.iter().enumerate() {
            let last = buckets.len() - 1;
            if bucket_elems > 0 && lens[last] >= bucket_elems {
                buckets.push(Vec::new());
                lens.push(0);
            }
            let b = buckets.len() - 1;
            let len = store.get(id).numel();
            slot[id.index()] = Some((lens[b], len));
            bucket_of[id.index()] = b;
            index[id.index()] = k;
            buckets[b].push(k);
            lens[b] += len;
        }
        Plan { params, slot, bucket_of, index, buckets, lens }
    }
}

/// The buckets being filled during backward; each is sent, in order, once complete.
struct Filling<T> {
    plan: Rc<Plan>,
    buffers: Vec<Vec<T>>,
    missing: Vec<usize>,
    /// Per entry of `plan.params`: whether its gradient is in its bucket.
    arrived: Vec<bool>,
    next: usize,
    jobs: Sender<Job<T>>,
}

impl<T: Float> Filling<T> {
    fn new(plan: Rc<Plan>, jobs: Sender<Job<T>>) -> Self {
        let buffers = plan.lens.iter().map(|&n| vec![T::ZERO; n]).collect();
        let missing = plan.buckets.iter().map(Vec::len).collect();
        let arrived = vec![false; plan.params.len()];
        Filling { plan, buffers, missing, arrived, next: 0, jobs }
    }

    /// Parameter `id`'s gradient is complete: into its bucket, and send what is ready.
    fn arrive(&mut self, id: ParamId, g: &[T]) {
        let b = self.plan.bucket_of[id.index()];
        let (at, len) = self.plan.slot[id.index()].expect("only planned parameters arrive");
        let k = self.plan.index[id.index()];
        if self.arrived[k] {
            return; // a second sweep through the same node: the first gradient is the one
        }
        assert_eq!(g.len(), len, "Ddp: the gradient of parameter {} has {} elements, not {len}", id.index(), g.len());
        self.buffers[b][at..at + len].copy_from_slice(g);
        self.arrived[k] = true;
        self.missing[b] -= 1;
        self.send_ready();
    }

    fn send_ready(&mut self) {
        while self.next < self.buffers.len() && self.missing[self.next] == 0 {
            let data = std::mem::take(&mut self.buffers[self.next]);
            self.jobs.send(Job { index: self.next, data }).expect("the communication thread is running");
            self.next += 1;
        }
    }

    /// Backward is over: the parameters that got no gradient on this rank count as zeros.
    fn finish(&mut self) {
        self.missing.iter_mut().for_each(|m| *m = 0);
        self.send_ready();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::LocalCommunicator;
    use crate::{loss, Activation, BatchNorm1d, DataParallel, Mlp};

    /// A two-hidden-layer MLP (six parameters: several buckets) and `rows` rows of 5 features.
    fn problem<T: Float>(rows: usize) -> (ParamStore<T>, Mlp, Vec<T>, Vec<usize>) {
        let mut store = ParamStore::<T>::with_seed(11);
        let mlp = Mlp::new(store.scope("mlp"), &[5, 16, 16, 3], Activation::Tanh);
        let x = (0..rows * 5).map(|i| T::from_f64(((i * 37) % 23) as f64 / 7.0 - 1.5)).collect();
        let y = (0..rows).map(|i| (i * 7) % 3).collect();
        (store, mlp, x, y)
    }

    fn loss_on<'t, T: Float>(p: &Bound<'t, T>, mlp: &Mlp, x: &[T], y: &[usize], weight: f64) -> Var<'t, T> {
        let xs = p.tape().constant(Tensor::from_vec(x.to_vec(), &[y.len(), 5]));
        loss::cross_entropy(mlp.forward(p, xs), y) * weight
    }

    /// Every rank's loss and gradients from `Ddp` with `bucket_bytes`, rank r seeded as
    /// DataParallel seeds shard r.
    fn ddp_run<T: Float>(ranks: usize, rows: usize, bucket_bytes: usize) -> Vec<(T, ParamGrads<T>, DdpStats)> {
        LocalCommunicator::run(ranks, |comm| {
            let (mut store, mlp, x, y) = problem::<T>(rows);
            let config = DdpConfig { bucket_bytes, check_every: 1 };
            let mut ddp = Ddp::new(Arc::new(comm.clone()), config, &mut store);
            let r = rows * comm.rank() / ranks..rows * (comm.rank() + 1) / ranks;
            let weight = r.len() as f64 / rows as f64;
            let seed = 5u64.wrapping_add((comm.rank() as u64) << 32);
            let (l, g) = ddp
                .value_and_grad(&store, seed, |p| loss_on(p, &mlp, &x[r.start * 5..r.end * 5], &y[r.clone()], weight));
            (l, g, ddp.stats())
        })
    }

    #[test]
    fn f64_gradient_is_bit_identical_to_data_parallel_with_the_same_split() {
        for (ranks, bucket_bytes) in [(2, 0), (3, 8), (3, 1 << 20), (4, 300)] {
            let rows = 10;
            let (store, mlp, x, y) = problem::<f64>(rows);
            let dp = DataParallel::new(ranks);
            let (want_loss, want) = dp.value_and_grad(&store, 5, |p, shard| {
                let (r, weight) = dp.split(rows, shard);
                loss_on(p, &mlp, &x[r.start * 5..r.end * 5], &y[r], weight)
            });
            for (rank, (l, got, stats)) in ddp_run::<f64>(ranks, rows, bucket_bytes).into_iter().enumerate() {
                assert_eq!(l.to_bits(), want_loss.to_bits(), "{ranks} ranks, rank {rank}: loss");
                for (id, w) in want.iter() {
                    let g = got.get(id).expect("every parameter has a gradient");
                    let same = w.data().iter().zip(g.data()).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{ranks} ranks, buckets of {bucket_bytes} B, rank {rank}: {} differs",
                        store.name(id)
                    );
                }
                assert_eq!(got.iter().count(), store.len());
                if bucket_bytes != 300 {
                    let buckets = if bucket_bytes == 8 { store.len() as u64 } else { 1 };
                    assert_eq!(stats.buckets, buckets, "{ranks} ranks, buckets of {bucket_bytes} B");
                }
            }
        }
    }

    /// Batch norm's running statistics after one step: `DataParallel` keeps shard 0's (those
    /// one tape computes on shard 0's rows), and every rank of `Ddp` gets rank 0's, bit for bit,
    /// with the same gradients as the shards.
    #[test]
    fn buffers_come_back_as_shard_0_and_rank_0_set_them() {
        let (rows, ranks) = (12, 3);
        let build = || {
            let (mut store, mlp, x, y) = problem::<f64>(rows);
            let bn = BatchNorm1d::new(store.scope("bn"), 5);
            (store, bn, mlp, x, y)
        };
        fn loss<'t>(
            p: &Bound<'t, f64>,
            bn: &BatchNorm1d,
            mlp: &Mlp,
            x: &[f64],
            y: &[usize],
            weight: f64,
        ) -> Var<'t, f64> {
            let xs = p.tape().constant(Tensor::from_vec(x.to_vec(), &[y.len(), 5]));
            loss::cross_entropy(mlp.forward(p, bn.forward(p, xs)), y) * weight
        }
        let bits = |t: &Tensor<f64>| t.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (store, bn, mlp, x, y) = build();
        let dp = DataParallel::new(ranks);
        let (_, want) = dp.value_and_grad(&store, 5, |p, shard| {
            let (r, weight) = dp.split(rows, shard);
            loss(p, &bn, &mlp, &x[r.start * 5..r.end * 5], &y[r], weight)
        });
        let (_, shard_0) = store.value_and_grad(5, |p| loss(p, &bn, &mlp, &x[..4 * 5], &y[..4], 1.0));
        assert_eq!(want.buffers.len(), 3, "running mean, running variance, batches tracked");
        for (id, t) in &want.buffers {
            let (_, mine) = shard_0.buffers.iter().find(|(i, _)| i == id).expect("shard 0 set it");
            assert_eq!(bits(t), bits(mine), "{} is not shard 0's", store.name(*id));
            assert_ne!(bits(t), bits(store.get(*id)), "{} did not move", store.name(*id));
        }
        let got = LocalCommunicator::run(ranks, |comm| {
            let (mut store, bn, mlp, x, y) = build();
            let mut ddp = Ddp::new(Arc::new(comm.clone()), DdpConfig { bucket_bytes: 64, check_every: 1 }, &mut store);
            let r = rows * comm.rank() / ranks..rows * (comm.rank() + 1) / ranks;
            let seed = 5u64.wrapping_add((comm.rank() as u64) << 32);
            let (_, g) = ddp.value_and_grad(&store, seed, |p| {
                loss(p, &bn, &mlp, &x[r.start * 5..r.end * 5], &y[r.clone()], r.len() as f64 / rows as f64)
            });
            g
        });
        for (rank, g) in got.iter().enumerate() {
            for (id, w) in want.iter() {
                assert_eq!(bits(w), bits(g.get(id).expect("a gradient")), "rank {rank}: {}", store.name(id));
            }
            let mut theirs: Vec<_> = g.buffers.iter().map(|(id, t)| (id.index(), bits(t))).collect();
            let mut ours: Vec<_> = want.buffers.iter().map(|(id, t)| (id.index(), bits(t))).collect();
            theirs.sort();
            ours.sort();
            assert_eq!(theirs, ours, "rank {rank}: the buffers are not rank 0's");
        }
    }

    #[test]
    fn f32_gradient_is_within_1e_6_of_one_tape() {
        let rows = 12;
        let (store, mlp, x, y) = problem::<f32>(rows);
        let (want_loss, want) = store.value_and_grad(0, |p| loss_on(p, &mlp, &x, &y, 1.0));
        for (l, got, _) in ddp_run::<f32>(3, rows, 256) {
            assert!((l - want_loss).abs() <= 1e-6, "loss {l} against {want_loss}");
            for (id, w) in want.iter() {
                for (a, b) in w.data().iter().zip(got.get(id).expect("every parameter").data()) {
                    assert!((a - b).abs() <= 1e-6, "{}: {a} against {b}", store.name(id));
                }
            }
        }
    }

    #[test]
    fn parameters_start_as_rank_0s_and_a_rank_that_drifts_is_named() {
        let out = LocalCommunicator::run(3, |comm| {
            let mut store = ParamStore::<f64>::with_seed(comm.rank() as u64); // different draws per rank
            let _mlp = Mlp::new(store.scope("mlp"), &[2, 3], Activation::Tanh);
            let ddp = Ddp::new(Arc::new(comm.clone()), DdpConfig { bucket_bytes: 0, check_every: 0 }, &mut store);
            let equal = ddp.check_parameters(&store);
            if comm.rank() == 2 {
                let first = store.iter().next().map(|(id, _, _)| id).expect("a parameter");
                store.get_mut(first).data_mut()[0] += 1e-12;
            }
            (equal, ddp.check_parameters(&store).map_err(|e| (e.ranks(), e.to_string())))
        });
        for (equal, drifted) in out {
            assert_eq!(equal, Ok(()));
            let (ranks, message) = drifted.expect_err("rank 2 drifted");
            assert_eq!(ranks, [2]);
            assert!(message.starts_with("the parameters of rank 2 differ from rank 0's at step 0"), "{message}");
        }
    }

    #[test]
    #[should_panic(expected = "Ddp: the parameters of rank 1 differ from rank 0's at step 1")]
    fn the_periodic_check_stops_a_run_whose_ranks_drift() {
        LocalCommunicator::run(2, |comm| {
            let (mut store, mlp, x, y) = problem::<f64>(4);
            let mut ddp = Ddp::new(Arc::new(comm.clone()), DdpConfig { bucket_bytes: 0, check_every: 1 }, &mut store);
            for step in 0..2 {
                let (_, grads) = ddp.value_and_grad(&store, 0, |p| loss_on(p, &mlp, &x, &y, 0.5));
                for (id, g) in grads.iter() {
                    let drift = if comm.rank() == 1 && step == 0 { 1e-9 } else { 0.0 };
                    let t = store.get_mut(id);
                    for (w, d) in t.data_mut().iter_mut().zip(g.data()) {
                        *w -= 0.1 * d + drift;
                    }
                }
            }
        });
    }

    #[test]
    fn bucketing_changes_no_bit_and_reduces_during_backward() {
        let one = ddp_run::<f64>(2, 8, 0);
        let many = ddp_run::<f64>(2, 8, 8);
        for ((l0, g0, s0), (l1, g1, s1)) in one.iter().zip(&many) {
            assert_eq!(l0.to_bits(), l1.to_bits());
            for (id, a) in g0.iter() {
                assert_eq!(a.data(), g1.get(id).expect("same parameters").data());
            }
            assert_eq!((s0.buckets, s1.buckets), (1, 6));
            assert!(s1.reduce_seconds > 0.0 && s1.backward_seconds > 0.0);
        }
    }
}
