//! `pente bench`'s measurements as a user's crate gets them: the workloads run through pente's
//! public API from a plain `fn main` (no thread pool set up, no allocator tuning), in a binary
//! built with `cargo build --release` and nothing else. Prints one JSON object per line, as
//! `pente bench --json` does, with `user-crate` where that prints `pente`.
//!
//! ```text
//! user-crate [WORKLOAD...]    (default: mlp-mnist char-gpt digits-cnn)
//! ```

use std::process::ExitCode;

use pente::models::bench::{Measurement, Workload};

/// The workloads run when none is named.
const DEFAULT: [&str; 3] = ["mlp-mnist", "char-gpt", "digits-cnn"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: user-crate [WORKLOAD...]  (default: {})", DEFAULT.join(" "));
        return ExitCode::SUCCESS;
    }
    let names: Vec<&str> = if args.is_empty() { DEFAULT.to_vec() } else { args.iter().map(String::as_str).collect() };
    let mut workloads = Vec::with_capacity(names.len());
    for name in names {
        match Workload::parse(name) {
            Some(w) => workloads.push(w),
            None => {
                let known: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
                eprintln!("error: unknown workload {name:?}; expected one of {}", known.join(", "));
                return ExitCode::FAILURE;
            }
        }
    }
    for workload in workloads {
        for m in workload.run() {
            println!("{}", relabel(m).to_json());
        }
    }
    ExitCode::SUCCESS
}

/// The measurement under this crate's name: `pente` becomes `user-crate`, `pente-1tape`
/// `user-crate-1tape`; reference runs in the same process (`gemm-crate`, `fma-peak`) keep theirs.
fn relabel(mut m: Measurement) -> Measurement {
    m.implementation = match m.implementation {
        "pente" => "user-crate",
        "pente-1tape" => "user-crate-1tape",
        other => other,
    };
    m
}
