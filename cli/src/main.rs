//! `pente`: run pente's models, draw their figures, and inspect saved weights.
//!
//! ```text
//! pente curve-fit                  Galileo's fall times; writes OUT/curve_fit.svg
//! pente curve-fit --physics        also a network with d²h/dt² = −g in its loss; OUT/physics_fit.svg
//! pente attractor                  train the attractor classifiers; OUT/attractor.svg, .ckpt
//! pente attractor --load m.ckpt    evaluate and draw saved classifiers instead of training
//! pente figures                    activation functions, a loss surface, a network learning
//! pente digits train --model mlp   MNIST digits (also cnn); eval --load F, predict --load F IMG
//! pente char-lm train|sample|eval|next  character-level language model on Shakespeare
//! pente inspect m.ckpt             what a checkpoint or safetensors file holds (or m.onnx)
//! pente export --onnx m.onnx --load F  a saved model's inference graph as ONNX
//! pente export --torch F --load m  a checkpoint's weights as a PyTorch state dict (import: back)
//! pente demo                       all of the above, quickly, into OUT
//! ```
//!
//! `--seed` and `--out` (default `out/`) apply to every command. Errors are printed as one line
//! on stderr with exit status 1; bad arguments get clap's message and exit status 2.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use models::attractor::{self, AttractorConfig, AttractorModel};
use models::curve_fit::{self, CurveFitConfig};
use models::figures::{self, FiguresConfig};
use models::{inspect, progress_bar, Error};

mod export;
mod export_onnx;
mod inspect_onnx;

#[derive(Parser, Debug)]
#[command(name = "pente", version, about = "Run pente's models, draw their figures, inspect saved weights")]
struct Cli {
    /// Seed of every random draw (data, noise, initial weights, batch order).
    #[arg(long, global = true, default_value_t = 0)]
    seed: u64,
    /// Directory for figures and weights.
    #[arg(long, global = true, default_value = "out", value_name = "DIR")]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fit a line and a parabola to fall times from the tower of Pisa by gradient descent.
    CurveFit(CurveFitArgs),
    /// Train MLPs of growing size to tell which attractor of the plane is nearest.
    Attractor(AttractorArgs),
    /// Draw the training pictures: activations, a loss surface, a network learning a function.
    Figures(FiguresArgs),
    /// Train, sample and evaluate the character-level language models (bigram, MLP, GPT) on
    /// Shakespeare.
    CharLm(models::char_lm::cli::CharLmArgs),
    /// Show what a checkpoint or safetensors file holds: format, metadata, tensors and their
    /// statistics.
    Inspect {
        /// A pente checkpoint (recognized by its magic number), a `.safetensors` or an `.onnx` file.
        file: PathBuf,
    },
    /// MNIST digits: train the MLP or the CNN, evaluate a saved model, classify your own picture.
    Digits(models::digits::cli::DigitsArgs),
    /// Run every model quickly and write all figures and weights to --out.
    Demo,
    /// Measure the standard workloads (gemm, mlp-mnist, char-gpt, scalar-mlp, digits-cnn, gpt-10m; see bench/README.md).
    Bench(BenchArgs),
    /// Write a saved model in another format: its inference graph as ONNX (--onnx FILE; the
    /// attractor, digits MLP or CNN, char-lm GPT) or its weights as a PyTorch state dict
    /// (--torch FILE).
    Export(export::ExportArgs),
    /// Read weights from another framework into a pente checkpoint: --torch FILE --like CKPT.
    Import(export::ImportArgs),
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Which workload: gemm, mlp-mnist, char-gpt, scalar-mlp, digits-cnn, gpt-10m or all.
    #[arg(long, default_value = "all", value_parser = workloads)]
    workload: Workloads,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    json: bool,
    /// Under `mpirun` (built with the `mpi` feature): gradients are all-reduced in buckets of
    /// this many KiB as backward finishes them (0: all at once after backward).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(..=1 << 20))]
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    bucket_kib: u32,
    /// The precision of the workloads' matrix products (repeat for both: `--precision f32
    /// --precision bf16`); bf16 figures are named `pente-bf16`.
    #[arg(long, value_parser = models::precision::parse, value_name = "f32|bf16", default_value = "f32")]
    precision: Vec<autograd::precision::Precision>,
}

