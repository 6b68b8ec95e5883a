//! Training: AdamW with a warm-up and cosine schedule over random windows of the training
//! text, periodic validation, checkpoints that resume exactly.
//!
//! Everything random in step `s` is seeded from `(seed, s)` alone: the windows
//! ([`batch_starts`]) and the dropout masks (the tape's generator is reseeded each step). The
//! GPT's steps run data-parallel, one shard of the batch per core by default ([`DataParallel`],
//! [`TrainConfig::shards`]): the gradient is the whole batch's up to the rounding of the order
//! of the sums, and the dropout masks depend on the number of shards, which the checkpoint
//! keeps. The
//! optimizer's moments, the step count and the loss history are saved with the weights. So a
//! run stopped after any saved step and resumed from its checkpoint ends bit for bit where the
//! uninterrupted run ends (tested below).
//!
//! ```no_run
//! use models::char_lm::{data::Corpus, model::{CharLm, ModelConfig}, train::{TrainConfig, Trainer}};
//! let corpus = Corpus::shakespeare(true)?;
//! let config = ModelConfig::Mlp(Default::default());
//! let model = CharLm::new(corpus.vocab.clone(), config, 0)?;
//! let mut trainer = Trainer::new(model, TrainConfig::for_model(&config));
//! trainer.run(&corpus, None, &mut |_| {})?;
//! println!("validation loss {:.3} nats/char", trainer.model.evaluate(&corpus.val, None));
//! # Ok::<(), models::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use autograd::precision::Precision;
use autograd::Tape;
use nn::comm::{Buffer, Communicator, Ddp, DdpConfig, DdpStats};
use nn::{
    clip_grad_norm, Accumulate, AdamConfig, AdamW, Checkpoint, DataParallel, Decay, DecayOn, LrSchedule, Optimizer,
    ParamGrads,
};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use super::data::{batch_starts, gather_windows, step_rng, Corpus, CorpusId};
use super::model::{CharLm, ModelConfig, Net};
use crate::config::limits::{self, MAX_SHARDS, MAX_STEPS};
use crate::config::{self, Invalid};
use crate::Error;

/// How to train. Saved as JSON in every checkpoint of the run ([`RunRecord`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimizer steps in the whole run (the schedule's length).
    pub steps: u64,
    /// Windows per batch.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Final learning rate, as a fraction of the peak (cosine decay to it).
    pub min_lr_fraction: f64,
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// AdamW's decoupled weight decay, on matrices only.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    pub grad_clip: f64,
    /// Validate every this many steps (and at the end).
    pub eval_every: u64,
    /// Validation windows used periodically (evenly spaced; the final evaluation uses all).
    pub eval_windows: usize,
    /// Seed of the windows and dropout (the initial weights have their own seed).
    pub seed: u64,
    /// Shards of the GPT's batch run side by side, one tape and one core each
    /// ([`DataParallel`]): 0 picks one per core (at most one per window), which
    /// [`Trainer::new`] resolves to the number it runs; 1 records each step on one tape. The
    /// other models always use one tape. Dropout masks depend on it, so the checkpoint keeps
    /// it and a resumed run repeats the same steps on any machine.
    pub shards: usize,
    /// Save a checkpoint every this many steps (0: only at the end of [`Trainer::run`]), when
    /// [`Trainer::save`] is set.
    pub save_every: u64,
    /// GPT: checkpoint every transformer block (recompute it in backward instead of keeping its
    /// activations): less peak memory for a longer step, the same gradients to the last bit.
    /// Absent from older checkpoints, which read it as off.
    #[serde(default)]
    pub checkpoint_blocks: bool,
    /// The precision of the training steps' matrix products ([`Precision::Bf16`]: bf16
    /// operands, f32 accumulation; the weights, the optimizer state and the evaluation stay
    /// f32). Absent from older checkpoints, which read it as f32.
    #[serde(default, with = "crate::precision::by_name")]
    pub precision: Precision,
    /// Micro-batches per optimizer step ([`nn::Accumulate`]): each step's `batch_size` windows
    /// are cut into this many micro-batches of `batch_size / accumulate` windows (it must
    /// divide), each recorded and back-propagated on its own (and sharded, with
    /// [`TrainConfig::shards`] shards), and their gradients are averaged before the one update.
    /// The step's windows are those of the whole batch, so the update is the whole batch's up
    /// to the rounding of the sums' order; the peak memory is a micro-batch's. Dropout masks
    /// depend on it, so the checkpoint keeps it; older checkpoints read it as 1.
    #[serde(default = "one")]
    pub accumulate: usize,
    /// Stop at the first step boundary once the run's training seconds
    /// ([`Trainer::train_seconds`]: the steps alone, over every process that trained the run)
    /// reach this many (`None`: no limit). Only the steps are on the clock: drawing and
    /// gathering the batch, forward, backward, clipping and the update; validation, saving and
    /// reporting are not. The schedule is still the one of `steps`: choose `steps` to fit the
    /// budget, the limit is a guard. Kept in the checkpoint; older checkpoints have none.
    #[serde(default)]
    pub time_limit: Option<f64>,
}

/// The default of [`TrainConfig::accumulate`] in checkpoints that lack it.
fn one() -> usize {
    1
}

impl TrainConfig {
    /// Defaults that suit each model (measured on 2 cores; see the module table in `char_lm`).
    pub fn for_model(config: &ModelConfig) -> Self {
        let base = TrainConfig {
            steps: 1000,
            batch_size: 32,
            learning_rate: 1e-3,
            min_lr_fraction: 0.1,
            warmup_steps: 0,
            weight_decay: 0.0,
            grad_clip: 0.0,
            eval_every: 100,
            eval_windows: 4096,
            seed: 0,
            shards: 0,
            save_every: 0,
            checkpoint_blocks: false,
            precision: Precision::F32,
            accumulate: 1,
            time_limit: None,
        };
        let c = match config {
            ModelConfig::Bigram(_) => TrainConfig {
                steps: 400,
                batch_size: 4096,
                learning_rate: 0.5,
                min_lr_fraction: 0.0,
                eval_every: 25,
                eval_windows: 0,
                ..base
            },
            ModelConfig::Mlp(_) => TrainConfig {
                steps: 36_000,
                batch_size: 256,
                learning_rate: 3e-3,
                min_lr_fraction: 0.05,
                warmup_steps: 100,
                weight_decay: 0.01,
                eval_every: 1000,
                eval_windows: 20_000,
                ..base
            },
            ModelConfig::Gpt(g) => TrainConfig {
                steps: 5000,
                batch_size: 32,
                learning_rate: 2e-3,
                min_lr_fraction: 0.1,
                warmup_steps: 100,
                weight_decay: 0.1,
                grad_clip: 1.0,
                eval_every: 250,
                eval_windows: (16_384 / g.block_size).max(1),
                ..base
            },
        };
        TrainConfig { save_every: c.eval_every, ..c }
    }

