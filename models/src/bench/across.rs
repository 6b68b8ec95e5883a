//! The mlp-mnist (batch 512), char-gpt and digits-cnn workloads across the ranks of a
//! [`Communicator`]: what `pente bench` measures under `mpirun`. Every rank draws the whole
//! batch as the one-process workload does, takes its rows, and [`Ddp`] sums the gradients;
//! the figure is the whole batch's samples (or tokens) per second, so it compares directly
//! with the one-process measurement of the same workload.

use std::ops::Range;
use std::sync::Arc;

use autograd::precision::Precision;
use autograd::{Rng, SeedableRng, Tensor};
use nn::comm::{Communicator, Ddp, DdpConfig, DdpStats};
use nn::{loss, Activation, Adam, AdamConfig, AdamW, DecayOn, Mlp, Optimizer, ParamStore};
use rand::Rng as _;

use super::{mean_loss, mnist_shaped_batches, samples_per_s, timed_steps, Measurement, Workload};
use crate::char_lm::gpt::{Gpt, GptConfig};
use crate::digits::model::{Arch, Net};

/// Runs `workload` across `comm`'s ranks with buckets of `bucket_bytes` (0: one reduction
/// after backward); returns each measurement with the all-reduce statistics of its timed and
/// warm-up steps. Workloads other than mlp-mnist, char-gpt and digits-cnn give nothing.
pub fn run_across(
    workload: Workload,
    comm: &Arc<dyn Communicator>,
    bucket_bytes: usize,
) -> Vec<(Measurement, DdpStats)> {
    let config = DdpConfig { bucket_bytes, check_every: 0 };
    match workload {
        Workload::MlpMnist => vec![mlp_mnist(comm, config, 512)],
        Workload::CharGpt => vec![char_gpt(comm, config)],
        Workload::DigitsCnn => vec![digits_cnn(comm, config)],
        _ => Vec::new(),
    }
}

