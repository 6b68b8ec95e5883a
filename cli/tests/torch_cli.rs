//! `pente export --torch` and `pente import --torch`: a checkpoint's weights out as a PyTorch
//! state dict and back into a checkpoint, unchanged; bad use gets an error that says what is wrong.

use std::path::Path;

mod common;
use common::{pente, temp_dir};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures").join(name).display().to_string()
}

fn ok(args: &[&str]) -> String {
    let out = pente(args);
    assert!(out.status.success(), "pente {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn export_then_import_gives_back_the_same_state_dict() {
    let dir = temp_dir("torch-round-trip");
    let s = |name: &str| dir.join(name).display().to_string();
    let ckpt = fixture("attractor.ckpt");
    let out = ok(&["export", "--torch", &s("a.safetensors"), "--load", &ckpt]);
    assert!(out.contains("PyTorch names and layouts"), "{out}");
    ok(&["import", "--torch", &s("a.safetensors"), "--like", &ckpt, "--save", &s("b.ckpt")]);
    ok(&["export", "--torch", &s("b.safetensors"), "--load", &s("b.ckpt")]);
    let (a, b) = (nn::safetensors::import(s("a.safetensors")), nn::safetensors::import(s("b.safetensors")));
    let (a, b) = (a.expect("reads").0, b.expect("reads").0);
    assert!(a.contains_key("size0.0.weight"), "{:?}", a.keys());
    assert_eq!(a, b);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn export_without_a_format_and_import_of_a_foreign_state_dict_say_what_is_wrong() {
    let dir = temp_dir("torch-errors");
    let out = pente(&["export", "--load", &fixture("attractor.ckpt")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: invalid configuration: pente export: say which format to write (--onnx FILE or --torch FILE)"
    );

    let save = dir.join("never.ckpt");
    let out = pente(&[
        "import",
        "--torch",
        &fixture("torch/gpt.safetensors"),
        "--like",
        &fixture("attractor.ckpt"),
        "--save",
        &save.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the state dict does not fit the model") && err.contains("missing `size0.0.weight`"), "{err}");
    assert!(!save.exists(), "a failed import wrote {}", save.display());
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
