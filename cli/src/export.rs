//! `pente export` and `pente import`: a model's weights out of pente and into it, in other
//! frameworks' formats. `--torch` is a PyTorch state dict in safetensors (PyTorch's names and
//! layouts; see `models::torch`).

use std::path::PathBuf;

use clap::Args;
use models::Error;

/// `pente export --torch OUT --load CKPT`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write the weights as a PyTorch state dict (safetensors) to FILE, loadable with
    /// `module.load_state_dict(safetensors.torch.load_file(FILE), strict=True)`.
    #[arg(long, value_name = "FILE")]
    pub torch: Option<PathBuf>,
    /// The pente checkpoint to export (digits, char-lm or attractor).
    #[arg(long, value_name = "FILE")]
    pub load: PathBuf,
}

/// `pente import --torch FILE --like CKPT --save OUT`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A PyTorch state dict saved with `safetensors.torch.save_file(module.state_dict(), FILE)`.
    #[arg(long, value_name = "FILE")]
    pub torch: PathBuf,
    /// A pente checkpoint of the same model (its configuration and, for char-lm, vocabulary),
    /// e.g. from a short `pente char-lm train` with the same flags; only its weights are replaced.
    #[arg(long, value_name = "FILE")]
    pub like: PathBuf,
    /// Where to write the pente checkpoint with the imported weights.
    #[arg(long, value_name = "FILE")]
    pub save: PathBuf,
}

/// Runs `pente export`.
///
/// # Errors
/// As [`models::torch::export`]; [`Error::Config`] if no format is asked for.
pub fn run_export(args: &ExportArgs) -> Result<(), Error> {
    let Some(out) = &args.torch else {
        return Err(Error::Config("pente export: say which format to write (--torch FILE)".into()));
    };
    println!("{}", models::torch::export(&args.load, out)?);
    Ok(())
}

/// Runs `pente import`.
///
/// # Errors
/// As [`models::torch::import`].
pub fn run_import(args: &ImportArgs) -> Result<(), Error> {
    println!("{}", models::torch::import(&args.torch, &args.like, &args.save)?);
    Ok(())
}
