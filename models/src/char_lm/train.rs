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
use std::time::Instant;

use autograd::Tape;
use nn::{clip_grad_norm, AdamConfig, AdamW, Checkpoint, DataParallel, Decay, DecayOn, LrSchedule, Optimizer};
use rand::RngCore as _;

use super::data::{batch_starts, gather_windows, step_rng, Corpus};
use super::model::{CharLm, ModelConfig};
use crate::Error;

/// How to train.
#[derive(Clone, Copy, Debug, PartialEq)]
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
        };
        match config {
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
        }
    }

    fn problem(&self) -> Option<String> {
        if self.batch_size == 0 || self.eval_every == 0 {
            return Some("batch size and eval interval must be positive".into());
        }
        if self.shards > self.batch_size {
            return Some(format!(
                "{} shards for a batch of {} windows: at most one per window",
                self.shards, self.batch_size
            ));
        }
        let finite = [self.learning_rate, self.min_lr_fraction, self.weight_decay, self.grad_clip];
        if finite.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || self.learning_rate == 0.0 {
            return Some(format!("rates, decay and clipping must be finite and non-negative: {self:?}"));
        }
        None
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> LrSchedule {
        LrSchedule {
            base_lr: self.learning_rate,
            warmup_steps: self.warmup_steps,
            decay: Decay::Cosine { total_steps: self.steps, min_lr: self.learning_rate * self.min_lr_fraction },
        }
    }

    fn to_metadata(self) -> Vec<(&'static str, String)> {
        vec![
            ("train.steps", self.steps.to_string()),
            ("train.batch_size", self.batch_size.to_string()),
            ("train.learning_rate", self.learning_rate.to_string()),
            ("train.min_lr_fraction", self.min_lr_fraction.to_string()),
            ("train.warmup_steps", self.warmup_steps.to_string()),
            ("train.weight_decay", self.weight_decay.to_string()),
            ("train.grad_clip", self.grad_clip.to_string()),
            ("train.eval_every", self.eval_every.to_string()),
            ("train.eval_windows", self.eval_windows.to_string()),
            ("train.seed", self.seed.to_string()),
            ("train.shards", self.shards.to_string()),
        ]
    }

    fn from_metadata(meta: &std::collections::BTreeMap<String, String>) -> Result<Self, String> {
        fn get<T: std::str::FromStr>(meta: &std::collections::BTreeMap<String, String>, k: &str) -> Result<T, String> {
            meta.get(k).and_then(|v| v.parse().ok()).ok_or_else(|| format!("no readable `{k}` in its metadata"))
        }
        Ok(TrainConfig {
            steps: get(meta, "train.steps")?,
            batch_size: get(meta, "train.batch_size")?,
            learning_rate: get(meta, "train.learning_rate")?,
            min_lr_fraction: get(meta, "train.min_lr_fraction")?,
            warmup_steps: get(meta, "train.warmup_steps")?,
            weight_decay: get(meta, "train.weight_decay")?,
            grad_clip: get(meta, "train.grad_clip")?,
            eval_every: get(meta, "train.eval_every")?,
            eval_windows: get(meta, "train.eval_windows")?,
            seed: get(meta, "train.seed")?,
            // Checkpoints from before data parallelism trained on one tape.
            shards: if meta.contains_key("train.shards") { get(meta, "train.shards")? } else { 1 },
        })
    }
}

/// The losses of a run, for the figures: `(step, nats per character)` pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Mean training cross-entropy of each interval between validations, at its last step.
    pub train: Vec<(u64, f64)>,
    /// Validation loss at each validation.
    pub val: Vec<(u64, f64)>,
}

fn points_to_string(points: &[(u64, f64)]) -> String {
    points.iter().map(|(s, l)| format!("{s}:{l:?}")).collect::<Vec<_>>().join(";")
}

