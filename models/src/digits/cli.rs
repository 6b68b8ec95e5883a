//! `pente digits`: the command-line side of the digit classifiers (train, eval, predict,
//! speed), kept here so that `bin/pente.rs` only dispatches to it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Subcommand};
use nn::comm::{Communicator, DdpConfig};

use super::data::{Digits, Mnist, PIXELS, SIDE};
use super::figures::{self, SpeedRow};
use super::image::{read_png, to_mnist};
use super::model::{Arch, DigitsConfig, DigitsModel};
use super::parallel::StepOn;
use super::train::{self, evaluate};
use crate::{progress_bar, Error};

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

/// `pente digits …`.
#[derive(Args, Debug)]
pub struct DigitsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DigitsCommand,
}

/// The digits subcommands.
#[derive(Subcommand, Debug)]
pub enum DigitsCommand {
    /// Train the MLP or the CNN on MNIST; save it (after every epoch, with the optimizer state)
    /// and draw its figures in --out.
    Train(TrainArgs),
    /// Print a saved model's test accuracy, per-class accuracy and confusion matrix; draw the
    /// confusion matrix and the misclassified digits.
    Eval {
        /// The model (its architecture and settings are in the file).
        #[arg(long, value_name = "FILE")]
        load: PathBuf,
        /// Directory of the MNIST files [default: the one the model was trained on].
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// Classify a picture of a digit (PNG, any size; dark on light or light on dark) and print
    /// the ten probabilities.
    Predict {
        /// The model.
        #[arg(long, value_name = "FILE")]
        load: PathBuf,
        /// The picture.
        image: PathBuf,
    },
    /// Draw pente's speed beside PyTorch's from the last JSON lines of `pente digits train
    /// --eval-every 100` and of `bench/reference/mnist_torch.py`.
    Speed {
        /// Output of pente.
        #[arg(long, value_name = "FILE")]
        pente: PathBuf,
        /// Output of the PyTorch reference.
        #[arg(long, value_name = "FILE")]
        torch: PathBuf,
        /// The figure [default: OUT/digits_speed_MODEL.svg].
        #[arg(long, value_name = "FILE")]
        figure: Option<PathBuf>,
    },
}

/// Configuration fields whose flag is not `--` and the field's name with `-` for `_`.
const FLAGS: &[(&str, &str)] = &[("learning_rate", "--lr"), ("data_dir", "--data"), ("arch", "--model")];

/// `pente digits train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// mlp (784-512-256-10) or cnn (conv 32, conv 64, max-pool, dense 128) [default: mlp, or
    /// the one in the --resume file].
    #[arg(long, value_parser = ["mlp", "cnn"])]
    pub model: Option<String>,
    /// Passes over the training images.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=DigitsConfig::MAX_EPOCHS as i64),
          help = per_arch("Passes over the training images", |c| c.epochs.to_string()))]
    pub epochs: Option<u32>,
    /// Images per batch.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=60_000),
          help = tuned("Images per batch", |c| c.batch_size.to_string()))]
    pub batch_size: Option<u32>,
    /// Adam's learning rate.
    #[arg(long, help = tuned("Adam's learning rate", |c| c.learning_rate.to_string()))]
    pub lr: Option<f64>,
    /// Decoupled weight decay (AdamW); 0 is plain Adam.
    #[arg(long, help = tuned("Decoupled weight decay (AdamW); 0 is plain Adam", |c| c.weight_decay.to_string()))]
    pub weight_decay: Option<f64>,
    /// Keep the learning rate constant (no cosine decay, no one-cycle schedule).
    #[arg(long)]
    pub constant_lr: bool,
    /// Training images held out for validation (0: train on all 60,000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..59_000),
          help = tuned("Training images held out for validation (0: train on all 60,000)", |c| c.validation.to_string()))]
    pub validation: Option<u32>,
    /// Move each training image by up to this many pixels (augmentation; 0 off).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=8),
          help = tuned("Move each training image by up to this many pixels (augmentation; 0 off)", |c| c.shift.to_string()))]
    pub shift: Option<u32>,
    /// Standardize inputs by the training mean and standard deviation (instead of [0, 1]).
    #[arg(long)]
    pub normalize: bool,
    /// Directory of the four MNIST files.
    #[arg(long, default_value_os_t = DigitsConfig::default().data_dir, value_name = "DIR")]
    pub data: PathBuf,
    /// Skip the SHA-256 check of the MNIST files.
    #[arg(long)]
    pub no_verify: bool,
    /// Measure test accuracy every N steps and report when --target is first met (off the
    /// training clock), as the PyTorch reference does; 0 never [default: 0, or the preset's:
    /// 50 with --preset fast].
    #[arg(long, value_name = "N")]
    pub eval_every: Option<u32>,
    /// Test accuracy for --eval-every.
    #[arg(long, help = per_arch("Test accuracy for --eval-every", |c| c.target.to_string()))]
    pub target: Option<f64>,
    /// Stop after this many optimizer steps (e.g. a fraction of an epoch).
    #[arg(long, default_value_t = DigitsConfig::default().max_steps as u32, value_name = "N")]
    pub max_steps: u32,
    /// The training steps' matrix products: bf16 (operands rounded to bf16, f32 accumulation,
    /// where the CPU has AMX or AVX512-BF16) or f32; the weights stay f32.
    #[arg(long, value_parser = crate::precision::parse, default_value = "f32", value_name = "f32|bf16")]
    pub precision: autograd::precision::Precision,
    /// Where to save the model [default: OUT/digits_MODEL.ckpt].
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Continue a run saved by an earlier `train` (its settings come from the file; --epochs
    /// may extend it, and the tuning flags, which it would ignore, are refused).
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "preset", "batch_size", "lr", "weight_decay", "constant_lr", "validation", "shift", "normalize", "rotate",
    ])]
    pub resume: Option<PathBuf>,
    /// Do not draw figures.
    #[arg(long)]
    pub no_figures: bool,
    /// Shards of each batch trained side by side in this process, one thread and one tape each
    /// (not given: the whole batch on one tape). Under `mpirun` each process is one shard.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub shards: Option<u16>,
    /// `best`: the larger networks (the MLP 784-1024-1024-10 with dropout, the CNN with batch
    /// norm) trained longer on all 60,000 images with rotations and shifts. `fast` (CNN only,
    /// the default model with it): a small batch-normalized CNN (16, 32, 64 channels) with a
    /// one-cycle schedule, probing the test accuracy every 50 steps for the first 99 %. Any
    /// flag given with it overrides the preset's value, as with `pente char-lm train --preset`.
    #[arg(long, value_parser = ["best", "fast"])]
    pub preset: Option<String>,
    /// Rotate each training image by up to this many degrees (augmentation, bilinear; with
    /// it, --shift moves by fractional pixels; 0 off).
    #[arg(long, help = tuned(
        "Rotate each training image by up to this many degrees (augmentation, bilinear; with it, --shift moves by fractional pixels; 0 off)",
        |c| c.rotate.to_string()
    ))]
    pub rotate: Option<f64>,
}