/// `--workload NAME|all`.
#[derive(Clone, Debug)]
struct Workloads(Vec<models::bench::Workload>);

fn workloads(s: &str) -> Result<Workloads, String> {
    use models::bench::Workload;
    if s == "all" {
        return Ok(Workloads(Workload::ALL.to_vec()));
    }
    Workload::parse(s).map(|w| Workloads(vec![w])).ok_or_else(|| {
        let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        format!("unknown workload {s:?}; expected one of {} or all", names.join(", "))
    })
}

#[derive(Args, Debug)]
struct CurveFitArgs {
    /// Standard deviation of the timing noise, in seconds.
    #[arg(long, default_value_t = CurveFitConfig::default().noise_std, value_parser = non_negative)]
    noise: f64,
    /// Timed drops per measured floor (1 to 1000).
    #[arg(long, default_value_t = CurveFitConfig::default().drops_per_floor as u16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    drops: u16,
    /// Also train a network with d²h/dt² = −g in its loss on the same drops, compare it with the
    /// quadratic at the unmeasured floors, and draw OUT/physics_fit.svg.
    #[arg(long)]
    physics: bool,
}

#[derive(Args, Debug)]
struct AttractorArgs {
    /// Hidden-layer widths of each model: models separated by `;`, layers by `,`.
    #[arg(long, default_value_t = HiddenSizes(AttractorConfig::default().hidden_sizes), value_parser = hidden_sizes)]
    hidden: HiddenSizes,
    /// Number of attractors (2 to 8).
    #[arg(long, default_value_t = AttractorConfig::default().attractors as u8, value_parser = clap::value_parser!(u8).range(2..=8))]
    attractors: u8,
    /// Optimizer steps per model (at most 10 million).
    #[arg(long, default_value_t = AttractorConfig::default().steps as u32, value_parser = clap::value_parser!(u32).range(..=10_000_000))]
    steps: u32,
    /// Labelled training points (1 to 10 million).
    #[arg(long, default_value_t = AttractorConfig::default().train_points as u32, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    train: u32,
    /// Activation between layers: relu, tanh, sigmoid, gelu, gelu_tanh, softplus, identity.
    #[arg(long, default_value = attractor::activation_name(AttractorConfig::default().activation))]
    activation: String,
    /// Where to write the trained weights [default: OUT/attractor.ckpt].
    #[arg(long, value_name = "FILE", conflicts_with = "load")]
    save: Option<PathBuf>,
    /// Load saved weights instead of training (the sizes and attractors come from the file).
    #[arg(long, value_name = "FILE")]
    load: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct FiguresArgs {
    /// Training steps of the small network (at most 10 million).
    #[arg(long, default_value_t = FiguresConfig::default().steps as u32, value_parser = clap::value_parser!(u32).range(..=10_000_000))]
    steps: u32,
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a finite non-negative number")),
    }
}

/// `--hidden "1;8;32,32"`: one value holding every model's widths.
#[derive(Clone, Debug)]
struct HiddenSizes(Vec<Vec<usize>>);

impl std::fmt::Display for HiddenSizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&attractor::format_hidden_sizes(&self.0))
    }
}