fn points_from_string(s: &str) -> Option<Vec<(u64, f64)>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(';')
        .map(|p| {
            let (a, b) = p.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
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
    /// Where to save checkpoints, and every how many steps (also at the end of [`Trainer::run`]).
    pub save: Option<(PathBuf, u64)>,
    tape: Tape<f32>,
    /// The GPT's shards ([`TrainConfig::shards`]); `None` on one tape.
    shards: Option<DataParallel>,
    interval: (f64, u64),
}

impl Trainer {
    /// A trainer at step 0.
    pub fn new(model: CharLm, config: TrainConfig) -> Self {
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
            config.shards = DataParallel::per_thread_count(config.batch_size);
        }
        // More shards than windows is refused by `run` (no threads started for it here).
        let shards =
            (config.shards > 1 && config.shards <= config.batch_size).then(|| DataParallel::new(config.shards));
        Trainer {
            model,
            config,
            opt,
            history: History::default(),
            train_seconds: 0.0,
            save: None,
            tape: Tape::new(),
            shards,
            interval: (0.0, 0),
        }
    }

    /// Steps taken.
    pub fn step(&self) -> u64 {
        self.opt.steps()
    }

    /// The checkpoint: model, optimizer state, step, training configuration and history.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut ckpt = self.model.checkpoint().with_optimizer(&self.opt, &self.model.store).with_step(self.step());
        for (k, v) in self.config.to_metadata() {
            ckpt = ckpt.with_metadata(k, v);
        }
        ckpt.with_metadata("history.train", points_to_string(&self.history.train))
            .with_metadata("history.val", points_to_string(&self.history.val))
            .with_metadata("train_seconds", format!("{:?}", self.train_seconds))
            .with_metadata("interval", format!("{:?}:{}", self.interval.0, self.interval.1))
    }

    /// Writes [`Trainer::checkpoint`] to `path` (crash-safely).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Checkpoint`] if it cannot be written.
    pub fn save_to(&self, path: &Path) -> Result<(), Error> {
        crate::create_parent_dir(path)?;
        Ok(self.checkpoint().save(path)?)
    }

    /// Restores a trainer from a checkpoint written by [`Trainer::save_to`], to continue its run.
    ///
    /// # Errors
    /// As [`CharLm::load`], and [`Error::NotAModel`] if the training state is missing.
    pub fn resume(path: &Path) -> Result<Self, Error> {
        let ckpt = Checkpoint::load(path)?;
        let model = CharLm::from_checkpoint(&ckpt, path)?;
        let not_ours = |reason: String| Error::NotAModel { path: path.to_path_buf(), expected: "char-lm", reason };
        let meta = &ckpt.metadata;
        let config = TrainConfig::from_metadata(meta).map_err(not_ours)?;
        let mut t = Trainer::new(model, config);
        ckpt.restore_optimizer(&mut t.opt, &t.model.store)?;
        let points = |k: &str| {
            meta.get(k).and_then(|s| points_from_string(s)).ok_or_else(|| not_ours(format!("unreadable `{k}`")))
        };
        t.history = History { train: points("history.train")?, val: points("history.val")? };
        t.train_seconds = meta.get("train_seconds").and_then(|s| s.parse().ok()).unwrap_or(0.0);
        t.interval = meta
            .get("interval")
            .and_then(|s| s.split_once(':'))
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .unwrap_or((0.0, 0));
        Ok(t)
    }

    /// One optimizer step on step `self.step()`'s batch; returns its training cross-entropy.
    pub fn train_step(&mut self, train: &[usize]) -> f64 {
        let c = self.config;
        let step = self.step();
        let window = self.model.config.window();
        let starts = batch_starts(train.len(), window, c.batch_size, c.seed, step);
        let windows = gather_windows(train, &starts, window);
        let (ce, mut grads) = if let Some(shards) = &self.shards {
            // The GPT's objective is its mean cross-entropy: each shard's windows, weighted by
            // their share of the batch. Each shard's dropout is seeded from the step's seed.
            let model = &self.model;
            let seed = step_rng(c.seed, step, 2).next_u64();
            let (ce, grads) = shards.value_and_grad(&model.store, seed, |p, shard| {
                let (rows, weight) = shards.split(c.batch_size, shard);
                model.loss(p, &windows[rows.start * window..rows.end * window], train.len()).0 * weight
            });
            (f64::from(ce), grads)
        } else {
            self.tape.reset();
            self.tape.with_rng(|r| *r = step_rng(c.seed, step, 2));
            let out = {
                let p = self.model.store.bind(&self.tape);
                let (objective, ce) = self.model.loss(&p, &windows, train.len());
                let ce = f64::from(ce.item());
                (ce, p.backward(objective))
            };
            self.tape.reset(); // drop the tape's references to the parameters: the update is in place
            out
        };
        if c.grad_clip > 0.0 {
            clip_grad_norm(&mut grads, c.grad_clip);
        }
        c.schedule().apply(&mut self.opt);
        self.opt.step(&mut self.model.store, &grads);
        ce
    }

    /// Trains until step `until` (default: the configured total), validating every
    /// `eval_every` steps and at the end, and saving to [`Trainer::save`] every so often and at
    /// the end. Reports progress to `observe`.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration or a training text shorter than one
    /// window; saving errors.
    pub fn run(&mut self, corpus: &Corpus, until: Option<u64>, observe: &mut dyn FnMut(Event)) -> Result<(), Error> {
        if let Some(p) = self.config.problem() {
            return Err(Error::Config(p));
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
            steps_this_process += 1;
            self.interval = (self.interval.0 + loss, self.interval.1 + 1);
            let step = self.step();
            let tokens_per_second = tokens_per_step * steps_this_process as f64 / step_seconds.max(1e-9);
            observe(Event::Step { step, loss, tokens_per_second });
            if step.is_multiple_of(self.config.eval_every) || step == self.config.steps {
                self.validate(corpus, observe);
            }
            if let Some((path, every)) = &self.save {
                if *every > 0 && step.is_multiple_of(*every) && step < until {
                    self.save_to(path)?;
                    observe(Event::Saved { step });
                }
            }
        }
        if let Some((path, _)) = &self.save {
            self.save_to(path)?;
            observe(Event::Saved { step: self.step() });
        }
        Ok(())
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
        assert_eq!(TrainConfig::from_metadata(&meta).expect("ours").shards, resolved);
        // A checkpoint from before data parallelism trained on one tape, and resumes so.
        let mut old = meta.clone();
        old.remove("train.shards");
        assert_eq!(TrainConfig::from_metadata(&old).expect("still ours").shards, 1);
        // The other models always run on one tape.
        let mlp = ModelConfig::Mlp(MlpConfig { context: 3, n_embd: 4, hidden: 8 });
        let t = Trainer::new(CharLm::new(corpus.vocab.clone(), mlp, 1).expect("valid"), TrainConfig::for_model(&mlp));
        assert_eq!(t.config.shards, 1);
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
    fn an_interrupted_run_resumes_to_the_same_result() {
        let corpus = tiny_corpus();
        let config = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.1 });
        let tc = TrainConfig { steps: 20, eval_every: 5, warmup_steps: 3, ..TrainConfig::for_model(&config) };
        let fresh = || Trainer::new(CharLm::new(corpus.vocab.clone(), config, 7).expect("valid"), tc);

        let mut whole = fresh();
        whole.run(&corpus, None, &mut |_| {}).expect("trains");

        let dir = tempfile_dir();
        let path = dir.join("run.ckpt");
        let mut first = fresh();
        first.save = Some((path.clone(), 5));
        first.run(&corpus, Some(12), &mut |_| {}).expect("trains"); // "interrupted" after step 12
        drop(first);
        let mut resumed = Trainer::resume(&path).expect("just saved");
        assert_eq!(resumed.step(), 12);
        resumed.run(&corpus, None, &mut |_| {}).expect("trains");

        assert_eq!(resumed.step(), whole.step());
        for ((_, name, a), (_, _, b)) in whole.model.store.iter().zip(resumed.model.store.iter()) {
            assert_eq!(a, b, "{name} differs after resuming");
        }
        assert_eq!(resumed.history, whole.history);
        assert_eq!(resumed.opt.state(&resumed.model.store), whole.opt.state(&whole.model.store));
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
        good.save = Some((path.clone(), 5));
        good.run(&corpus, Some(5), &mut |_| {}).expect("trains");

        let mut wild = Trainer::resume(&path).expect("resumes");
        wild.config.learning_rate = 1e30; // Adam moves every weight by about lr: they overflow
        wild.save = Some((path.clone(), 1)); // a save after every step
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
