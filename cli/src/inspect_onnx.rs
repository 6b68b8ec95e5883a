//! `pente inspect model.onnx`: the inputs, outputs, ops (with counts) and initializers (with
//! shapes) of an ONNX model.

use std::path::Path;

use models::Error;

/// Whether `path` names an ONNX model (by its `.onnx` extension).
pub fn is_onnx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Prints the summary of the ONNX model at `path`.
///
/// # Errors
/// The file cannot be read or is not an ONNX model.
pub fn run(path: &Path) -> Result<(), Error> {
    let model = onnx::load(path).map_err(crate::export_onnx::onnx_error)?;
    print!("{}", onnx::inspect::describe(&model));
    Ok(())
}