/// A help text ending with the default, read from [`DigitsConfig::default`], and the presets'.
fn tuned(text: &str, value: impl Fn(&DigitsConfig) -> String) -> String {
    let (default, best, fast) = (
        value(&DigitsConfig::default()),
        [Arch::Mlp, Arch::Cnn].map(|a| value(&DigitsConfig::best(a))),
        value(&DigitsConfig::fast(Arch::Cnn)),
    );
    let best = if best[0] == best[1] { best[0].clone() } else { format!("mlp {}, cnn {}", best[0], best[1]) };
    format!("{text} [default: {default}; --preset best: {best}; --preset fast: {fast}]")
}

/// A help text ending with each architecture's default, read from [`DigitsConfig::for_arch`].
fn per_arch(text: &str, value: impl Fn(&DigitsConfig) -> String) -> String {
    let (mlp, cnn) = (value(&DigitsConfig::for_arch(Arch::Mlp)), value(&DigitsConfig::for_arch(Arch::Cnn)));
    format!("{text} [default: mlp {mlp}, cnn {cnn}]")
}

/// Runs `pente digits …` with the global `--seed` and `--out`.
///
/// # Errors
/// Whatever the subcommand meets: unreadable data or checkpoints, bad settings, unwritable
/// outputs.
pub fn run(args: &DigitsArgs, seed: u64, out: &Path) -> Result<(), Error> {
    run_on(args, seed, out, None)
}