    /// Checks every field against its bound, and that a step of `model` over `vocab` symbols
    /// fits in memory, before anything is built (for flags and checkpoints alike).
    ///
    /// # Errors
    /// [`Invalid`] naming the field and its bound.
    pub fn validate(&self, model: &ModelConfig, vocab: usize) -> Result<(), Invalid> {
        Invalid::at_most("steps", u128::from(self.steps), u128::from(MAX_STEPS), "")?;
        Invalid::in_range("eval_every", u128::from(self.eval_every), u128::from(MAX_STEPS))?;
        Invalid::at_most("save_every", u128::from(self.save_every), u128::from(MAX_STEPS), "")?;
        Invalid::at_most("shards", self.shards as u128, MAX_SHARDS as u128, "threads of one step")?;
        if self.batch_size == 0 {
            return Err(Invalid::new("batch_size", "= 0 must be at least 1"));
        }
        Invalid::in_range("accumulate", self.accumulate as u128, self.batch_size as u128)?;
        if !self.batch_size.is_multiple_of(self.accumulate) {
            return Err(Invalid::new(
                "accumulate",
                format!(
                    "= {} does not divide --batch-size {}: each step's batch is cut into micro-batches of equal size",
                    self.accumulate, self.batch_size
                ),
            ));
        }
        let micro = self.micro_batch_size();
        if self.shards > micro {
            return Err(Invalid::new(
                "shards",
                format!(
                    "= {}: {} shards for a {} of {micro} windows: at most one per window",
                    self.shards,
                    self.shards,
                    if self.accumulate > 1 { "micro-batch" } else { "batch" }
                ),
            ));
        }
        if let Some(t) = self.time_limit {
            if !(t.is_finite() && t >= 0.0) {
                return Err(Invalid::new(
                    "time_limit",
                    format!("= {t} must be a finite number of seconds, at least 0"),
                ));
            }
        }
        for (field, v) in [
            ("learning_rate", self.learning_rate),
            ("min_lr_fraction", self.min_lr_fraction),
            ("weight_decay", self.weight_decay),
            ("grad_clip", self.grad_clip),
        ] {
            if !(v.is_finite() && v >= 0.0) || (field == "learning_rate" && v == 0.0) {
                return Err(Invalid::new(field, format!("= {v} must be finite and positive")));
            }
        }
        // One micro-batch is recorded at a time: it is what bounds the memory.
        let activations = step_bytes(model, vocab, micro);
        limits::fits_in_memory("batch_size", self.batch_size as u128, "one step's activations", activations)
    }

    /// Windows per micro-batch: `batch_size / accumulate`.
    pub fn micro_batch_size(&self) -> usize {
        self.batch_size / self.accumulate.max(1)
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> LrSchedule {
        LrSchedule {
            base_lr: self.learning_rate,
            warmup_steps: self.warmup_steps,
            decay: Decay::Cosine { total_steps: self.steps, min_lr: self.learning_rate * self.min_lr_fraction },
        }
    }
}

/// Bytes the tape of one step over `batch` windows holds, estimated from the model's sizes (the
/// activations of every layer, kept for the backward pass, about twice over with their
/// gradients): what bounds the batch.
pub fn step_bytes(model: &ModelConfig, vocab: usize, batch: usize) -> Option<u128> {
    let v = vocab as u128;
    let per_window = match *model {
        ModelConfig::Bigram(_) => v.checked_mul(4),
        ModelConfig::Mlp(c) => {
            let (k, e, h) = (c.context as u128, c.n_embd as u128, c.hidden as u128);
            k.checked_mul(e)?.checked_add(h.checked_mul(2)?)?.checked_add(v.checked_mul(4)?)
        }
        ModelConfig::Gpt(c) => {
            let (b, e, heads, l) = (c.block_size as u128, c.n_embd as u128, c.n_head as u128, c.n_layer as u128);
            // per position and layer: ~24 vectors of n_embd, and 3 rows of attention weights
            let layer = e.checked_mul(24)?.checked_add(heads.checked_mul(b)?.checked_mul(3)?)?;
            b.checked_mul(l.checked_mul(layer)?.checked_add(v.checked_mul(4)?)?)
        }
    };
    per_window?.checked_mul(batch as u128)?.checked_mul(8)
}

/// What a char-lm training checkpoint's [`config::TRAIN_KEY`] entry holds: everything the run
/// needs to continue besides the model and the optimizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// How the run trains, its save cadence included.
    pub config: TrainConfig,
    /// The text it trains on (`None` in checkpoints written before it was recorded).
    pub corpus: Option<CorpusId>,
    /// The losses so far.
    pub history: History,
    /// Seconds of training so far.
    pub train_seconds: f64,
    /// The summed training loss and the steps since the last validation.
    pub interval: (f64, u64),
}

/// The losses of a run, for the figures: `(step, nats per character)` pairs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Mean training cross-entropy of each interval between validations, at its last step.
    pub train: Vec<(u64, f64)>,
    /// Validation loss at each validation.
    pub val: Vec<(u64, f64)>,
}

/// What [`Trainer::run`] reports as it goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// A step was taken.
    Step {
        /// Steps taken so far.
        step: u64,
        /// This step's training cross-entropy.
        loss: f64,
        /// Training tokens (predicted characters) per second over this run so far.
        tokens_per_second: f64,
    },
    /// The model was validated.
    Validation {
        /// Steps taken so far.
        step: u64,
        /// Validation loss, nats per character.
        loss: f64,
    },
    /// A checkpoint was written.
    Saved {
        /// Steps taken so far.
        step: u64,
    },
}

