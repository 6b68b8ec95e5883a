//! `pente char-lm train | sample | eval`: the command-line side of the char-lm, and its part of
//! `pente demo`.
//!
//! ```text
//! pente char-lm train --model bigram                       count-based check, OUT/char_lm_bigram.ckpt
//! pente char-lm train --model mlp                          Bengio MLP
//! pente char-lm train --model gpt --block 128 --n-embd 192 --n-head 6 --n-layer 6
//! pente char-lm train --resume OUT/char_lm_gpt.ckpt        continue an interrupted run
//! pente char-lm train --preset best                       the GPT and recipe for 20 minutes of training
//! pente char-lm sample --load OUT/char_lm_gpt.ckpt --prompt "ROMEO:" --temperature 0.8 --top-k 20
//! pente char-lm eval --load OUT/char_lm_gpt.ckpt some.txt  loss and bits per character of a file
//! pente char-lm next --load OUT/char_lm_gpt.ckpt --prompt "ROMEO: I will"  the next characters and words
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use nn::comm::{Communicator, DdpConfig};

use super::bigram::{BigramConfig, CountBigram};
use super::data::{self, Corpus};
use super::figures;
use super::gpt::GptConfig;
use super::mlp::MlpConfig;
use super::model::{CharLm, ModelConfig};
use super::preset;
use super::sample::{self, SampleConfig};
use super::train::{bits, Event, TrainConfig, Trainer};

/// Whether this process prints: not on the ranks other than 0 of a run across processes.
static LOUD: AtomicBool = AtomicBool::new(true);

/// `println!` on the process that reports (every process but ranks 1… of a run across processes).
macro_rules! say {
    ($($t:tt)*) => {
        if LOUD.load(Ordering::Relaxed) {
            println!($($t)*)
        }
    };
}
use crate::config::limits::{MAX_CONTEXT, MAX_LAYERS, MAX_SAMPLE_LEN, MAX_SHARDS, MAX_STEPS, MAX_WIDTH};
use crate::Error;

/// `pente char-lm …`.
#[derive(Args, Debug)]
pub struct CharLmArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CharLmCommand,
}

/// The char-lm subcommands.
#[derive(Subcommand, Debug)]
// Parsed once per run: the size of the largest variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub enum CharLmCommand {
    /// Train (or resume training) a bigram, MLP or GPT on the Shakespeare corpus.
    Train(TrainArgs),
    /// Generate text from a trained model, streaming it as it comes.
    Sample(SampleArgs),
    /// Loss and bits per character of a trained model on any text file.
    Eval(EvalArgs),
    /// The most likely next characters and next words after a prompt, with their
    /// probabilities.
    Next(super::next_cli::NextArgs),
}

/// The three models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A learned table of next-character logits.
    Bigram,
    /// Bengio et al. (2003): embeddings of the last k characters, a tanh layer.
    Mlp,
    /// A decoder-only transformer.
    Gpt,
}