/// `pente digits train` as one rank of a run across processes (under `mpirun`): each rank
/// trains one shard of every batch, computing what `--shards` (the world size) computes in one
/// process; only rank 0 prints, saves and draws. Other subcommands run on rank 0 alone.
///
/// # Errors
/// As [`run`]; `--shards` is refused (each process is one shard).
pub fn run_across(args: &DigitsArgs, seed: u64, out: &Path, comm: Arc<dyn Communicator>) -> Result<(), Error> {
    LOUD.store(comm.rank() == 0, Ordering::Relaxed);
    match &args.command {
        DigitsCommand::Train(_) => run_on(args, seed, out, Some(comm)),
        _ if comm.rank() == 0 => run(args, seed, out),
        _ => Ok(()),
    }
}

fn run_on(args: &DigitsArgs, seed: u64, out: &Path, comm: Option<Arc<dyn Communicator>>) -> Result<(), Error> {
    match &args.command {
        DigitsCommand::Train(t) => {
            let asked = t.model.as_deref().map(Arch::parse).transpose()?;
            let fast = t.preset.as_deref() == Some("fast");
            let arch = asked.unwrap_or(if fast { Arch::Cnn } else { Arch::Mlp });
            let (model, ckpt) = match &t.resume {
                Some(path) => {
                    let ckpt = nn::Checkpoint::load(path)?;
                    let mut model = DigitsModel::from_checkpoint(&ckpt, path)?;
                    if asked.is_some_and(|a| a != model.config.arch) {
                        return Err(Error::NotAModel {
                            path: path.clone(),
                            expected: super::model::MODEL_NAME,
                            reason: format!("it holds a {}, not a {}", model.config.arch.name(), arch.name()),
                        });
                    }
                    if let Some(e) = t.epochs {
                        model.config.epochs = e as usize;
                    }
                    say!(
                        "resuming {} ({}) after epoch {} of {}",
                        path.display(),
                        model.config.arch.name(),
                        model.history.epochs.len(),
                        model.config.epochs
                    );
                    (model, Some(ckpt))
                }
                None => {
                    // The preset's values, or the defaults, where no flag overrides them.
                    let defaults = match t.preset.as_deref() {
                        Some("fast") => DigitsConfig::fast(arch),
                        Some(_) => DigitsConfig::best(arch),
                        None => DigitsConfig::for_arch(arch),
                    };
                    let config = DigitsConfig {
                        seed,
                        epochs: t.epochs.map_or(defaults.epochs, |e| e as usize),
                        batch_size: t.batch_size.map_or(defaults.batch_size, |b| b as usize),
                        learning_rate: t.lr.unwrap_or(defaults.learning_rate),
                        weight_decay: t.weight_decay.unwrap_or(defaults.weight_decay),
                        cosine: defaults.cosine && !t.constant_lr,
                        one_cycle: defaults.one_cycle && !t.constant_lr,
                        validation: t.validation.map_or(defaults.validation, |v| v as usize),
                        shift: t.shift.map_or(defaults.shift, |s| s as usize),
                        normalize: defaults.normalize || t.normalize,
                        data_dir: t.data.clone(),
                        verify_sha256: !t.no_verify,
                        eval_every: t.eval_every.map_or(defaults.eval_every, |n| n as usize),
                        target: t.target.unwrap_or(defaults.target),
                        max_steps: t.max_steps as usize,
                        precision: t.precision,
                        rotate: t.rotate.unwrap_or(defaults.rotate),
                        ..defaults
                    };
                    config.validate().map_err(|e| Error::Config(e.as_flag(FLAGS)))?;
                    (DigitsModel::new(&config)?, None)
                }
            };
            let save = t.save.clone().or_else(|| t.resume.clone());
            let save = save.unwrap_or_else(|| default_weights_path(out, model.config.arch));
            // A directory that cannot take the checkpoint is reported now, not after an epoch.
            crate::check_save_path(&save)?;
            let mut model = model;
            let mut step_on = match comm {
                Some(comm) => {
                    if let Some(n) = t.shards {
                        return Err(Error::Config(format!(
                            "--shards {n}: under mpirun each process trains one shard of every batch"
                        )));
                    }
                    let world = comm.world_size();
                    let step_on = StepOn::ranks(comm, DdpConfig::default(), &mut model)?;
                    say!("training across {world} processes (MPI): one shard of each batch per process");
                    step_on
                }
                None => StepOn::shards(t.shards.map(usize::from), model.config.batch_size)?,
            };
            train_and_report_on(model, ckpt.as_ref(), &save, out, !t.no_figures, &mut step_on)
        }
        DigitsCommand::Eval { load, data } => {
            let model = DigitsModel::load(load)?;
            let dir = data.clone().unwrap_or_else(|| model.config.data_dir.clone());
            let mnist = Mnist::load(&dir, model.config.verify_sha256)?;
            println!("{} ({} parameters) from {}", model.config.describe(), model.num_params(), load.display());
            let eval = evaluate(&model, &mnist.test);
            print!("{}", eval.report());
            let arch = model.config.arch.name();
            write_test_figures(&model, &mnist.test, &eval, out)?;
            println!("wrote {}", out.join(format!("digits_{arch}_confusion.svg")).display());
            Ok(())
        }
        DigitsCommand::Predict { load, image } => {
            let model = DigitsModel::load(load)?;
            let input = to_mnist(&read_png(image)?);
            print!("{}", ascii_art(&input));
            let x: Vec<f32> = input.iter().map(|&v| model.norm.apply(v)).collect();
            let probs = model.probabilities(&autograd::Tensor::from_vec(x, &[1, PIXELS]))[0];
            let best = (0..probs.len()).fold(0, |b, c| if probs[c] > probs[b] { c } else { b });
            for (d, p) in probs.iter().enumerate() {
                let bar = "#".repeat((p * 40.0).round() as usize);
                println!("{d}: {:6.2} % {bar}", 100.0 * p);
            }
            println!("=> {best}");
            Ok(())
        }
        DigitsCommand::Speed { pente, torch, figure } => {
            let read =
                |p: &Path| std::fs::read_to_string(p).map_err(|source| Error::Io { path: p.to_path_buf(), source });
            let (p, t) = (parse_summary(&read(pente)?, pente)?, parse_summary(&read(torch)?, torch)?);
            let rows = [
                SpeedRow { name: "pente".into(), samples_per_s: p.samples_per_s, time_to_target: p.train_s },
                SpeedRow {
                    name: format!("PyTorch {}", t.version),
                    samples_per_s: t.samples_per_s,
                    time_to_target: t.train_s,
                },
            ];
            let path = figure.clone().unwrap_or_else(|| out.join(format!("digits_speed_{}.svg", p.model)));
            let title = format!(
                "MNIST {}: pente and PyTorch on the same machine (batch 128, Adam 1e-3)",
                p.model.to_uppercase()
            );
            figures::write_speed(&rows, &title, p.target, &path)?;
            for r in &rows {
                println!(
                    "{:>16}: {:>8.0} img/s, time to target {}",
                    r.name,
                    r.samples_per_s,
                    r.time_to_target.map_or("—".into(), |s| format!("{s:.1} s"))
                );
            }
            println!("wrote {}", path.display());
            Ok(())
        }
    }
}