/// A model being trained, with its optimizer and history; see the [module docs](self).
pub struct Trainer {
    /// The model.
    pub model: CharLm,
    /// How it is trained.
    pub config: TrainConfig,
    /// The optimizer (its step count is the run's).
    pub opt: AdamW<f32>,
    /// The losses so far.
    pub history: History,
    /// Seconds spent in training steps (validation and saving excluded), over every process
    /// that trained this run (a resumed run adds to it).
    pub train_seconds: f64,
    /// Where to save checkpoints, every [`TrainConfig::save_every`] steps and at the end of
    /// [`Trainer::run`].
    pub save: Option<PathBuf>,
    /// The corpus the run trains on: set by the first [`Trainer::run`], kept in the checkpoint,
    /// and checked by every later one.
    pub corpus: Option<CorpusId>,
    tape: Tape<f32>,
    /// The GPT's shards ([`TrainConfig::shards`]); `None` on one tape.
    shards: Option<DataParallel>,
    interval: (f64, u64),
    /// The ranks of a run across processes ([`Trainer::distribute`]).
    ddp: Option<Ddp<f32>>,
}

impl Trainer {
    /// A trainer at step 0.
    pub fn new(mut model: CharLm, config: TrainConfig) -> Self {
        let opt = AdamW::new(AdamConfig {
            lr: config.learning_rate,
            weight_decay: config.weight_decay,
            decay_on: DecayOn::Matrices,
            ..Default::default()
        });
        let mut config = config;
        if !matches!(model.config, ModelConfig::Gpt(_)) {
            config.shards = 1;
        } else if config.shards == 0 {
            config.shards = DataParallel::per_thread_count(config.micro_batch_size());
        }
        // More shards than windows (of a micro-batch), or than MAX_SHARDS, is refused by `run`
        // (no threads started for it here).
        let runs = config.shards > 1 && config.shards <= config.micro_batch_size().min(MAX_SHARDS);
        let shards = runs.then(|| DataParallel::new(config.shards));
        if let Net::Gpt(gpt) = &mut model.net {
            gpt.checkpoint_blocks = config.checkpoint_blocks;
        }
        Trainer {
            model,
            config,
            opt,
            history: History::default(),
            train_seconds: 0.0,
            save: None,
            corpus: None,
            tape: Tape::new(),
            shards,
            interval: (0.0, 0),
            ddp: None,
        }
    }

    /// Steps taken.
    pub fn step(&self) -> u64 {
        self.opt.steps()
    }

    /// Where the time of the all-reduces went, in a run across processes.
    pub fn ddp_stats(&self) -> Option<DdpStats> {
        self.ddp.as_ref().map(Ddp::stats)
    }

    /// Trains data-parallel across the ranks of `comm` (processes under `mpirun`): each rank
    /// takes its shard of every batch, the gradients are all-reduced during backward
    /// ([`Ddp`], configured by `config`), rank 0's parameters are broadcast now, and only
    /// rank 0 saves. The run
    /// computes what `shards = world size` computes in one process, bit for bit, so the
    /// checkpoint records that many shards and resumes under any world size.
    ///
    /// # Errors
    /// [`Error::Config`] for the bigram and MLP models (one tape each; only the GPT shards),
    /// or a batch with fewer windows than ranks.
    pub fn distribute(&mut self, comm: Arc<dyn Communicator>, config: DdpConfig) -> Result<(), Error> {
        let world = comm.world_size();
        if !matches!(self.model.config, ModelConfig::Gpt(_)) {
            return Err(Error::Config(format!(
                "training across {world} processes is for the GPT; the {} model trains on one tape",
                self.model.config.kind()
            )));
        }
        if world > self.config.micro_batch_size().min(MAX_SHARDS) {
            return Err(Error::Config(format!(
                "{world} processes for a {} of {} windows: at most one process per window, and at most {MAX_SHARDS}",
                if self.config.accumulate > 1 { "micro-batch" } else { "batch" },
                self.config.micro_batch_size()
            )));
        }
        self.config.shards = world;
        self.shards = None;
        self.ddp = Some(Ddp::new(comm, config, &mut self.model.store));
        Ok(())
    }

    /// The checkpoint: model, optimizer state, step, and the [`RunRecord`].
    pub fn checkpoint(&self) -> Checkpoint {
        let record = RunRecord {
            config: self.config,
            corpus: self.corpus.clone(),
            history: self.history.clone(),
            train_seconds: self.train_seconds,
            interval: self.interval,
        };
        self.model
            .checkpoint()
            .with_optimizer(&self.opt, &self.model.store)
            .with_step(self.step())
            .with_metadata(config::TRAIN_KEY, config::to_json(&record))
    }

    /// Writes [`Trainer::checkpoint`] to `path` (crash-safely).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Checkpoint`] if it cannot be written.
    pub fn save_to(&self, path: &Path) -> Result<(), Error> {
        crate::create_parent_dir(path)?;
        Ok(self.checkpoint().save(path)?)
    }

    /// Restores a trainer from a checkpoint written by [`Trainer::save_to`], to continue its run
    /// as it was configured.
    ///
    /// # Errors
    /// As [`Trainer::resume_with`].
    pub fn resume(path: &Path) -> Result<Self, Error> {
        Self::resume_with(path, |_, _| Ok(()))
    }

    /// Restores a trainer from a checkpoint written by [`Trainer::save_to`], letting `adjust`
    /// change the recorded training configuration first (more steps, another rate: the command
    /// line's explicit overrides), with the loaded model at hand. The result is validated as a
    /// new configuration is.
    ///
    /// # Errors
    /// As [`CharLm::load`]; [`Error::NotAModel`] if the training record is missing, unreadable
    /// or out of range; what `adjust` returns.
    pub fn resume_with(
        path: &Path,
        adjust: impl FnOnce(&mut TrainConfig, &CharLm) -> Result<(), Error>,
    ) -> Result<Self, Error> {
        Self::from_checkpoint(&Checkpoint::load(path)?, path, adjust)
    }