/// `pente char-lm train`. Model flags conflict with `--resume` (the model is the file's);
/// training flags given with `--resume` override the file's values, and each override is
/// printed.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The model to train.
    #[arg(long, value_enum, default_value_t = Kind::Gpt, conflicts_with = "resume")]
    pub model: Kind,
    /// Total optimizer steps of the run; with --resume, extends it (the schedule stretches).
    #[arg(long, help = per_model("Total optimizer steps of the run; with --resume, extends it", |c| c.steps.to_string()),
          value_parser = clap::value_parser!(u64).range(1..=MAX_STEPS))]
    pub steps: Option<u64>,
    /// Windows per batch (bounded by the memory a step needs).
    #[arg(long, help = per_model("Windows per batch (bounded by the memory a step needs)", |c| c.batch_size.to_string()),
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: Option<u64>,
    /// Peak learning rate.
    #[arg(long, help = per_model("Peak learning rate", |c| c.learning_rate.to_string()))]
    pub lr: Option<f64>,
    /// Warm-up steps.
    #[arg(long, help = per_model("Warm-up steps", |c| c.warmup_steps.to_string()),
          value_parser = clap::value_parser!(u64).range(..=MAX_STEPS))]
    pub warmup: Option<u64>,
    /// AdamW weight decay on matrices.
    #[arg(long, help = per_model("AdamW weight decay on matrices", |c| c.weight_decay.to_string()))]
    pub weight_decay: Option<f64>,
    /// Validate every this many steps.
    #[arg(long, help = per_model("Validate every this many steps", |c| c.eval_every.to_string()),
          value_parser = clap::value_parser!(u64).range(1..=MAX_STEPS))]
    pub eval_every: Option<u64>,
    /// GPT: shards of the batch trained side by side, one core and one tape each (1: the whole
    /// batch on one tape, every op split across the cores) [default: one per core].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=MAX_SHARDS as i64))]
    pub shards: Option<u16>,
    /// GPT: recompute each transformer block in backward instead of keeping its activations
    /// (less memory, a longer step, the same gradients); kept in the checkpoint.
    #[arg(long)]
    pub checkpoint_blocks: bool,
    /// The training steps' matrix products: bf16 (operands rounded to bf16, f32 accumulation,
    /// where the CPU has AMX or AVX512-BF16) or f32; the weights stay f32 [default: f32, or the
    /// checkpoint's].
    #[arg(long, value_parser = crate::precision::parse, value_name = "f32|bf16")]
    pub precision: Option<autograd::precision::Precision>,
    /// Where to save the model with its optimizer state [default: OUT/char_lm_MODEL.ckpt].
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Save every this many steps too (0: only at the end); kept in the checkpoint.
    #[arg(long, help = per_model("Save every this many steps too (0: only at the end); kept in the checkpoint", |c| c.save_every.to_string()),
          value_parser = clap::value_parser!(u64).range(..=MAX_STEPS))]
    pub save_every: Option<u64>,
    /// Continue the run saved in FILE (same model, same batches, same corpus: the result equals
    /// an uninterrupted run). Saves back to FILE unless --save is given.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// The text to train on [default: data/shakespeare/shakespeare.txt, or the --resume file's].
    #[arg(long, value_name = "FILE")]
    pub corpus: Option<PathBuf>,
    /// No unknown symbol: characters outside the training text's vocabulary are an error
    /// (otherwise they map to �). The Shakespeare validation text holds one such character.
    #[arg(long, conflicts_with = "resume")]
    pub strict_vocab: bool,
    /// Bigram: add-α smoothing of the counts.
    #[arg(long, default_value_t = BigramConfig::default().smoothing, conflicts_with = "resume")]
    pub smoothing: f64,
    /// MLP: characters of context.
    #[arg(long, default_value_t = MlpConfig::default().context as u64, conflicts_with = "resume",
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONTEXT as u64))]
    pub context: u64,
    /// MLP: hidden units.
    #[arg(long, default_value_t = MlpConfig::default().hidden as u64, conflicts_with = "resume",
          value_parser = clap::value_parser!(u64).range(1..=MAX_WIDTH as u64))]
    pub hidden: u64,
    /// Embedding size.
    #[arg(long, conflicts_with = "resume", value_parser = clap::value_parser!(u64).range(1..=MAX_WIDTH as u64),
          help = format!("Embedding size [default: mlp {}, gpt {}]", MlpConfig::default().n_embd, GptConfig::default().n_embd))]
    pub n_embd: Option<u64>,
    /// GPT: context length.
    #[arg(long, conflicts_with = "resume", value_parser = clap::value_parser!(u64).range(1..=MAX_CONTEXT as u64),
          help = gpt_default("GPT: context length", |g| g.block_size.to_string()))]
    pub block: Option<u64>,
    /// GPT: attention heads.
    #[arg(long, conflicts_with = "resume", value_parser = clap::value_parser!(u64).range(1..=MAX_LAYERS as u64),
          help = gpt_default("GPT: attention heads", |g| g.n_head.to_string()))]
    pub n_head: Option<u64>,
    /// GPT: transformer blocks.
    #[arg(long, conflicts_with = "resume", value_parser = clap::value_parser!(u64).range(1..=MAX_LAYERS as u64),
          help = gpt_default("GPT: transformer blocks", |g| g.n_layer.to_string()))]
    pub n_layer: Option<u64>,
    /// GPT: dropout.
    #[arg(long, conflicts_with = "resume", help = gpt_default("GPT: dropout", |g| g.dropout.to_string()))]
    pub dropout: Option<f64>,
    /// Characters of sample to print after training.
    #[arg(long, default_value_t = DEFAULT_SAMPLE_LEN, value_parser = clap::value_parser!(u64).range(..=MAX_SAMPLE_LEN as u64))]
    pub sample_len: u64,
    /// Under `mpirun`: gradients are all-reduced in buckets of this many KiB as backward
    /// finishes them (0: all at once after backward).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(..=1 << 20))]
    pub bucket_kib: u32,
    /// Print the training loss of every this many steps (0: only validations), for logs.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(..=MAX_STEPS))]
    pub log_every: u64,
    /// Gradient accumulation: each optimizer step sums the gradients of K micro-batches of
    /// --batch-size / K windows (K must divide it), recorded one after the other (each
    /// sharded as --shards says): the memory of a micro-batch, the update of the whole batch;
    /// kept in the checkpoint [default: 1, or the checkpoint's].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub accumulate: Option<u64>,
    /// Stop at the first step boundary after SECONDS of training (the steps alone are on the
    /// clock: batch, forward, backward, update; validations and saves are not), then validate
    /// on the whole validation split and save as at the end of the run. The learning rate
    /// still follows the schedule of --steps: choose --steps to fit the budget. Counts the
    /// training time of the whole run (a resumed run's earlier time too); kept in the
    /// checkpoint [default: none, or the checkpoint's; --preset best: 1200].
    #[arg(long, value_name = "SECONDS")]
    pub time_limit: Option<f64>,
    /// `best`: the GPT and recipe meant for the lowest validation loss within 20 minutes of
    /// training on two cores (see the guide's next-character chapter). Any flag given with it
    /// overrides the preset's value.
    #[arg(long, value_parser = ["best"], conflicts_with = "resume")]
    pub preset: Option<String>,
}

