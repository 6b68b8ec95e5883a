//! The `pente` binary from the outside: bad arguments and damaged files give a clear message and
//! a non-zero exit, never a panic; the commands write what they promise.

use std::process::Output;

mod common;
use common::{pente, temp_dir};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_no_panic(o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_arguments_exit_non_zero_with_a_message() {
    for args in [
        &["no-such-command"][..],
        &["curve-fit", "--noise", "-1"],
        &["curve-fit", "--drops", "0"],
        &["attractor", "--hidden", "8;x"],
        &["attractor", "--attractors", "1"],
        &["attractor", "--steps", "many"],
        &["attractor", "--steps", "18446744073709551615"],
        &["figures", "--steps", "-1"],
        &["--seed", "-3", "figures"],
        &["inspect"],
    ] {
        let o = pente(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error"), "{args:?}: {}", stderr(&o));
        assert_no_panic(&o);
    }
}

#[test]
fn unknown_activation_is_a_one_line_error() {
    let out = temp_dir("act");
    let o = pente(&["--out", out.to_str().expect("utf-8"), "attractor", "--activation", "swish", "--steps", "1"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown activation \"swish\""), "{err}");
}

#[test]
fn inspect_of_a_corrupt_or_missing_file_is_a_one_line_error() {
    let dir = temp_dir("corrupt");
    let garbage = dir.join("garbage.ckpt");
    std::fs::write(&garbage, b"this is not a checkpoint at all").expect("writable");
    let truncated = dir.join("truncated.ckpt");
    std::fs::write(&truncated, b"PENTECKP\x01\x00\x00\x00").expect("writable");
    let bad_st = dir.join("bad.safetensors");
    std::fs::write(&bad_st, [0xFFu8; 20]).expect("writable");
    let missing = dir.join("missing.ckpt");
    for (path, expect) in [
        (&garbage, "not a pente checkpoint"),
        (&truncated, "truncated"),
        (&bad_st, "safetensors"),
        (&missing, "missing.ckpt"),
    ] {
        let o = pente(&["inspect", path.to_str().expect("utf-8")]);
        assert_eq!(o.status.code(), Some(1), "{path:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(expect), "{err}");
        assert_no_panic(&o);
    }
}

#[test]
fn attractor_saves_loads_and_inspects() {
    let out = temp_dir("attractor");
    let out_s = out.to_str().expect("utf-8");
    let nested = out.join("new/dir/m.ckpt");
    let o = pente(&[
        "--out",
        out_s,
        "attractor",
        "--hidden",
        "2;4,4",
        "--steps",
        "30",
        "--save",
        nested.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success() && nested.is_file(), "{}", stderr(&o));
    let o = pente(&["--out", out_s, "attractor", "--hidden", "2;4,4", "--steps", "30"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["attractor.ckpt", "attractor.safetensors", "attractor.svg"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let ckpt = out.join("attractor.ckpt");
    let o = pente(&["--out", out_s, "attractor", "--load", ckpt.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 → 4 → 4 → 5"));

    for f in ["attractor.ckpt", "attractor.safetensors"] {
        let o = pente(&["inspect", out.join(f).to_str().expect("utf-8")]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("size1.1.weight") && text.contains("[4, 4]"), "{text}");
    }

    // A checkpoint of something else loads, but is not an attractor model.
    let curve = out.join("curve_fit.svg");
    let o = pente(&["--out", out_s, "attractor", "--load", curve.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn curve_fit_prints_both_fits_and_writes_its_figure() {
    let out = temp_dir("curve");
    let o = pente(&["--out", out.to_str().expect("utf-8"), "curve-fit"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("linear") && text.contains("quadratic") && text.contains("RMSE"), "{text}");
    let svg = std::fs::read_to_string(out.join("curve_fit.svg")).expect("figure written");
    assert!(svg.starts_with("<svg"));
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn closed_stdout_ends_quietly() {
    // `pente … | head -1`: the reader is gone before pente writes. pente must stop without a
    // panic message (Rust's default would panic in `println!` on the broken pipe).
    use std::process::{Command, Stdio};
    let out = common::temp_dir("closed-stdout");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pente"))
        .args(["--out", out.to_str().expect("utf-8 path"), "curve-fit"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the pente binary runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("pente finishes");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!err.contains("panicked"), "pente panicked on a closed stdout: {err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // Ended by SIGPIPE (13), or finished if it wrote nothing before exiting.
        assert!(output.status.success() || output.status.signal() == Some(13), "{:?}: {err}", output.status);
    }
}

#[test]
#[cfg(target_os = "linux")]
fn a_full_stdout_is_an_error_not_a_panic() {
    // `pente … > /dev/full`: every write fails with "no space left on device".
    use std::process::{Command, Stdio};
    let out = common::temp_dir("full-stdout");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full exists on Linux");
    let output = Command::new(env!("CARGO_BIN_EXE_pente"))
        .args(["--out", out.to_str().expect("utf-8 path"), "curve-fit"])
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .expect("the pente binary runs");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!err.contains("panicked"), "pente panicked on a full stdout: {err}");
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("error: cannot write to stdout"), "{err}");
}

#[test]
fn size_flags_past_their_bound_exit_2_naming_the_flag_and_the_limit() {
    for (args, expect) in [
        (&["char-lm", "train", "--n-embd", "1099511627776"][..], "1..=65536"),
        (&["char-lm", "train", "--block", "100000000"], "1..=16384"),
        (&["char-lm", "train", "--model", "mlp", "--hidden", "100000000000"], "1..=65536"),
        (&["char-lm", "train", "--sample-len", "100000000000"], "..=10000000"),
        (&["char-lm", "train", "--sample-len", "1e11"], "--sample-len"),
        (&["char-lm", "train", "--shards", "4096"], "1..=256"),
        (&["char-lm", "train", "--steps", "1000000000"], "1..=100000000"),
        (&["char-lm", "sample", "--load", "x.ckpt", "--len", "100000000000"], "..=10000000"),
        (&["digits", "train", "--epochs", "100000"], "1..=1000"),
    ] {
        let o = pente(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(args[args.len() - 2]) && err.contains(expect), "{args:?}: {err}");
        assert_no_panic(&o);
    }
}

#[test]
fn sizes_that_fit_their_flags_but_not_memory_exit_1_naming_the_flag() {
    let out = temp_dir("memory");
    let out_s = out.to_str().expect("utf-8");
    for (args, expect) in [
        (
            &["char-lm", "train", "--batch-size", "1000000"][..],
            "--batch-size = 1000000 makes one step's activations need",
        ),
        (
            &["char-lm", "train", "--model", "mlp", "--context", "16384", "--n-embd", "65536", "--hidden", "65536"],
            "--hidden = 65536 makes the parameters and their optimizer state need",
        ),
        (&["attractor", "--hidden", "60000,60000"], "--hidden = 60000 makes the parameters"),
        (&["attractor", "--hidden", "100000,100000"], "--hidden 100000,100000: width 100000 is not in 1 to 65536"),
    ] {
        let o = pente(&[&["--out", out_s][..], args].concat());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(expect) && err.contains("GiB") != expect.contains("width"), "{args:?}: {err}");
        assert_no_panic(&o);
    }
    let _ = std::fs::remove_dir_all(out);
}
