//! The ablation of `pente digits train --preset fast`: the recipe, then the recipe with one
//! choice removed or changed at a time, each trained from seed 0 (or the seeds given) with the
//! test accuracy probed every 50 steps; prints a Markdown table of the steps and epochs to the
//! first 99 % test accuracy, the training seconds to it (indicative on a loaded machine), and
//! the best test accuracy measured at an epoch's end within the budget.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p pente-models --example digits_fast_ablation -- [VARIANT…] [--seeds N]
//! ```
//!
//! Variants: recipe, no-batch-norm, constant-lr, cosine, width-8, width-32, batch-256,
//! two-epochs, shift-1 (all of them when none is named). Reads MNIST from `data/mnist`.

use indicatif::ProgressBar;
use models::digits::{evaluate, train, Arch, DigitsConfig, DigitsModel, Mnist};

/// A variant: its name, what it changes, and the change.
type Variant = (&'static str, &'static str, fn(&mut DigitsConfig));

/// The variants.
const VARIANTS: &[Variant] = &[
    ("recipe", "the fast preset as shipped", |_| {}),
    ("no-batch-norm", "no batch norm (convolutions with biases)", |c| c.batch_norm = false),
    ("constant-lr", "constant rate at the peak, no one-cycle", |c| {
        c.one_cycle = false;
        c.cosine = false;
    }),
    ("cosine", "cosine decay from the peak (no warm-up) instead of one-cycle", |c| c.one_cycle = false),
    ("width-8", "8, 16, 32 channels", |c| c.width = 8),
    ("width-32", "32, 64, 128 channels", |c| c.width = 32),
    ("batch-256", "batches of 256 (same peak rate)", |c| c.batch_size = 256),
    ("two-epochs", "the schedule over two epochs", |c| c.epochs = 2),
    ("shift-1", "augmentation: shifts of up to 1 pixel", |c| c.shift = 1),
];

fn main() -> Result<(), models::Error> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds = 1u64;
    if let Some(at) = args.iter().position(|a| a == "--seeds") {
        seeds = args
            .get(at + 1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| models::Error::Config("--seeds takes a positive number".into()))?;
        args.drain(at..at + 2);
    }
    for a in &args {
        if !VARIANTS.iter().any(|v| v.0 == a) {
            let names: Vec<&str> = VARIANTS.iter().map(|v| v.0).collect();
            return Err(models::Error::Config(format!("unknown variant {a:?} ({})", names.join(", "))));
        }
    }
    let base = DigitsConfig::fast(Arch::Cnn);
    let mnist = Mnist::load(&base.data_dir, true)?;
    println!(
        "| variant | change | seed | steps to 99 % | epochs to 99 % | train s to 99 % | best epoch-end test acc |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, what, change) in VARIANTS.iter().filter(|v| args.is_empty() || args.iter().any(|a| a == v.0)) {
        for seed in 0..seeds {
            let mut config = DigitsConfig { seed, ..base.clone() };
            change(&mut config);
            let mut model = DigitsModel::new(&config)?;
            let mut best = 0.0f64;
            let test = mnist.test.clone();
            train::train(&mut model, &mnist, None, &ProgressBar::hidden(), &mut |m, _, _| {
                best = best.max(evaluate(m, &test).accuracy);
                Ok(())
            })?;
            let hit = model.history.first_hit;
            let (steps, epochs, secs) = match hit {
                Some(h) => (h.step.to_string(), format!("{:.2}", h.epochs), format!("{:.1}", h.train_s)),
                None => ("not reached".into(), "—".into(), "—".into()),
            };
            println!("| {name} | {what} | {seed} | {steps} | {epochs} | {secs} | {:.2} % |", 100.0 * best);
        }
    }
    Ok(())
}