/// Characters of sample `train` prints after training, unless `--sample-len` says otherwise.
pub const DEFAULT_SAMPLE_LEN: u64 = 300;

/// A help text ending with each model's default, read from [`TrainConfig::for_model`].
fn per_model(text: &str, value: impl Fn(&TrainConfig) -> String) -> String {
    let of = |m: ModelConfig| value(&TrainConfig::for_model(&m));
    format!(
        "{text} [default: bigram {}, mlp {}, gpt {}]",
        of(ModelConfig::Bigram(BigramConfig::default())),
        of(ModelConfig::Mlp(MlpConfig::default())),
        of(ModelConfig::Gpt(GptConfig::default()))
    )
}

/// A GPT flag's help text ending with its default and the best preset's value.
fn gpt_default(text: &str, value: impl Fn(&GptConfig) -> String) -> String {
    format!("{text} [default: {}; --preset best: {}]", value(&GptConfig::default()), value(&preset::best_gpt()))
}

/// Configuration fields whose flag is not `--` and the field's name with `-` for `_`.
const FLAGS: &[(&str, &str)] = &[
    ("learning_rate", "--lr"),
    ("warmup_steps", "--warmup"),
    ("block_size", "--block"),
    ("vocab", "--corpus (its characters)"),
];

/// `pente char-lm sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// A model saved by `pente char-lm train`.
    #[arg(long, value_name = "FILE")]
    pub load: PathBuf,
    /// Text to continue.
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Characters to generate.
    #[arg(long, default_value_t = SampleConfig::default().len as u64,
          value_parser = clap::value_parser!(u64).range(..=MAX_SAMPLE_LEN as u64))]
    pub len: u64,
    /// Softmax temperature (0: always the most likely character).
    #[arg(long, default_value_t = SampleConfig::default().temperature)]
    pub temperature: f64,
    /// Sample among the k most likely characters only.
    #[arg(long)]
    pub top_k: Option<usize>,
}

/// `pente char-lm eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A model saved by `pente char-lm train`.
    #[arg(long, value_name = "FILE")]
    pub load: PathBuf,
    /// The text to score.
    pub text_file: PathBuf,
}

