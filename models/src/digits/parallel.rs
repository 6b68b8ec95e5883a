//! Where a digits training step is computed: on one tape (the default), split into shards on
//! the threads of this process (`pente digits train --shards N`), or split across the ranks of
//! a run under `mpirun` (one shard per process, gradients all-reduced during backward).
//!
//! A batch of `B` images is cut as [`DataParallel::split`] cuts it: shard `s` of `W` takes rows
//! `B·s/W .. B·(s+1)/W` and weights its mean loss by its share of the batch, and its tape (and so
//! its dropout) is seeded with `seed + s·2³²`. Rank `r` of `W` ranks computes exactly shard `r`
//! of `W` shards, and [`Ddp`] sums the ranks' terms as [`DataParallel`] sums the shards', so a
//! run on `W` ranks computes the same numbers, bit for bit, as a run of `W` shards in one
//! process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use autograd::{Tensor, Var};
use nn::comm::{Buffer, Communicator, Ddp, DdpConfig};
use nn::{loss, Bound, DataParallel, ParamGrads};

use super::data::PIXELS;
use super::model::DigitsModel;
use crate::Error;

/// How the steps of [`train_on`](super::train::train_on) are computed; see the
/// [module docs](self).
pub enum StepOn {
    /// The whole batch on one tape, every op split across the cores.
    OneTape,
    /// Shards of each batch side by side, one thread and one tape each.
    Shards(DataParallel),
    /// One shard per rank of a run across processes.
    Ranks(Ddp<f32>),
}

impl StepOn {
    /// `shards` shards of a batch of `batch_size` images in this process (`None`: one tape).
    ///
    /// # Errors
    /// [`Error::Config`] for more shards than images in a batch.
    pub fn shards(shards: Option<usize>, batch_size: usize) -> Result<Self, Error> {
        match shards {
            None => Ok(StepOn::OneTape),
            Some(n) if n == 0 || n > batch_size => {
                Err(Error::Config(format!("--shards {n}: between 1 and the batch size ({batch_size} images)")))
            }
            Some(n) => Ok(StepOn::Shards(DataParallel::new(n))),
        }
    }

    /// One shard per rank of `comm`, after rank 0's parameters are broadcast into `model`'s.
    /// Every rank must call this.
    ///
    /// # Errors
    /// [`Error::Config`] for more ranks than images in a batch.
    pub fn ranks(comm: Arc<dyn Communicator>, config: DdpConfig, model: &mut DigitsModel) -> Result<Self, Error> {
        let world = comm.world_size();
        if world > model.config.batch_size {
            return Err(Error::Config(format!(
                "{world} processes for a batch of {} images: at most one process per image",
                model.config.batch_size
            )));
        }
        Ok(StepOn::Ranks(Ddp::new(comm, config, &mut model.store)))
    }

    /// The rank of this process (0 unless across processes).
    pub fn rank(&self) -> usize {
        match self {
            StepOn::Ranks(ddp) => ddp.comm().rank(),
            _ => 0,
        }
    }

    /// Waits until every rank is here (nothing to wait for in one process).
    pub fn barrier(&self) {
        if let StepOn::Ranks(ddp) = self {
            ddp.comm().barrier();
        }
    }

    /// The batch's mean loss, how many of its images the model classified right, and the
    /// gradients, for inputs `x (batch, 784)` with `labels`; `None` for [`StepOn::OneTape`]
    /// (the caller's own tape does it).
    pub fn step(
        &mut self,
        model: &DigitsModel,
        x: &Tensor<f32>,
        labels: &[usize],
        seed: u64,
    ) -> Option<(f32, usize, ParamGrads<f32>)> {
        let right = AtomicUsize::new(0);
        let n = labels.len();
        match self {
            StepOn::OneTape => None,
            StepOn::Shards(dp) => {
                let dp = &*dp;
                let (l, grads) = dp.value_and_grad(&model.store, seed, |p, shard| {
                    let (rows, weight) = dp.split(n, shard);
                    shard_loss(model, x, labels, &right, p, rows, weight)
                });
                Some((l, right.into_inner(), grads))
            }
            StepOn::Ranks(ddp) => {
                let (rank, world) = (ddp.comm().rank(), ddp.comm().world_size());
                let rows = n * rank / world..n * (rank + 1) / world;
                let weight = rows.len() as f64 / n as f64;
                let (l, grads) = ddp.value_and_grad(&model.store, seed.wrapping_add((rank as u64) << 32), |p| {
                    shard_loss(model, x, labels, &right, p, rows.clone(), weight)
                });
                let mut count = vec![right.into_inner() as f64];
                ddp.comm().all_reduce_sum(Buffer::of(&mut count));
                Some((l, count[0].round() as usize, grads))
            }
        }
    }
}

/// Shard `rows` of the batch `x`: its mean loss weighted by `weight`, counting its images
/// classified right into `right`.
fn shard_loss<'t>(
    model: &DigitsModel,
    x: &Tensor<f32>,
    labels: &[usize],
    right: &AtomicUsize,
    p: &Bound<'t, f32>,
    rows: std::ops::Range<usize>,
    weight: f64,
) -> Var<'t, f32> {
    let data = x.data()[rows.start * PIXELS..rows.end * PIXELS].to_vec();
    let xs = p.tape().constant(Tensor::from_vec(data, &[rows.len(), PIXELS]));
    let logits = model.net.forward(p, xs); // (rows, 10)
    let acc = loss::accuracy(&logits.value(), &labels[rows.clone()]);
    right.fetch_add((acc * rows.len() as f64).round() as usize, Ordering::Relaxed);
    loss::cross_entropy(logits, &labels[rows]) * weight
}