/// The median seconds of one all-reduce of `elements` f32 (after a barrier), over `repeats`:
/// the communication alone, without a backward to wait for.
pub fn all_reduce_seconds(comm: &dyn Communicator, elements: usize, repeats: usize) -> f64 {
    let mut buf = vec![1.0f32; elements];
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            comm.barrier();
            let start = std::time::Instant::now();
            comm.all_reduce_sum(nn::comm::Buffer::F32(&mut buf));
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// This rank's rows of a batch of `batch`, and their share of it.
fn rows(comm: &dyn Communicator, batch: usize) -> (Range<usize>, f64) {
    let (r, w) = (comm.rank(), comm.world_size());
    let range = batch * r / w..batch * (r + 1) / w;
    let share = range.len() as f64 / batch as f64;
    (range, share)
}

/// Rows `range` of a `(batch, width)` tensor.
fn take_rows(x: &Tensor<f32>, range: &Range<usize>, width: usize) -> Tensor<f32> {
    Tensor::from_vec(x.data()[range.start * width..range.end * width].to_vec(), &[range.len(), width])
}

/// The seed of step `i` on this rank (as `DataParallel` seeds its shards).
fn seed(comm: &dyn Communicator, i: usize) -> u64 {
    (i as u64).wrapping_add((comm.rank() as u64) << 32)
}

fn with_ranks(mut m: Measurement, comm: &dyn Communicator) -> Measurement {
    m.implementation = "pente-ranks";
    m.size = format!("{} ranks={}", m.size, comm.world_size());
    m
}

fn mlp_mnist(comm: &Arc<dyn Communicator>, config: DdpConfig, batch: usize) -> (Measurement, DdpStats) {
    let mut store = ParamStore::<f32>::with_seed(0);
    let mlp = Mlp::new(store.scope("mlp"), &[784, 512, 256, 10], Activation::Relu);
    let mut opt = Adam::new(AdamConfig { lr: 1e-3, ..Default::default() });
    let mut ddp = Ddp::new(Arc::clone(comm), config, &mut store);
    let batches = mnist_shaped_batches(16, batch);
    let (range, share) = rows(&**comm, batch);
    let (seconds, last) = timed_steps(20, 200, |i| {
        let (x, y) = &batches[i % batches.len()];
        let x = take_rows(x, &range, 784);
        let (loss, grads) = ddp.value_and_grad(&store, seed(&**comm, i), |p| {
            loss::cross_entropy(mlp.forward(p, p.tape().constant(x.clone())), &y[range.clone()]) * share
        });
        opt.step(&mut store, &grads);
        loss
    });
    (with_ranks(samples_per_s("mlp-mnist", "pente", batch, 200, seconds, last), &**comm), ddp.stats())
}

fn digits_cnn(comm: &Arc<dyn Communicator>, config: DdpConfig) -> (Measurement, DdpStats) {
    const BATCH: usize = 128;
    let mut store = ParamStore::<f32>::with_seed(0);
    let net = Net::new(Arch::Cnn, &mut store);
    let mut opt = Adam::new(AdamConfig { lr: 1e-3, ..Default::default() });
    let mut ddp = Ddp::new(Arc::clone(comm), config, &mut store);
    let batches = mnist_shaped_batches(8, BATCH);
    let (range, share) = rows(&**comm, BATCH);
    let (seconds, last) = timed_steps(5, 40, |i| {
        let (x, y) = &batches[i % batches.len()];
        let x = take_rows(x, &range, 784);
        let (loss, grads) = ddp.value_and_grad(&store, seed(&**comm, i), |p| {
            loss::cross_entropy(net.forward(p, p.tape().constant(x.clone())), &y[range.clone()]) * share
        });
        opt.step(&mut store, &grads);
        loss
    });
    (with_ranks(samples_per_s("digits-cnn", "pente", BATCH, 40, seconds, last), &**comm), ddp.stats())
}

fn char_gpt(comm: &Arc<dyn Communicator>, config: DdpConfig) -> (Measurement, DdpStats) {
    const VOCAB: usize = 65;
    const BATCH: usize = 12;
    let gpt_config = GptConfig::default();
    let block = gpt_config.block_size;
    let mut store = ParamStore::<f32>::with_seed(0);
    let gpt = Gpt::new(store.scope("gpt"), VOCAB, gpt_config);
    let mut opt =
        AdamW::new(AdamConfig { lr: 1e-3, weight_decay: 0.1, decay_on: DecayOn::Matrices, ..Default::default() });
    let mut ddp = Ddp::new(Arc::clone(comm), config, &mut store);
    let mut rng = Rng::seed_from_u64(1);
    let (range, share) = rows(&**comm, BATCH);
    let (warmup, steps) = (10, 50);
    let (seconds, last) = timed_steps(warmup, steps, |i| {
        // Every rank draws the whole batch, as one process does, and trains on its rows.
        let rows: Vec<Vec<usize>> =
            (0..BATCH).map(|_| (0..=block).map(|_| rng.gen_range(0..VOCAB)).collect()).collect();
        let (loss, grads) = ddp.value_and_grad(&store, seed(&**comm, i), |p| {
            mean_loss(&gpt, p, &rows[range.clone()], Precision::F32) * share
        });
        opt.step(&mut store, &grads);
        loss
    });
    let m = Measurement {
        workload: "char-gpt",
        implementation: "pente",
        size: format!("params={}", store.num_params()),
        figure: "tokens_per_s",
        value: (BATCH * block * steps) as f64 / seconds,
        steps,
        seconds,
        check: Some(f64::from(last)),
    };
    (with_ranks(m, &**comm), ddp.stats())
}

#[cfg(test)]
mod tests {
    use nn::comm::LocalCommunicator;

    use super::*;

    #[test]
    fn two_ranks_report_the_same_measurement_of_the_whole_batch() {
        let out = LocalCommunicator::run(2, |comm| {
            let comm: Arc<dyn Communicator> = Arc::new(comm.clone());
            let (m, stats) = run_across(Workload::MlpMnist, &comm, 64 * 1024).pop().expect("one measurement");
            (m.check, m.size, stats.steps, stats.buckets > stats.steps)
        });
        assert_eq!(out[0].0, out[1].0, "the ranks end on the same loss");
        assert_eq!(out[0].1, "batch=512 ranks=2");
        assert_eq!((out[0].2, out[0].3), (220, true), "220 steps, more than one bucket each");
    }
}