impl TrainArgs {
    /// The model the flags describe: the preset's GPT (or the default one) with each GPT flag
    /// given in its place.
    ///
    /// # Errors
    /// [`Error::Config`] for `--preset` with a model other than the GPT.
    fn model_config(&self) -> Result<ModelConfig, Error> {
        let usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        if let (Some(preset), false) = (&self.preset, self.model == Kind::Gpt) {
            return Err(Error::Config(format!(
                "--preset {preset} is a recipe for --model gpt, not for --model {}",
                self.model.to_possible_value().map_or("?".into(), |v| v.get_name().to_string())
            )));
        }
        let gpt = if self.preset.is_some() { preset::best_gpt() } else { GptConfig::default() };
        Ok(match self.model {
            Kind::Bigram => ModelConfig::Bigram(BigramConfig { smoothing: self.smoothing }),
            Kind::Mlp => ModelConfig::Mlp(MlpConfig {
                context: usize(self.context),
                n_embd: self.n_embd.map_or(MlpConfig::default().n_embd, usize),
                hidden: usize(self.hidden),
            }),
            Kind::Gpt => ModelConfig::Gpt(GptConfig {
                block_size: self.block.map_or(gpt.block_size, usize),
                n_embd: self.n_embd.map_or(gpt.n_embd, usize),
                n_head: self.n_head.map_or(gpt.n_head, usize),
                n_layer: self.n_layer.map_or(gpt.n_layer, usize),
                dropout: self.dropout.unwrap_or(gpt.dropout),
            }),
        })
    }

    /// The training configuration a new run starts from: the preset's, or the model's
    /// defaults (the flags are applied after, by [`TrainArgs::apply`]).
    fn base_training(&self, config: &ModelConfig) -> TrainConfig {
        match self.preset {
            Some(_) => preset::best_training(),
            None => TrainConfig::for_model(config),
        }
    }

    /// `base` with every training flag given applied; with `notes`, each change of the
    /// base's value (a resumed run's) is described there.
    fn apply(&self, base: &mut TrainConfig, mut notes: Option<&mut Vec<String>>) {
        fn set<T: PartialEq + Copy + std::fmt::Display>(
            flag: &str,
            given: Option<T>,
            field: &mut T,
            notes: &mut Option<&mut Vec<String>>,
        ) {
            if let Some(v) = given {
                if let Some(notes) = notes.as_deref_mut() {
                    if v != *field {
                        notes.push(format!("{flag} {v} overrides the checkpoint's {}", *field));
                    }
                }
                *field = v;
            }
        }
        let usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        set("--steps", self.steps, &mut base.steps, &mut notes);
        set("--batch-size", self.batch_size.map(usize), &mut base.batch_size, &mut notes);
        set("--lr", self.lr, &mut base.learning_rate, &mut notes);
        set("--warmup", self.warmup, &mut base.warmup_steps, &mut notes);
        set("--weight-decay", self.weight_decay, &mut base.weight_decay, &mut notes);
        set("--eval-every", self.eval_every, &mut base.eval_every, &mut notes);
        set("--shards", self.shards.map(usize::from), &mut base.shards, &mut notes);
        set("--save-every", self.save_every, &mut base.save_every, &mut notes);
        set("--checkpoint-blocks", self.checkpoint_blocks.then_some(true), &mut base.checkpoint_blocks, &mut notes);
        set("--precision", self.precision, &mut base.precision, &mut notes);
        set("--accumulate", self.accumulate.map(usize), &mut base.accumulate, &mut notes);
        if let Some(limit) = self.time_limit {
            if let Some(notes) = &mut notes {
                if base.time_limit != Some(limit) {
                    let was = base.time_limit.map_or("none".to_string(), |t| format!("{t} s"));
                    notes.push(format!("--time-limit {limit} s overrides the checkpoint's {was}"));
                }
            }
            base.time_limit = Some(limit);
        }
    }
}

/// A configuration error in the command line's terms: the flag, not the field.
fn flag_error(e: crate::config::Invalid) -> Error {
    Error::Config(e.as_flag(FLAGS))
}