    /// [`Trainer::resume_with`] on a checkpoint already read from `path`.
    ///
    /// # Errors
    /// As [`Trainer::resume_with`].
    pub fn from_checkpoint(
        ckpt: &Checkpoint,
        path: &Path,
        adjust: impl FnOnce(&mut TrainConfig, &CharLm) -> Result<(), Error>,
    ) -> Result<Self, Error> {
        let model = CharLm::from_checkpoint(ckpt, path)?;
        let not_ours = |reason: String| Error::NotAModel { path: path.to_path_buf(), expected: "char-lm", reason };
        let mut record = match config::from_json::<RunRecord>(&ckpt.metadata, config::TRAIN_KEY) {
            Some(record) => record,
            None => config::legacy::char_lm_run(&ckpt.metadata),
        }
        .map_err(not_ours)?;
        record.config.validate(&model.config, model.vocab.len()).map_err(|e| not_ours(e.to_string()))?;
        adjust(&mut record.config, &model)?;
        record.config.validate(&model.config, model.vocab.len())?;
        let mut t = Trainer::new(model, record.config);
        ckpt.restore_optimizer(&mut t.opt, &t.model.store)?;
        t.history = record.history;
        t.train_seconds = record.train_seconds;
        t.interval = record.interval;
        t.corpus = record.corpus;
        Ok(t)
    }

    /// One optimizer step on step `self.step()`'s batch; returns its training cross-entropy.
    pub fn train_step(&mut self, train: &[usize]) -> f64 {
        let c = self.config;
        let (ce, mut grads) = self.step_gradient(train);
        if c.grad_clip > 0.0 {
            clip_grad_norm(&mut grads, c.grad_clip);
        }
        c.schedule().apply(&mut self.opt);
        self.opt.step(&mut self.model.store, &grads);
        ce
    }

    /// The mean training cross-entropy of step `self.step()`'s batch and the gradient of its
    /// objective: the mean over [`TrainConfig::accumulate`] micro-batches ([`nn::Accumulate`]),
    /// each the consecutive `batch_size / accumulate` windows of the batch in order.
    fn step_gradient(&mut self, train: &[usize]) -> (f64, ParamGrads<f32>) {
        let c = self.config;
        let step = self.step();
        let window = self.model.config.window();
        let starts = batch_starts(train.len(), window, c.batch_size, c.seed, step);
        let windows = gather_windows(train, &starts, window);
        let k = c.accumulate.max(1);
        let mut acc = Accumulate::new(k);
        let mut ce_sum = 0.0;
        for (j, part) in windows.chunks(c.micro_batch_size() * window).enumerate() {
            let (ce, grads) = self.micro_batch_gradient(train.len(), part, step, j);
            ce_sum += ce;
            if let Some(mean) = acc.add(&grads) {
                return (ce_sum / k as f64, mean);
            }
        }
        unreachable!("the batch is cut into accumulate = {k} micro-batches (validated)")
    }

    /// Micro-batch `j`'s mean cross-entropy and the gradient of its objective; `windows` holds
    /// its windows, concatenated. Its dropout is seeded from `(seed, step, j)`, as micro-batch
    /// 0's (the whole batch's, without accumulation) always was.
    fn micro_batch_gradient(
        &mut self,
        train_len: usize,
        windows: &[usize],
        step: u64,
        j: usize,
    ) -> (f64, ParamGrads<f32>) {
        let c = self.config;
        let window = self.model.config.window();
        let micro = windows.len() / window;
        let stream = 2 + ((j as u64) << 32);
        if let Some(ddp) = &mut self.ddp {
            // One shard per rank, seeded as DataParallel seeds it: W ranks compute what W
            // shards in one process do, bit for bit.
            let (rank, world) = (ddp.comm().rank(), ddp.comm().world_size());
            let rows = micro * rank / world..micro * (rank + 1) / world;
            let weight = rows.len() as f64 / micro as f64;
            let seed = step_rng(c.seed, step, stream).next_u64().wrapping_add((rank as u64) << 32);
            let model = &self.model;
            let (ce, grads) = ddp.value_and_grad(&model.store, seed, |p| {
                p.tape().mixed_precision(c.precision);
                model.loss(p, &windows[rows.start * window..rows.end * window], train_len).0 * weight
            });
            (f64::from(ce), grads)
        } else if let Some(shards) = &self.shards {
            // The GPT's objective is its mean cross-entropy: each shard's windows, weighted by
            // their share of the micro-batch. Each shard's dropout is seeded from the step's seed.
            let model = &self.model;
            let seed = step_rng(c.seed, step, stream).next_u64();
            let (ce, grads) = shards.value_and_grad(&model.store, seed, |p, shard| {
                let (rows, weight) = shards.split(micro, shard);
                p.tape().mixed_precision(c.precision);
                model.loss(p, &windows[rows.start * window..rows.end * window], train_len).0 * weight
            });
            (f64::from(ce), grads)
        } else {
            self.tape.reset();
            self.tape.with_rng(|r| *r = step_rng(c.seed, step, stream));
            self.tape.mixed_precision(c.precision);
            let out = {
                let p = self.model.store.bind(&self.tape);
                let (objective, ce) = self.model.loss(&p, windows, train_len);
                let ce = f64::from(ce.item());
                (ce, p.backward(objective))
            };
            self.tape.reset(); // drop the tape's references to the parameters: the update is in place
            out
        }
    }

    /// Under `mpirun` with a time limit, every rank takes rank 0's training seconds, so that
    /// all of them stop after the same step: a rank whose own clock stopped it alone would wait
    /// in the final save while the others waited in the next step's all-reduce. One broadcast
    /// of one number a step, and none without a limit.
    fn share_clock(&mut self) {
        if let (Some(ddp), Some(_)) = (&self.ddp, self.config.time_limit) {
            let mut seconds = vec![self.train_seconds];
            ddp.comm().broadcast(Buffer::of(&mut seconds));
            self.train_seconds = seconds[0];
        }
    }