/// The short digits run of `pente demo`: the MLP for `steps` optimizer steps (a fraction of an
/// epoch), saved to OUT/digits_mlp.ckpt, with its figures.
///
/// # Errors
/// As [`train_and_report`].
pub fn demo(seed: u64, out: &Path, steps: usize) -> Result<(), Error> {
    let config = DigitsConfig { seed, epochs: 1, max_steps: steps, ..DigitsConfig::for_arch(Arch::Mlp) };
    let model = DigitsModel::new(&config)?;
    train_and_report(model, None, &default_weights_path(out, Arch::Mlp), out, true)
}

/// Where `train` saves a model of `arch` inside an output directory.
pub fn default_weights_path(out: &Path, arch: Arch) -> PathBuf {
    out.join(format!("digits_{}.ckpt", arch.name()))
}

/// Trains `model` (resuming `ckpt`'s optimizer if given), saving to `save` after each epoch,
/// then prints the test accuracy and a JSON summary line and draws the figures into `out`.
///
/// # Errors
/// Data, checkpoint and figure errors.
pub fn train_and_report(
    model: DigitsModel,
    ckpt: Option<&nn::Checkpoint>,
    save: &Path,
    out: &Path,
    figures: bool,
) -> Result<(), Error> {
    train_and_report_on(model, ckpt, save, out, figures, &mut StepOn::OneTape)
}