/// Runs a `pente char-lm` subcommand; `seed` seeds the weights, the batches and the sampling;
/// figures and default checkpoints go to `out`.
///
/// # Errors
/// Whatever the command meets: unreadable or foreign files, characters outside a strict
/// vocabulary, invalid configurations, unwritable outputs.
pub fn run(args: &CharLmArgs, seed: u64, out: &Path) -> Result<(), Error> {
    match &args.command {
        CharLmCommand::Train(a) => train(a, seed, out, None).map(|_| ()),
        CharLmCommand::Sample(a) => {
            let model = CharLm::load(&a.load)?;
            let prompt = data::encode(&model.vocab, &a.prompt, Path::new("--prompt"))?;
            let config = SampleConfig { len: a.len as usize, temperature: a.temperature, top_k: a.top_k, seed };
            if !(a.temperature.is_finite() && a.temperature >= 0.0) {
                return Err(Error::Config(format!("temperature must be finite and ≥ 0, got {}", a.temperature)));
            }
            print_sample(&model, &a.prompt, &prompt, &config);
            Ok(())
        }
        CharLmCommand::Eval(a) => {
            let model = CharLm::load(&a.load)?;
            let text = data::read_text(&a.text_file)?;
            let ids = data::encode(&model.vocab, &text, &a.text_file)?;
            if ids.len() < model.config.window() {
                return Err(Error::Config(format!(
                    "{} holds {} characters; the {} model needs at least {}",
                    a.text_file.display(),
                    ids.len(),
                    model.config.kind(),
                    model.config.window()
                )));
            }
            let loss = model.evaluate(&ids, None);
            println!(
                "{}: {:.4} nats per character, {:.4} bits per character ({} model, {} characters)",
                a.text_file.display(),
                loss,
                bits(loss),
                model.config.kind(),
                ids.len()
            );
            Ok(())
        }
        CharLmCommand::Next(a) => super::next_cli::run(a),
    }
}

/// `pente char-lm train` as one rank of a run across processes (under `mpirun`): the GPT
/// trains data-parallel over `comm` ([`Trainer::distribute`]); only rank 0 prints, saves and
/// draws. Other subcommands run as [`run`] does.
///
/// # Errors
/// As [`run`]; the bigram and MLP models are refused on more than one rank.
pub fn run_across(args: &CharLmArgs, seed: u64, out: &Path, comm: Arc<dyn Communicator>) -> Result<(), Error> {
    LOUD.store(comm.rank() == 0, Ordering::Relaxed);
    match &args.command {
        CharLmCommand::Train(a) => train(a, seed, out, Some(comm)).map(|_| ()),
        _ if comm.rank() == 0 => run(args, seed, out),
        _ => Ok(()),
    }
}

/// Streams a sample to stdout and reports its speed on stderr.
fn print_sample(model: &CharLm, prompt_text: &str, prompt: &[usize], config: &SampleConfig) {
    let mut stdout = std::io::stdout();
    print!("{prompt_text}");
    let s = sample::generate(model, prompt, config, |c| {
        let mut buf = [0u8; 4];
        let _ = stdout.write_all(c.encode_utf8(&mut buf).as_bytes());
        let _ = stdout.flush();
    });
    println!();
    eprintln!("({} characters at {:.0} characters/s)", s.text.chars().count(), s.chars_per_second);
}