    /// Whether the run's training seconds have reached its [`TrainConfig::time_limit`].
    pub fn out_of_time(&self) -> bool {
        self.config.time_limit.is_some_and(|limit| self.train_seconds >= limit)
    }

    /// Trains until step `until` (default: the configured total), validating every
    /// `eval_every` steps and at the end, and saving to [`Trainer::save`] every so often and at
    /// the end. With a [`TrainConfig::time_limit`], the run also ends after the first step that
    /// brings [`Trainer::train_seconds`] to it (a limit of 0 takes exactly one step): that
    /// step is validated and saved as the last one of the run is. Reports progress to
    /// `observe`.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration or a training text shorter than one
    /// window; saving errors.
    pub fn run(&mut self, corpus: &Corpus, until: Option<u64>, observe: &mut dyn FnMut(Event)) -> Result<(), Error> {
        self.config.validate(&self.model.config, self.model.vocab.len())?;
        match &self.corpus {
            Some(id) if id.sha256 != corpus.id.sha256 => {
                return Err(Error::Config(format!(
                    "this run trains on {} ({} characters, sha256 {}), not on {} ({} characters, sha256 {}): \
                     a run continues on its own corpus",
                    id.path.display(),
                    id.chars,
                    &id.sha256[..12.min(id.sha256.len())],
                    corpus.id.path.display(),
                    corpus.id.chars,
                    &corpus.id.sha256[..12]
                )))
            }
            Some(_) => {}
            None => self.corpus = Some(corpus.id.clone()),
        }
        let window = self.model.config.window();
        if corpus.train.len() < window || corpus.val.len() < window {
            return Err(Error::Config(format!("the training and validation texts need at least {window} characters")));
        }
        let until = until.unwrap_or(self.config.steps).min(self.config.steps);
        let tokens_per_step = (self.config.batch_size * self.model.config.targets_per_window()) as f64;
        let mut steps_this_process = 0u64;
        let mut step_seconds = 0.0;
        while self.step() < until {
            let t0 = Instant::now();
            let loss = self.train_step(&corpus.train);
            // A diverged run stops here, before its NaN weights reach a checkpoint.
            nn::check_loss(self.step(), loss)?;
            let dt = t0.elapsed().as_secs_f64();
            step_seconds += dt;
            self.train_seconds += dt;
            self.share_clock();
            steps_this_process += 1;
            self.interval = (self.interval.0 + loss, self.interval.1 + 1);
            let step = self.step();
            let tokens_per_second = tokens_per_step * steps_this_process as f64 / step_seconds.max(1e-9);
            observe(Event::Step { step, loss, tokens_per_second });
            let out_of_time = self.out_of_time();
            if step.is_multiple_of(self.config.eval_every) || step == self.config.steps || out_of_time {
                self.validate(corpus, observe);
            }
            if out_of_time {
                break; // saved below, as at the end of the run
            }
            if let Some(path) = &self.save {
                let every = self.config.save_every;
                if every > 0 && step.is_multiple_of(every) && step < until {
                    self.save_checkpoint(path)?;
                    observe(Event::Saved { step });
                }
            }
        }
        if let Some(path) = &self.save {
            self.save_checkpoint(path)?;
            observe(Event::Saved { step: self.step() });
        }
        Ok(())
    }

    /// [`Trainer::save_to`], by rank 0 alone in a run across processes.
    fn save_checkpoint(&self, path: &Path) -> Result<(), Error> {
        match &self.ddp {
            Some(ddp) => {
                if ddp.comm().rank() == 0 {
                    crate::create_parent_dir(path)?;
                }
                Ok(ddp.save_on_rank_0(|| self.checkpoint(), path)?)
            }
            None => self.save_to(path),
        }
    }

    fn validate(&mut self, corpus: &Corpus, observe: &mut dyn FnMut(Event)) {
        let step = self.step();
        if self.interval.1 > 0 {
            self.history.train.push((step, self.interval.0 / self.interval.1 as f64));
            self.interval = (0.0, 0);
        }
        let windows = Some(self.config.eval_windows).filter(|&w| w > 0);
        let loss = self.model.evaluate(&corpus.val, windows);
        self.history.val.push((step, loss));
        observe(Event::Validation { step, loss });
    }
}