/// [`train_and_report`] with each step computed as `step_on` says; across processes, rank 0
/// alone saves, prints and draws.
///
/// # Errors
/// As [`train_and_report`].
pub fn train_and_report_on(
    mut model: DigitsModel,
    ckpt: Option<&nn::Checkpoint>,
    save: &Path,
    out: &Path,
    figures: bool,
    step_on: &mut StepOn,
) -> Result<(), Error> {
    let c = model.config.clone();
    let start = Instant::now();
    let mnist = Mnist::load(&c.data_dir, c.verify_sha256)?;
    let rank = step_on.rank();
    say!(
        "{} ({} parameters); MNIST read and checked in {:.1} s; {} training, {} validation images",
        c.describe(),
        model.num_params(),
        start.elapsed().as_secs_f64(),
        60_000 - c.validation.min(60_000),
        c.validation
    );
    let bar = if rank == 0 { progress_bar(1, "training") } else { indicatif::ProgressBar::hidden() };
    train::train_on(
        &mut model,
        &mnist,
        ckpt,
        &bar,
        &mut |m, opt, r| {
            say!("{}", train::epoch_line(r));
            if rank == 0 {
                train::save_with_optimizer(m, opt, save)?;
            }
            Ok(())
        },
        step_on,
    )?;
    // The other ranks wait here until rank 0 has written the last checkpoint.
    step_on.barrier();
    if rank != 0 {
        return Ok(());
    }
    say!("saved {}", save.display());
    let eval = evaluate(&model, &mnist.test);
    let h = &model.history;
    println!(
        "test accuracy {:.2} % after {} epochs ({} steps, {:.1} s of training, {:.0} img/s)",
        100.0 * eval.accuracy,
        h.epochs.len(),
        h.steps,
        h.train_s,
        h.samples_per_s()
    );
    let hit = h.first_hit.map_or("null".to_string(), |f| {
        format!(r#"{{"step": {}, "epochs": {:.2}, "train_s": {:.2}}}"#, f.step, f.epochs, f.train_s)
    });
    println!(
        r#"{{"model": "{}", "pente": "{}", "target": {}, "first_hit": {hit}, "test_acc": {:.4}, "samples_per_s": {:.1}}}"#,
        c.arch.name(),
        env!("CARGO_PKG_VERSION"),
        c.target,
        eval.accuracy,
        h.samples_per_s()
    );
    if figures {
        let arch = c.arch.name();
        let curves = out.join(format!("digits_{arch}_curves.svg"));
        let title =
            format!("{}: loss and accuracy per epoch (test accuracy {:.2} %)", c.describe(), 100.0 * eval.accuracy);
        figures::write_curves(&model.history, &title, &curves)?;
        write_test_figures(&model, &mnist.test, &eval, out)?;
        println!("wrote {} and the confusion, misclassified and weights figures beside it", curves.display());
    }
    Ok(())
}

fn write_test_figures(model: &DigitsModel, test: &Digits, eval: &train::Evaluation, out: &Path) -> Result<(), Error> {
    let arch = model.config.arch.name();
    let name = model.config.describe();
    figures::write_confusion(
        eval,
        &format!("{}: test confusion matrix ({:.2} %)", arch.to_uppercase(), 100.0 * eval.accuracy),
        &out.join(format!("digits_{arch}_confusion.svg")),
    )?;
    figures::write_misclassified(
        test,
        eval,
        96,
        &format!("{name}: misclassified test digits"),
        &out.join(format!("digits_{arch}_misclassified.svg")),
    )?;
    figures::write_first_layer(
        model,
        64,
        &format!("{name}: first layer's weights"),
        &out.join(format!("digits_{arch}_weights.svg")),
    )
}

/// A 28×28 input as text, two characters per pixel.
fn ascii_art(input: &[f32; PIXELS]) -> String {
    let mut s = String::new();
    for row in input.chunks(SIDE) {
        for &v in row {
            s.push_str(match v {
                v if v > 0.75 => "██",
                v if v > 0.5 => "▓▓",
                v if v > 0.25 => "▒▒",
                v if v > 0.05 => "░░",
                _ => "  ",
            });
        }
        s.push('\n');
    }
    s
}

/// The summary line of a training run, pente's or PyTorch's.
struct Summary {
    model: String,
    version: String,
    target: f64,
    samples_per_s: f64,
    train_s: Option<f64>,
}

/// Reads the last line holding `"samples_per_s"`; numbers are found by key (the two programs
/// print flat JSON objects with `first_hit` nested one level).
fn parse_summary(text: &str, path: &Path) -> Result<Summary, Error> {
    let bad = |what: &str| Error::Config(format!("{}: no {what} in a summary line", path.display()));
    let line = text.lines().rev().find(|l| l.contains("\"samples_per_s\"")).ok_or_else(|| bad("summary line"))?;
    let value = |key: &str| -> Option<&str> {
        let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
        let rest = line[at..].trim_start();
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim().trim_matches('"'))
    };
    let num = |key: &str| value(key).and_then(|v| v.parse::<f64>().ok());
    Ok(Summary {
        model: value("model").ok_or_else(|| bad("model"))?.to_string(),
        version: value("torch").or_else(|| value("pente")).unwrap_or("").to_string(),
        target: num("target").ok_or_else(|| bad("target"))?,
        samples_per_s: num("samples_per_s").ok_or_else(|| bad("samples_per_s"))?,
        train_s: if value("first_hit") == Some("null") { None } else { num("train_s") },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_of_both_programs_parse() {
        let torch = r#"{"epoch": 1, "test_acc": 0.97, "train_s": 1.5}
{"model": "mlp", "torch": "2.15.0", "target": 0.98, "first_hit": {"step": 2000, "epochs": 4.27, "train_s": 8.01}, "best_acc": 0.981, "samples_per_s": 39500.2}"#;
        let s = parse_summary(torch, Path::new("t")).expect("parses");
        assert_eq!((s.model.as_str(), s.version.as_str(), s.target), ("mlp", "2.15.0", 0.98));
        assert_eq!((s.samples_per_s, s.train_s), (39500.2, Some(8.01)));
        let pente = r#"{"model": "cnn", "pente": "0.1.0", "target": 0.99, "first_hit": null, "test_acc": 0.9891, "samples_per_s": 2000.0}"#;
        assert_eq!(parse_summary(pente, Path::new("p")).expect("parses").train_s, None);
        assert!(parse_summary("nothing", Path::new("x")).is_err());
    }
}