/// Trains as `args` say and reports; returns the trainer.
fn train(args: &TrainArgs, seed: u64, out: &Path, comm: Option<Arc<dyn Communicator>>) -> Result<Trainer, Error> {
    let mut trainer = match &args.resume {
        Some(path) => {
            let mut notes = Vec::new();
            let t = Trainer::resume_with(path, |c, model| {
                args.apply(c, Some(&mut notes));
                c.validate(&model.config, model.vocab.len()).map_err(flag_error)
            })?;
            say!("resuming {} at step {} of {}", path.display(), t.step(), t.config.steps);
            for note in notes {
                say!("{note}");
            }
            if t.step() >= t.config.steps && args.steps.is_some() {
                return Err(Error::Config(format!(
                    "--steps {}: the run in {} is already at step {}; give more steps to extend it",
                    t.config.steps,
                    path.display(),
                    t.step()
                )));
            }
            if let (Some(limit), true) = (t.config.time_limit, t.out_of_time() && t.step() < t.config.steps) {
                return Err(Error::Config(format!(
                    "--time-limit {limit}: the run in {} has already trained {:.1} s (stopped at step {} of {}); \
                     give a larger --time-limit to continue it",
                    path.display(),
                    t.train_seconds,
                    t.step(),
                    t.config.steps
                )));
            }
            t
        }
        None => {
            let config = args.model_config()?;
            let path = args.corpus.clone().unwrap_or_else(data::default_corpus_path);
            let corpus = Corpus::new(&data::read_text(&path)?, &path, !args.strict_vocab, None)?;
            config.validate(corpus.vocab.len()).map_err(flag_error)?;
            let mut tc = TrainConfig { seed, ..args.base_training(&config) };
            args.apply(&mut tc, None);
            tc.validate(&config, corpus.vocab.len()).map_err(flag_error)?;
            let model = CharLm::new(corpus.vocab.clone(), config, seed)?;
            Trainer::new(model, tc)
        }
    };
    let path = match (&args.corpus, &trainer.corpus) {
        (Some(path), _) => path.clone(),
        (None, Some(id)) => id.path.clone(),
        (None, None) => data::default_corpus_path(),
    };
    if let (Some(resumed), None) = (&args.resume, &trainer.corpus) {
        say!(
            "{} does not record its corpus (an older checkpoint): training on {}, recorded from now on",
            resumed.display(),
            path.display()
        );
    }
    let kind = trainer.model.config.kind();
    let save =
        args.save.clone().or_else(|| args.resume.clone()).unwrap_or_else(|| out.join(format!("char_lm_{kind}.ckpt")));
    // A directory that cannot take the checkpoint is reported now, not at the first save.
    crate::check_save_path(&save)?;
    trainer.save = Some(save.clone());
    let corpus = Corpus::new(&data::read_text(&path)?, &path, false, Some(trainer.model.vocab.clone()))?;
    if let Some(comm) = comm {
        let world = comm.world_size();
        let config = DdpConfig { bucket_bytes: args.bucket_kib as usize * 1024, ..DdpConfig::default() };
        trainer.distribute(comm, config)?;
        say!("training across {world} processes (MPI): one shard of each batch per process");
    }
    report_and_train(&mut trainer, &corpus, kind, args.log_every)?;
    if !LOUD.load(Ordering::Relaxed) {
        return Ok(trainer); // rank 0 reports, draws and samples
    }
    say!("wrote {}", save.display());
    if let Some(s) = trainer.ddp_stats().filter(|s| s.steps > 0) {
        let ms = |x: f64| 1e3 * x / s.steps as f64;
        say!(
            "all-reduce: {:.2} ms per micro-batch, {:.0} % of it hidden behind backward ({:.2} ms per micro-batch; {:.1} buckets of {} KiB per micro-batch, {:.2} ms exposed; {} micro-batch(es) per step)",
            ms(s.reduce_seconds),
            100.0 * s.overlap(),
            ms(s.backward_seconds),
            s.buckets as f64 / s.steps as f64,
            args.bucket_kib,
            ms(s.exposed_seconds),
            trainer.config.accumulate
        );
    }

    let val = trainer.model.evaluate(&corpus.val, None);
    let tokens = trainer.step() * (trainer.config.batch_size * trainer.model.config.targets_per_window()) as u64;
    if let (Some(limit), true) =
        (trainer.config.time_limit, trainer.out_of_time() && trainer.step() < trainer.config.steps)
    {
        say!(
            "stopped by --time-limit {limit} s after step {} of {} ({:.1} s of training steps; validations and saves are off the clock)",
            trainer.step(),
            trainer.config.steps,
            trainer.train_seconds
        );
    }
    say!(
        "{kind}: validation {val:.4} nats/char ({:.4} bits/char) over every full-length window; \
         {} steps, {:.1} s of training, {:.0} training tokens/s",
        bits(val),
        trainer.step(),
        trainer.train_seconds,
        tokens as f64 / trainer.train_seconds.max(1e-9)
    );
    let reference = if let ModelConfig::Bigram(b) = trainer.model.config {
        let exact = CountBigram::fit(&corpus.train, corpus.vocab.len(), b.smoothing).cross_entropy(&corpus.val);
        say!("count-based bigram (add-{} smoothing): {exact:.4} nats/char; difference {:.4}", b.smoothing, val - exact);
        Some(exact)
    } else {
        None
    };
    let fig = out.join(format!("char_lm_{kind}_loss.svg"));
    figures::write_loss_curves(
        &[(kind.to_string(), &trainer.history)],
        reference.map(|r| ("count-based bigram", r)),
        &format!("char-lm {kind}: loss per character"),
        &fig,
    )?;
    say!("wrote {}", fig.display());
    if matches!(trainer.model.config, ModelConfig::Gpt(_)) {
        let fig = out.join("char_lm_gpt_attention.svg");
        figures::write_attention(&trainer.model, &attention_line(&trainer.model), last_layer(&trainer.model), &fig)?;
        say!("wrote {}", fig.display());
    }
    if args.sample_len > 0 {
        say!("\nsample (temperature 0.8, seed {seed}):");
        let config = SampleConfig { len: args.sample_len as usize, temperature: 0.8, top_k: None, seed };
        print_sample(&trainer.model, "", &[], &config);
    }
    Ok(trainer)
}

