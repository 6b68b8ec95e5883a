//! Helpers shared by the CLI test binaries.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `pente` binary with `args` and collects its output.
pub fn pente(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pente")).args(args).output().expect("the pente binary runs")
}

/// A fresh directory for one test, unique to this process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pente-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir
}