fn hidden_sizes(s: &str) -> Result<HiddenSizes, String> {
    attractor::parse_hidden_sizes(s).map(HiddenSizes).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    report_unwritable_output();
    // The first tape would make the main thread a worker of rayon's pool (see
    // `autograd::threads`); the data loaders use rayon before any tape exists, so join first.
    autograd::threads::join_global_pool();
    let cli = Cli::parse();
    #[cfg(feature = "mpi")]
    if nn::comm::MpiCommunicator::launched() {
        return run_across_processes(&cli);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs under `mpirun`: `char-lm train` and `digits train` data-parallel across the processes (rank 0 prints and
/// saves), other commands on rank 0 alone. An error on any rank ends every rank, naming it
/// (`MPI_Abort`), so that no rank waits forever for one that has stopped.
#[cfg(feature = "mpi")]
fn run_across_processes(cli: &Cli) -> ExitCode {
    use nn::comm::{Communicator, MpiCommunicator};
    let Some(comm) = MpiCommunicator::init().map(std::sync::Arc::new) else {
        eprintln!("error: MPI could not be initialized");
        return ExitCode::FAILURE;
    };
    let result = match &cli.command {
        Command::CharLm(args) => models::char_lm::cli::run_across(args, cli.seed, &cli.out, comm.clone()),
        Command::Digits(args) => models::digits::cli::run_across(args, cli.seed, &cli.out, comm.clone()),
        Command::Bench(args) => {
            let comm: std::sync::Arc<dyn Communicator> = comm.clone();
            let bucket_bytes = args.bucket_kib as usize * 1024;
            for workload in &args.workload.0 {
                for (m, s) in models::bench::across::run_across(*workload, &comm, bucket_bytes) {
                    if comm.rank() == 0 {
                        println!("{}", if args.json { m.to_json() } else { m.to_string() });
                        let per_step = |x: f64| 1e3 * x / s.steps as f64;
                        eprintln!(
                            "  all-reduce {:.2} ms/step, {:.0} % hidden behind backward ({:.2} ms/step), {:.2} ms/step exposed, {} buckets/step",
                            per_step(s.reduce_seconds),
                            100.0 * s.overlap(),
                            per_step(s.backward_seconds),
                            per_step(s.exposed_seconds),
                            s.buckets / s.steps.max(1)
                        );
                    }
                }
            }
            // The communication alone: one all-reduce of char-gpt's gradients (809,856 f32).
            let seconds = models::bench::across::all_reduce_seconds(&*comm, 809_856, 20);
            if comm.rank() == 0 {
                eprintln!("  all-reduce of 809,856 f32 alone: {:.2} ms (median of 20)", 1e3 * seconds);
            }
            Ok(())
        }
        _ if comm.rank() == 0 => run(cli),
        _ => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if comm.world_size() > 1 => comm.abort(&format!("error: {e}")),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Turns a failed write to standard output or error (`pente … > /dev/full`, a full disk) into
/// an error message and exit status 1, where `println!` would panic ("failed printing to
/// stdout") and print a panic report. Other panics keep the default report.
fn report_unwritable_output() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(reason) = message.strip_prefix("failed printing to ") {
            // Standard error may be the unwritable one: then this message is lost too, and the
            // exit status says it.
            let _ = writeln!(std::io::stderr(), "error: cannot write to {reason}");
            std::process::exit(1);
        }
        default(info);
    }));
}

/// Lets a closed output pipe end the process quietly, as it ends other command-line tools
/// (`pente bench --json | head -1`): Rust starts programs with SIGPIPE ignored, so a write to a
/// closed pipe fails and `println!` panics on it. This restores the default action (the process
/// exits on the signal, silently).
fn quiet_on_closed_pipe() {
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    {
        /// SIGPIPE's number on Linux and macOS.
        const SIGPIPE: i32 = 13;
        /// `SIG_DFL`, the default action, is the null handler.
        const SIG_DFL: usize = 0;
        extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        // SAFETY: `signal(SIGPIPE, SIG_DFL)` only resets one signal's disposition to the
        // default (no handler of ours runs, so no async-signal-safety question arises);
        // `sighandler_t` is a pointer-sized value on these targets, so `usize` matches its ABI.
        // Called first thing in main, before any other thread exists. Exercised by the CLI test
        // `closed_stdout_ends_quietly`.
        unsafe {
            signal(SIGPIPE, SIG_DFL);
        }
    }
}

fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::CurveFit(args) => {
            let config = CurveFitConfig {
                seed: cli.seed,
                noise_std: args.noise,
                drops_per_floor: usize::from(args.drops),
                ..Default::default()
            };
            run_curve_fit(&config, &cli.out)?;
            if args.physics {
                run_physics_fit(&config, &cli.out)?;
            }
            Ok(())
        }
        Command::Attractor(args) => {
            if let Some(path) = &args.load {
                let model = AttractorModel::load(path)?;
                println!(
                    "loaded {} ({} models, trained {} steps each)",
                    path.display(),
                    model.mlps.len(),
                    model.steps_trained
                );
                return report_attractor(&model, &model.evaluate(), &cli.out);
            }
            let config = AttractorConfig {
                seed: cli.seed,
                hidden_sizes: args.hidden.0.clone(),
                attractors: usize::from(args.attractors),
                steps: args.steps as usize,
                train_points: args.train as usize,
                activation: attractor::parse_activation(&args.activation)?,
                ..Default::default()
            };
            config
                .validate()
                .map_err(|e| Error::Config(e.as_flag(&[("hidden_sizes", "--hidden"), ("train_points", "--train")])))?;
            let save = args.save.clone().unwrap_or_else(|| attractor::default_weights_path(&cli.out));
            run_attractor(&config, &cli.out, &save)
        }
        Command::Figures(args) => {
            let config = FiguresConfig { seed: cli.seed, steps: args.steps as usize, ..Default::default() };
            run_figures(&config, &cli.out)
        }
        Command::Digits(args) => models::digits::cli::run(args, cli.seed, &cli.out),
        Command::Bench(args) => {
            for workload in &args.workload.0 {
                for m in args.precision.iter().flat_map(|&precision| workload.run_at(precision)) {
                    if args.json {
                        println!("{}", m.to_json());
                    } else {
                        println!("{m}");
                    }
                }
            }
            Ok(())
        }
        Command::CharLm(args) => models::char_lm::cli::run(args, cli.seed, &cli.out),
        Command::Inspect { file } if inspect_onnx::is_onnx(file) => inspect_onnx::run(file),
        Command::Export(args) => export::run_export(args, cli.seed),
        Command::Import(args) => export::run_import(args),
        Command::Inspect { file } => {
            print!("{}", inspect::inspect(file)?);
            Ok(())
        }
        Command::Demo => {
            let start = Instant::now();
            println!("== curve fit");
            run_curve_fit(&CurveFitConfig { seed: cli.seed, ..Default::default() }, &cli.out)?;
            println!("\n== attractor");
            let config = AttractorConfig { seed: cli.seed, ..Default::default() };
            let weights = attractor::default_weights_path(&cli.out);
            run_attractor(&config, &cli.out, &weights)?;
            println!("\n== training pictures");
            run_figures(&FiguresConfig { seed: cli.seed, ..Default::default() }, &cli.out)?;
            println!("\n== digits (the MLP for 150 steps, a third of an epoch)");
            models::digits::cli::demo(cli.seed, &cli.out, 150)?;
            println!("\n== char-lm");
            models::char_lm::cli::demo(cli.seed, &cli.out)?;
            println!("\n== inspect {}", weights.display());
            print!("{}", inspect::inspect(&weights)?);
            println!("\ndemo done in {:.1} s; everything is in {}", start.elapsed().as_secs_f64(), cli.out.display());
            Ok(())
        }
    }
}

