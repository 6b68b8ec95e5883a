//! `pente export` and `pente import`: a model out of pente and into it, in other frameworks'
//! formats. `--onnx` writes the inference graph as ONNX (`export_onnx.rs`); `--torch` the weights
//! as a PyTorch state dict in safetensors, PyTorch's names and layouts (see `models::torch`).

use std::path::PathBuf;

use clap::Args;
use models::Error;

use crate::export_onnx;

/// `pente export --onnx FILE | --torch FILE --load CKPT`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write the model's inference graph as ONNX (opset 18) to FILE.
    #[arg(long, value_name = "FILE")]
    pub onnx: Option<PathBuf>,
    /// Write the weights as a PyTorch state dict (safetensors) to FILE, loadable with
    /// `module.load_state_dict(safetensors.torch.load_file(FILE), strict=True)`.
    #[arg(long, value_name = "FILE")]
    pub torch: Option<PathBuf>,
    /// The saved model: a checkpoint of `pente attractor`, `pente digits train` or `pente
    /// char-lm train` (ONNX: the GPT only).
    #[arg(long, value_name = "FILE")]
    pub load: PathBuf,
    /// ONNX: the batch size the graph is traced at (fixed in the graph).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: u32,
    /// ONNX, GPT: the sequence length the graph is traced at [default: the model's block size].
    #[arg(long, value_name = "N")]
    pub seq_len: Option<usize>,
    /// ONNX, attractor: which of the file's models, by position in its --hidden list.
    #[arg(long, default_value_t = 0, value_name = "I")]
    pub index: usize,
    /// ONNX: also write sample inputs and pente's outputs for them beside the model, as
    /// FILE.test.safetensors (`input.NAME`, `output.NAME`), to check the export in another
    /// runtime.
    #[arg(long)]
    pub test_data: bool,
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

/// Runs `pente export`: each format asked for, ONNX first.
///
/// # Errors
/// As [`export_onnx::run`] and [`models::torch::export`]; [`Error::Config`] if no format is
/// asked for.
pub fn run_export(args: &ExportArgs, seed: u64) -> Result<(), Error> {
    if args.onnx.is_none() && args.torch.is_none() {
        return Err(Error::Config("pente export: say which format to write (--onnx FILE or --torch FILE)".into()));
    }
    if let Some(path) = &args.onnx {
        export_onnx::run(args, path, seed)?;
    }
    if let Some(out) = &args.torch {
        println!("{}", models::torch::export(&args.load, out)?);
    }
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