/// Bits per character from nats per character.
pub fn bits(nats: f64) -> f64 {
    nats / std::f64::consts::LN_2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::char_lm::bigram::CountBigram;
    use crate::char_lm::gpt::GptConfig;
    use crate::char_lm::mlp::MlpConfig;
    use crate::char_lm::vocab::Vocab;

    #[test]
    fn trained_bigram_matches_the_count_based_cross_entropy() {
        let corpus = Corpus::shakespeare(true).expect("the corpus is in the repository");
        let config = ModelConfig::Bigram(Default::default());
        let model = CharLm::new(corpus.vocab.clone(), config, 0).expect("valid");
        let mut trainer = Trainer::new(model, TrainConfig::for_model(&config));
        trainer.run(&corpus, None, &mut |_| {}).expect("trains");
        let learned = trainer.model.evaluate(&corpus.val, None);
        let exact = CountBigram::fit(&corpus.train, corpus.vocab.len(), 1.0).cross_entropy(&corpus.val);
        eprintln!("bigram: learned {learned:.4}, count-based {exact:.4} nats/char");
        assert!((learned - exact).abs() < 0.01, "learned {learned:.4}, count-based {exact:.4}");
    }

    fn tiny_corpus() -> Corpus {
        let text = "to be, or not to be: that is the question.\n".repeat(12);
        Corpus::new(&text, Path::new("<tiny>"), false, None).expect("plain ASCII")
    }

    #[test]
    fn models_overfit_a_tiny_corpus() {
        let corpus = tiny_corpus();
        let gpt = GptConfig { block_size: 16, n_embd: 32, n_head: 2, n_layer: 2, dropout: 0.0 };
        let mlp = MlpConfig { context: 6, n_embd: 8, hidden: 64 };
        for (config, steps, lr) in [(ModelConfig::Gpt(gpt), 300, 3e-3), (ModelConfig::Mlp(mlp), 400, 1e-2)] {
            let model = CharLm::new(corpus.vocab.clone(), config, 0).expect("valid");
            let tc = TrainConfig {
                steps,
                batch_size: 16,
                learning_rate: lr,
                warmup_steps: 0,
                weight_decay: 0.0,
                eval_windows: 0,
                ..TrainConfig::for_model(&config)
            };
            let mut trainer = Trainer::new(model, tc);
            trainer.run(&corpus, None, &mut |_| {}).expect("trains");
            // One sentence repeated: after the first few characters everything is determined.
            let train = trainer.model.evaluate(&corpus.train, None);
            assert!(train < 0.15, "{}: training loss {train:.3} nats/char", config.kind());
        }
    }

    /// A GPT step in three shards (of 4, 4 and 3 windows) moves the weights as the step on one
    /// tape does, up to the rounding of the sums' order.
    #[test]
    fn a_sharded_gpt_step_matches_the_one_tape_step() {
        let corpus = tiny_corpus();
        let config = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.0 });
        let trainer = |shards| {
            let tc = TrainConfig { batch_size: 11, warmup_steps: 0, shards, ..TrainConfig::for_model(&config) };
            Trainer::new(CharLm::new(corpus.vocab.clone(), config, 5).expect("valid"), tc)
        };
        let (mut one, mut three) = (trainer(1), trainer(3));
        let (a, b) = (one.train_step(&corpus.train), three.train_step(&corpus.train));
        assert!((a - b).abs() < 1e-5, "losses {a} and {b}");
        let mut moved = 0;
        for ((id, name, w1), (_, _, w3)) in one.model.store.iter().zip(three.model.store.iter()) {
            let before = CharLm::new(corpus.vocab.clone(), config, 5).expect("valid").store.get(id).clone();
            for ((x, y), z) in w1.data().iter().zip(w3.data()).zip(before.data()) {
                assert!((x - y).abs() < 1e-5, "{name}: {x} against {y}");
                moved += usize::from(x != z);
            }
        }
        assert!(moved > 1000, "the step moved {moved} weights");
    }

    #[test]
    fn the_checkpoint_keeps_the_shards_the_run_used() {
        let corpus = tiny_corpus();
        let gpt = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.1 });
        let tc = TrainConfig { shards: 0, ..TrainConfig::for_model(&gpt) };
        let t = Trainer::new(CharLm::new(corpus.vocab.clone(), gpt, 1).expect("valid"), tc);
        // 0 resolves to one per core, at most one per window, and is saved as resolved.
        let resolved = rayon::current_num_threads().min(tc.batch_size).max(1);
        assert_eq!(t.config.shards, resolved);
        let meta = t.checkpoint().metadata;
        let record: RunRecord = config::from_json(&meta, config::TRAIN_KEY).expect("present").expect("ours");
        assert_eq!(record.config.shards, resolved);
        // The other models always run on one tape.
        let mlp = ModelConfig::Mlp(MlpConfig { context: 3, n_embd: 4, hidden: 8 });
        let t = Trainer::new(CharLm::new(corpus.vocab.clone(), mlp, 1).expect("valid"), TrainConfig::for_model(&mlp));
        assert_eq!(t.config.shards, 1);
    }

    #[test]
    fn more_shards_than_the_bound_are_refused_without_starting_their_threads() {
        let corpus = tiny_corpus();
        let gpt = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.0 });
        let tc = TrainConfig { batch_size: 5000, shards: 4096, ..TrainConfig::for_model(&gpt) };
        let mut t = Trainer::new(CharLm::new(corpus.vocab.clone(), gpt, 1).expect("valid"), tc);
        assert!(t.shards.is_none(), "no thread was started for 4096 shards");
        match t.run(&corpus, None, &mut |_| {}) {
            Err(Error::Config(msg)) => assert!(msg.contains("shards = 4096 is above the limit 256"), "{msg}"),
            other => panic!("expected a configuration error, got {other:?}"),
        }
        assert_eq!(t.step(), 0, "nothing was trained");
    }

    #[test]
    fn more_shards_than_windows_are_refused() {
        let corpus = tiny_corpus();
        let gpt = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.0 });
        let tc = TrainConfig { batch_size: 4, shards: 5, ..TrainConfig::for_model(&gpt) };
        let mut t = Trainer::new(CharLm::new(corpus.vocab.clone(), gpt, 1).expect("valid"), tc);
        match t.run(&corpus, None, &mut |_| {}) {
            Err(Error::Config(msg)) => assert!(msg.contains("5 shards for a batch of 4 windows"), "{msg}"),
            other => panic!("expected a configuration error, got {other:?}"),
        }
        assert_eq!(t.step(), 0, "nothing was trained");
    }

    #[test]
    fn checkpointed_blocks_train_to_the_same_weights_to_the_bit() {
        let corpus = tiny_corpus();
        let config = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 2, dropout: 0.1 });
        let run = |checkpoint_blocks: bool| {
            let tc = TrainConfig { steps: 6, eval_every: 3, checkpoint_blocks, ..TrainConfig::for_model(&config) };
            let mut t = Trainer::new(CharLm::new(corpus.vocab.clone(), config, 4).expect("valid"), tc);
            t.run(&corpus, None, &mut |_| {}).expect("trains");
            t
        };
        let (plain, checkpointed) = (run(false), run(true));
        assert!(matches!(&checkpointed.model.net, Net::Gpt(g) if g.checkpoint_blocks), "the flag reached the model");
        for ((_, name, a), (_, _, b)) in plain.model.store.iter().zip(checkpointed.model.store.iter()) {
            let bits = |t: &autograd::Tensor<f32>| t.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b), "{name} differs with checkpointed blocks");
        }
        assert_eq!(plain.history, checkpointed.history);
    }

    #[test]
    fn a_training_configuration_without_checkpoint_blocks_reads_it_as_off() {
        let config = ModelConfig::Gpt(GptConfig::default());
        let on = TrainConfig { checkpoint_blocks: true, ..TrainConfig::for_model(&config) };
        let json = crate::config::to_json(&on);
        let old = json.replace(",\"checkpoint_blocks\":true", "");
        assert_ne!(old, json, "the field was removed");
        let back: TrainConfig = serde_json::from_str(&old).expect("an older configuration parses");
        assert_eq!(back, TrainConfig { checkpoint_blocks: false, ..on });
    }

    #[test]
    fn an_interrupted_run_resumes_to_the_same_result() {
        let corpus = tiny_corpus();
        let config = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.1 });
        let tc = TrainConfig { steps: 20, eval_every: 5, warmup_steps: 3, ..TrainConfig::for_model(&config) };
        let fresh = || Trainer::new(CharLm::new(corpus.vocab.clone(), config, 7).expect("valid"), tc);

        let mut whole = fresh();
        whole.run(&corpus, None, &mut |_| {}).expect("trains");

        let mut resumed = interrupted(fresh(), &corpus, 12, 5);
        assert_eq!(resumed.step(), 12);
        resumed.run(&corpus, None, &mut |_| {}).expect("trains");

        assert_eq!(resumed.step(), whole.step());
        for ((_, name, a), (_, _, b)) in whole.model.store.iter().zip(resumed.model.store.iter()) {
            assert_eq!(a, b, "{name} differs after resuming");
        }
        assert_eq!(resumed.history, whole.history);
        assert_eq!(resumed.opt.state(&resumed.model.store), whole.opt.state(&whole.model.store));
    }

    /// `trainer` run to step `stop`, saving every `save_every` steps and at the end (the run
    /// "interrupted" there), and a trainer resumed from that checkpoint.
    fn interrupted(mut trainer: Trainer, corpus: &Corpus, stop: u64, save_every: u64) -> Trainer {
        let dir = tempfile_dir();
        let path = dir.join("run.ckpt");
        trainer.save = Some(path.clone());
        trainer.config.save_every = save_every;
        trainer.run(corpus, Some(stop), &mut |_| {}).expect("trains");
        drop(trainer);
        let resumed = Trainer::resume(&path).expect("just saved");
        let _ = std::fs::remove_dir_all(dir);
        resumed
    }

    /// A GPT without dropout and a trainer of `accumulate` micro-batches over a batch of 8
    /// windows, on one tape.
    fn accumulating(corpus: &Corpus, accumulate: usize, precision: Precision) -> Trainer {
        let config = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 2, dropout: 0.0 });
        let tc = TrainConfig {
            steps: 10,
            batch_size: 8,
            warmup_steps: 0,
            shards: 1,
            accumulate,
            precision,
            ..TrainConfig::for_model(&config)
        };
        Trainer::new(CharLm::new(corpus.vocab.clone(), config, 3).expect("valid"), tc)
    }

    /// Two micro-batches of 4 windows give the gradient and, after 3 steps, the weights of the
    /// batch of 8 on one tape. The same windows are summed in another order (two means of 4,
    /// halved, against one mean of 8), so the values agree to f32 rounding: a gradient entry
    /// is a sum of 8·8 = 64 position terms and differs by a few ulps of the largest of them
    /// (measured: 1.6e-7 of the largest entry; the bound is 1e-5 of it). Adam's update divides
    /// m̂ by √v̂, both moved by the same relative rounding, so a weight's step of at most about
    /// lr = 2e-3 moves by a few 1e-7 more or less, and after 3 steps the weights agree to
    /// 1e-5 (measured: 7.3e-7; a weight whose gradient is rounding noise around 0 could move
    /// by up to 2·lr, and none does here). Summing the micro-batches' gradients without
    /// dividing by K fails the gradient check (seen).
    #[test]
    fn two_micro_batches_of_four_match_one_batch_of_eight() {
        let corpus = tiny_corpus();
        let (mut whole, mut halves) =
            (accumulating(&corpus, 1, Precision::F32), accumulating(&corpus, 2, Precision::F32));
        let (ce1, g1) = whole.step_gradient(&corpus.train);
        let (ce2, g2) = halves.step_gradient(&corpus.train);
        assert!((ce1 - ce2).abs() < 1e-6, "losses {ce1} and {ce2}");
        let largest = g1.iter().flat_map(|(_, g)| g.data().to_vec()).fold(0f32, |m, x| m.max(x.abs()));
        assert!(largest > 1e-3, "a gradient worth comparing: largest entry {largest}");
        let mut compared = 0;
        for (id, a) in g1.iter() {
            let b = g2.get(id).expect("every parameter has a gradient");
            for (x, y) in a.data().iter().zip(b.data()) {
                assert!((x - y).abs() <= 1e-5 * largest, "{}: {x} against {y}", whole.model.store.name(id));
                compared += 1;
            }
        }
        assert_eq!(compared, whole.model.store.num_params());
        for _ in 0..3 {
            whole.train_step(&corpus.train);
            halves.train_step(&corpus.train);
        }
        let initial = accumulating(&corpus, 1, Precision::F32);
        let mut moved = 0;
        for (((_, name, a), (_, _, b)), (_, _, w0)) in
            whole.model.store.iter().zip(halves.model.store.iter()).zip(initial.model.store.iter())
        {
            for ((x, y), z) in a.data().iter().zip(b.data()).zip(w0.data()) {
                assert!((x - y).abs() <= 1e-5, "{name}: {x} against {y} after 3 steps");
                moved += usize::from((x - z).abs() > 1e-3);
            }
        }
        assert!(moved > 1000, "3 steps moved {moved} weights by more than 1e-3");
    }

    #[test]
    fn accumulation_that_does_not_divide_the_batch_is_refused() {
        let corpus = tiny_corpus();
        let mut t = accumulating(&corpus, 3, Precision::F32);
        match t.run(&corpus, None, &mut |_| {}) {
            Err(Error::Config(msg)) => {
                assert!(msg.contains("accumulate = 3 does not divide --batch-size 8"), "{msg}")
            }
            other => panic!("expected a configuration error, got {other:?}"),
        }
        assert_eq!(t.step(), 0, "nothing was trained");
        let mut sharded = accumulating(&corpus, 4, Precision::F32);
        sharded.config.shards = 3;
        let e = sharded.config.validate(&sharded.model.config, corpus.vocab.len()).unwrap_err().to_string();
        assert!(e.contains("3 shards for a micro-batch of 2 windows"), "{e}");
    }

    /// Accumulating over sharded micro-batches with dropout, in bf16 products: stopped after
    /// step 4 and resumed, the run ends on the bits of the uninterrupted one.
    #[test]
    fn an_interrupted_accumulating_run_resumes_to_the_same_bits() {
        let corpus = tiny_corpus();
        let config = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.1 });
        let tc = TrainConfig {
            steps: 8,
            batch_size: 8,
            eval_every: 4,
            warmup_steps: 2,
            shards: 2,
            accumulate: 2,
            precision: Precision::Bf16,
            ..TrainConfig::for_model(&config)
        };
        let fresh = || Trainer::new(CharLm::new(corpus.vocab.clone(), config, 7).expect("valid"), tc);
        let mut whole = fresh();
        whole.run(&corpus, None, &mut |_| {}).expect("trains");

        let mut resumed = interrupted(fresh(), &corpus, 4, tc.save_every);
        assert_eq!((resumed.step(), resumed.config.accumulate, resumed.config.shards), (4, 2, 2));
        resumed.run(&corpus, None, &mut |_| {}).expect("trains");
        for ((_, name, a), (_, _, b)) in whole.model.store.iter().zip(resumed.model.store.iter()) {
            let bits = |t: &autograd::Tensor<f32>| t.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b), "{name} differs after resuming");
        }
        assert_eq!(resumed.history, whole.history);
        // Dropout draws differ per micro-batch: the run is not the one without accumulation.
        let mut unaccumulated = Trainer::new(
            CharLm::new(corpus.vocab.clone(), config, 7).expect("valid"),
            TrainConfig { accumulate: 1, ..tc },
        );
        unaccumulated.run(&corpus, None, &mut |_| {}).expect("trains");
        assert_ne!(unaccumulated.history, whole.history);
    }

    #[test]
    fn a_training_configuration_without_accumulate_or_time_limit_reads_one_and_none() {
        let config = ModelConfig::Gpt(GptConfig::default());
        let set = TrainConfig { accumulate: 4, time_limit: Some(60.0), ..TrainConfig::for_model(&config) };
        let json = crate::config::to_json(&set);
        let old = json.replace(",\"accumulate\":4", "").replace(",\"time_limit\":60.0", "");
        assert!(!old.contains("accumulate") && !old.contains("time_limit"), "{old}");
        let back: TrainConfig = serde_json::from_str(&old).expect("an older configuration parses");
        assert_eq!(back, TrainConfig { accumulate: 1, time_limit: None, ..set });
    }

    /// A time limit of 0 s is reached by the first step, whatever the machine's speed: the run
    /// takes that one step, validates it and saves it as the end of the run.
    #[test]
    fn a_time_limit_of_zero_takes_one_step_then_validates_and_saves() {
        let corpus = tiny_corpus();
        let mut t = accumulating(&corpus, 2, Precision::F32);
        t.config.time_limit = Some(0.0);
        let dir = tempfile_dir();
        let path = dir.join("run.ckpt");
        t.save = Some(path.clone());
        let mut events = Vec::new();
        t.run(&corpus, None, &mut |e| events.push(e)).expect("trains");
        assert_eq!(t.step(), 1);
        assert!(t.out_of_time());
        assert!(matches!(events[1], Event::Validation { step: 1, .. }), "{events:?}");
        assert!(matches!(events[2], Event::Saved { step: 1 }), "{events:?}");
        assert_eq!(events.len(), 3, "{events:?}");
        let resumed = Trainer::resume(&path).expect("saved");
        assert_eq!((resumed.step(), resumed.config.time_limit), (1, Some(0.0)));
        assert_eq!(resumed.history.val.len(), 1);
        let mut bad = accumulating(&corpus, 1, Precision::F32);
        bad.config.time_limit = Some(f64::NAN);
        let e = bad.config.validate(&bad.model.config, corpus.vocab.len()).unwrap_err().to_string();
        assert!(e.starts_with("time_limit = NaN must be"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_diverging_run_stops_with_an_error_and_never_saves_non_finite_weights() {
        let corpus = tiny_corpus();
        let config = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.0 });
        let tc = TrainConfig { steps: 30, eval_every: 5, warmup_steps: 0, ..TrainConfig::for_model(&config) };
        let dir = tempfile_dir();
        let path = dir.join("run.ckpt");
        let mut good = Trainer::new(CharLm::new(corpus.vocab.clone(), config, 7).expect("valid"), tc);
        good.save = Some(path.clone());
        good.config.save_every = 5;
        good.run(&corpus, Some(5), &mut |_| {}).expect("trains");

        let mut wild = Trainer::resume(&path).expect("resumes");
        wild.config.learning_rate = 1e30; // Adam moves every weight by about lr: they overflow
        wild.save = Some(path.clone());
        wild.config.save_every = 1; // a save after every step
        let diverged = match wild.run(&corpus, None, &mut |_| {}) {
            Err(Error::Checkpoint(nn::Error::Diverged { step, loss })) => {
                assert!(step > 5 && !loss.is_finite(), "step {step}, loss {loss}");
                step
            }
            other => panic!("expected the run to stop as diverged, got {other:?}"),
        };
        // The file holds the last checkpoint saved before the divergence, every value finite.
        let saved = Checkpoint::load(&path).expect("the file is whole");
        assert!(saved.step < diverged, "saved at step {} of a run that diverged at {diverged}", saved.step);
        for (name, t) in &saved.tensors {
            assert_eq!(t.non_finite_count(), 0, "{name} holds non-finite values");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_checkpoint_of_another_model_is_rejected() {
        let dir = tempfile_dir();
        let path = dir.join("other.ckpt");
        Checkpoint::default().with_metadata("model", "attractor").save(&path).expect("writable");
        assert!(matches!(CharLm::load(&path), Err(Error::NotAModel { .. })));
        let v = Vocab::from_text("ab", false);
        let m = CharLm::new(v, ModelConfig::Bigram(Default::default()), 0).expect("valid");
        m.checkpoint().save(&path).expect("writable");
        assert_eq!(CharLm::load(&path).expect("ours").vocab, m.vocab);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pente-char-lm-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