fn run_curve_fit(config: &CurveFitConfig, out: &Path) -> Result<(), Error> {
    let report = curve_fit::fit(config)?;
    print!("{}", report.summary());
    let path = out.join("curve_fit.svg");
    report.write_figure(&path)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn run_physics_fit(config: &CurveFitConfig, out: &Path) -> Result<(), Error> {
    let report = models::physics_fit::fit(config, &Default::default())?;
    print!("{}", report.summary());
    let path = out.join("physics_fit.svg");
    report.write_figure(&path)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn run_attractor(config: &AttractorConfig, out: &Path, save: &Path) -> Result<(), Error> {
    let mut model = AttractorModel::new(config)?;
    let bar = progress_bar((config.steps as u64).saturating_mul(config.hidden_sizes.len() as u64), "training");
    let results = model.train(&bar);
    bar.finish_and_clear();
    let safetensors = attractor::export_path(save)?;
    model.save(save)?;
    println!("wrote {}", save.display());
    let meta = [("model".to_string(), attractor::MODEL_NAME.to_string())].into_iter().collect();
    nn::safetensors::export(&model.store, &safetensors, &meta)?;
    println!("wrote {}", safetensors.display());
    report_attractor(&model, &results, out)
}

fn report_attractor(model: &AttractorModel, results: &[attractor::SizeResult], out: &Path) -> Result<(), Error> {
    print!("{}", attractor::summary(results, model.attractors.len()));
    let path = out.join("attractor.svg");
    model.write_figure(results, &path)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn run_figures(config: &FiguresConfig, out: &Path) -> Result<(), Error> {
    for path in figures::write_all(config, out)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}
