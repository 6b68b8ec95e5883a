//! `pente digits` from the outside: a short training run on the real MNIST, then eval and
//! predict from the saved file alone; damaged data, pictures and mismatched checkpoints give a
//! one-line error and exit status 1, never a panic.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{pente, temp_dir};

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
}

#[test]
fn train_eval_predict_from_the_checkpoint_alone() {
    let out = temp_dir("run");
    let ckpt = out.join("mlp.ckpt");
    let o = pente(&[
        "--out",
        s(&out),
        "digits",
        "train",
        "--model",
        "mlp",
        "--max-steps",
        "60",
        "--data",
        s(&mnist_dir()),
        "--save",
        s(&ckpt),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("\"test_acc\": 0.") && stdout.contains("epoch  1:"), "{stdout}");
    for fig in ["curves", "confusion", "misclassified", "weights"] {
        assert!(out.join(format!("digits_mlp_{fig}.svg")).is_file(), "{fig}");
    }

    let o = pente(&["--out", s(&out), "digits", "eval", "--load", s(&ckpt)]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("per class:") && stdout.contains("confusion matrix"), "{stdout}");

    // A test image, 3× larger, dark ink on white: predicted as MNIST would be.
    let png = out.join("digit.png");
    write_test_digit_png(&png);
    let o = pente(&["digits", "predict", "--load", s(&ckpt), s(&png)]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.lines().filter(|l| l.contains(" %")).count(), 10, "{stdout}");
    assert!(stdout.contains("=> "), "{stdout}");

    // The MLP's file resumed as a CNN is a clear error.
    let o = pente(&["--out", s(&out), "digits", "train", "--model", "cnn", "--resume", s(&ckpt)]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("holds a mlp") && stderr.lines().count() == 1, "{stderr}");

    // A tuning flag given with --resume would be ignored (the file's settings win): refused as
    // a usage error naming each flag, and the checkpoint is left as it was.
    let before = std::fs::read(&ckpt).expect("the checkpoint");
    let o = pente(&["--out", s(&out), "digits", "train", "--resume", s(&ckpt), "--lr", "0.1", "--shift", "1"]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot be used with") && stderr.contains("--lr") && stderr.contains("--shift"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&ckpt).expect("the checkpoint"), before, "the refused resume changed the file");
    let _ = std::fs::remove_dir_all(&out);
}

/// Test image 0 of MNIST (a 7), upscaled 3× and inverted, as an 8-bit grey PNG.
fn write_test_digit_png(path: &Path) {
    use models::digits::idx::read_images;
    let images = read_images(&mnist_dir().join("t10k-images-idx3-ubyte.gz"), false).expect("MNIST is in data/");
    let mut px = vec![255u8; 84 * 84];
    for y in 0..84 {
        for x in 0..84 {
            px[y * 84 + x] = 255 - images.pixels[(y / 3) * 28 + x / 3];
        }
    }
    models::digits::image::write_png_grey(path, 84, 84, &px).expect("temp file");
}

#[test]
fn damaged_inputs_are_one_line_errors() {
    let dir = temp_dir("bad");
    // A data directory whose training labels are a truncated copy.
    let data = dir.join("mnist");
    std::fs::create_dir_all(&data).expect("temp dir");
    for f in ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(mnist_dir().join(f), data.join(f)).expect("copy");
    }
    let labels = std::fs::read(mnist_dir().join("train-labels-idx1-ubyte.gz")).expect("MNIST is in data/");
    std::fs::write(data.join("train-labels-idx1-ubyte.gz"), &labels[..labels.len() / 2]).expect("write");
    let o = pente(&["--out", s(&dir), "digits", "train", "--max-steps", "1", "--data", s(&data)]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("train-labels-idx1-ubyte.gz") && stderr.lines().count() == 1, "{stderr}");

    let junk = dir.join("junk.png");
    std::fs::write(&junk, b"GIF89a").expect("write");
    let o = pente(&["digits", "predict", "--load", s(&junk), s(&junk)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!text(&o).1.contains("panicked"));

    for args in
        [&["digits", "train", "--model", "rnn"][..], &["digits", "train", "--shift", "9"], &["digits", "predict"]]
    {
        let o = pente(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Flags given with a preset override it: `--eval-every 0` turns the test-accuracy probe off
/// (the fast preset probes every 50 steps by default), `--precision` is kept, not replaced by
/// the preset's f32, and so are the tuning flags (`--batch-size`, `--lr`).
#[test]
fn a_preset_keeps_the_flags_given() {
    let out = temp_dir("preset-flags");
    let data = mnist_dir();
    let run = |name: &str, extra: &[&str]| {
        let ckpt = out.join(name);
        let mut args = vec!["--out", s(&out), "digits", "train", "--preset", "fast", "--max-steps", "8"];
        args.extend_from_slice(&["--target", "0.05", "--no-figures", "--data", s(&data), "--save", s(&ckpt)]);
        args.extend_from_slice(extra);
        let o = pente(&args);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stdout}{stderr}");
        let saved = nn::Checkpoint::load(&ckpt).expect("the checkpoint loads");
        let config = saved.metadata.values().find(|v| v.contains("\"precision\"")).cloned().unwrap_or_default();
        (stdout, config)
    };
    let (probed, _) = run("probed.ckpt", &["--eval-every", "4"]);
    assert!(probed.contains("\"first_hit\": {"), "a probe every 4 steps sees 5 %: {probed}");
    let (quiet, config) =
        run("quiet.ckpt", &["--eval-every", "0", "--precision", "bf16", "--batch-size", "64", "--lr", "0.005"]);
    assert!(quiet.contains("\"first_hit\": null"), "--eval-every 0 still probed: {quiet}");
    let config = config.replace(' ', "");
    for (field, flag) in [
        ("\"precision\":\"bf16\"", "--precision bf16"),
        ("\"batch_size\":64", "--batch-size 64"),
        ("\"learning_rate\":0.005", "--lr 0.005"),
    ] {
        assert!(config.contains(field), "the preset dropped {flag}: {config}");
    }
    // The flags not given keep the preset's values: its one-cycle schedule, its batch norm.
    assert!(config.contains("\"one_cycle\":true") && config.contains("\"preset\":\"fast\""), "{config}");
    let _ = std::fs::remove_dir_all(&out);
}
