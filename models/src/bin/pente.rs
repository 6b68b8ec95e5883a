//! `pente`: run pente's models, draw their figures, and inspect saved weights.
//!
//! ```text
//! pente curve-fit                 fit Galileo's fall times; writes out/curve_fit.svg
//! pente attractor --save m.ckpt   train the attractor classifiers; writes out/attractor.svg
//! pente figures                   activation functions, loss surface, a network learning
//! pente inspect m.ckpt            what a checkpoint or safetensors file holds
//! pente demo                      all of the above, quickly, into --out
//! ```
//!
//! Errors are printed as one line on stderr with a non-zero exit status; bad arguments get
//! clap's message (exit status 2).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use models::curve_fit::{self, CurveFitConfig};
use models::figures::{self, FiguresConfig};
use models::Error;

#[derive(Parser, Debug)]
#[command(
    name = "pente",
    version,
    about = "Run pente's models, draw their figures, inspect saved weights"
)]
struct Cli {
    /// Seed of every random draw (data, noise, initial weights).
    #[arg(long, global = true, default_value_t = 0)]
    seed: u64,
    /// Directory for figures and weights.
    #[arg(long, global = true, default_value = "out")]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fit a line and a parabola to fall times from the tower of Pisa by gradient descent.
    CurveFit(CurveFitArgs),
    /// Draw the training pictures: activations, a loss surface, a network learning a function.
    Figures(FiguresArgs),
    /// Run every model quickly and write all figures and weights to --out.
    Demo,
}

#[derive(Args, Debug)]
struct CurveFitArgs {
    /// Standard deviation of the timing noise, in seconds.
    #[arg(long, default_value_t = 0.05)]
    noise: f64,
    /// Timed drops per measured floor.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    drops: u16,
}

#[derive(Args, Debug)]
struct FiguresArgs {
    /// Training steps of the small network.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
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
            run_curve_fit(&config, &cli.out)
        }
        Command::Figures(args) => {
            let config = FiguresConfig {
                seed: cli.seed,
                steps: args.steps,
                ..Default::default()
            };
            run_figures(&config, &cli.out)
        }
        Command::Demo => {
            let start = Instant::now();
            run_curve_fit(
                &CurveFitConfig {
                    seed: cli.seed,
                    ..Default::default()
                },
                &cli.out,
            )?;
            run_figures(
                &FiguresConfig {
                    seed: cli.seed,
                    ..Default::default()
                },
                &cli.out,
            )?;
            println!(
                "demo done in {:.1} s; everything is in {}",
                start.elapsed().as_secs_f64(),
                cli.out.display()
            );
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

fn run_figures(config: &FiguresConfig, out: &Path) -> Result<(), Error> {
    for path in figures::write_all(config, out)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}
