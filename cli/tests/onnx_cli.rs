//! `pente export --onnx` and `pente inspect model.onnx` from the outside: the file is written
//! and summarized; bad requests exit 1 with one line naming what is wrong, and leave an
//! existing file as it was.

use std::process::Output;

mod common;
use common::{pente, temp_dir};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn attractor_exports_to_onnx_and_inspect_lists_the_graph() {
    let out = temp_dir("export-attractor");
    let out_s = out.to_str().expect("utf-8");
    let o = pente(&["--out", out_s, "attractor", "--hidden", "3;4,4", "--steps", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ckpt = out.join("attractor.ckpt");
    let model = out.join("m.onnx");
    let (ckpt_s, model_s) = (ckpt.to_str().expect("utf-8"), model.to_str().expect("utf-8"));
    let o = pente(&["export", "--onnx", model_s, "--load", ckpt_s, "--index", "1", "--batch", "7", "--test-data"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("m.test.safetensors").is_file());

    let o = pente(&["inspect", model_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for want in [
        "opset 18",
        "points: float [7, 2]",
        "logits: float [7, 5]",
        "MatMul               3",
        "Relu                 2",
        "size1.1.weight",
        "[4, 4]",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    assert!(!text.contains("size0."), "only the chosen model's weights:\n{text}");

    // A bad request fails with one line and leaves the file it would have replaced.
    let before = std::fs::read(&model).expect("the model");
    let o = pente(&["export", "--onnx", model_s, "--load", ckpt_s, "--index", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        "error: invalid configuration: --index 2: the file holds 2 attractor models (0 to 1)"
    );
    assert_eq!(std::fs::read(&model).expect("the model"), before);

    let o = pente(&["export", "--load", ckpt_s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--onnx FILE"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn inspect_of_a_file_that_is_not_onnx_is_a_one_line_error() {
    let out = temp_dir("inspect-onnx");
    let bad = out.join("bad.onnx");
    std::fs::write(&bad, b"\xff\xff\xff not protobuf").expect("writes");
    let o = pente(&["inspect", bad.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("bad.onnx") && err.contains("not an ONNX model") && err.lines().count() == 1, "{err}");
    let _ = std::fs::remove_dir_all(out);
}