/// The line whose attention is drawn: a speaker's line of the validation text, cut to the block.
fn attention_line(model: &CharLm) -> String {
    let n = model.config.context_len().min(40);
    "ROMEO:\nBut, soft! what light through yonder window breaks?"
        .chars()
        .filter(|c| model.vocab.id(*c).is_some())
        .take(n)
        .collect()
}

fn last_layer(model: &CharLm) -> usize {
    match &model.net {
        super::model::Net::Gpt(g) => g.blocks.len().saturating_sub(1),
        _ => 0,
    }
}

/// Runs the trainer with a progress bar (loss, tokens/s, last validation), printing each
/// validation as a line.
fn report_and_train(trainer: &mut Trainer, corpus: &Corpus, label: &str, log_every: u64) -> Result<(), Error> {
    let bar = crate::progress_bar(trainer.config.steps, label);
    bar.set_position(trainer.step());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix:>6} [{bar:30}] {pos}/{len} {elapsed}<{eta} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    let params = trainer.model.store.num_params();
    let line = format!(
        "{label}: {params} parameters, vocabulary {}, {} steps of {} windows",
        trainer.model.vocab.len(),
        trainer.config.steps,
        trainer.config.batch_size
    );
    if bar.is_hidden() {
        say!("{line}");
    } else {
        bar.println(line);
    }
    let mut last_val = f64::NAN;
    let mut last_tps = 0.0;
    trainer.run(corpus, None, &mut |e| match e {
        Event::Step { step, loss, tokens_per_second } => {
            last_tps = tokens_per_second;
            if log_every > 0 && step.is_multiple_of(log_every) {
                let line = format!("step {step:>7}: training loss {loss:.6}, {tokens_per_second:.0} tok/s");
                if bar.is_hidden() {
                    say!("{line}");
                } else {
                    bar.println(line);
                }
            }
            bar.set_position(step);
            bar.set_message(format!("loss {loss:.3}  val {last_val:.3}  {tokens_per_second:.0} tok/s"));
        }
        Event::Validation { step, loss } => {
            last_val = loss;
            let line =
                format!("step {step:>7}: validation {loss:.4} nats/char ({:.3} bits), {last_tps:.0} tok/s", bits(loss));
            if bar.is_hidden() {
                say!("{line}");
            } else {
                bar.println(line);
            }
        }
        Event::Saved { .. } => {}
    })?;
    bar.finish_and_clear();
    Ok(())
}

/// The char-lm part of `pente demo`: the bigram against its count-based value, then a small
/// GPT trained briefly, and a printed sample. Writes the loss figures and checkpoints to `out`.
///
/// # Errors
/// As `pente char-lm train`.
pub fn demo(seed: u64, out: &Path) -> Result<(), Error> {
    let common = |model: Kind, steps: u64| TrainArgs {
        model,
        steps: Some(steps),
        batch_size: None,
        lr: None,
        warmup: None,
        weight_decay: None,
        eval_every: Some(steps / 4),
        shards: None,
        checkpoint_blocks: false,
        precision: None,
        save: None,
        save_every: Some(0),
        resume: None,
        corpus: None,
        strict_vocab: false,
        smoothing: BigramConfig::default().smoothing,
        context: MlpConfig::default().context as u64,
        hidden: MlpConfig::default().hidden as u64,
        n_embd: Some(64),
        block: Some(32),
        n_head: Some(4),
        n_layer: Some(2),
        dropout: Some(0.0),
        sample_len: 0,
        bucket_kib: 512,
        log_every: 0,
        accumulate: None,
        time_limit: None,
        preset: None,
    };
    train(&common(Kind::Bigram, 400), seed, out, None)?;
    let args = TrainArgs { batch_size: Some(16), sample_len: 200, ..common(Kind::Gpt, 200) };
    train(&args, seed, out, None)?;
    Ok(())
}
