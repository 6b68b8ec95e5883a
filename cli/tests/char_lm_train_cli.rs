//! `pente char-lm train --accumulate`, `--time-limit` and `--preset best` from the outside: the
//! errors name the flag, a time limit ends the run with its validation and checkpoint, and
//! flags given with the preset override it.

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

const LINE: &str = "to be, or not to be: that is the question.\n";

/// A directory holding a small corpus.
fn with_corpus(name: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, LINE.repeat(30)).expect("writable");
    (dir, corpus)
}

/// `pente --out DIR char-lm train` on a small GPT over `corpus`, with `extra` flags.
fn train(dir: &Path, corpus: &Path, extra: &[&str]) -> Output {
    let small = ["--n-embd", "16", "--n-head", "2", "--n-layer", "1", "--block", "8", "--sample-len", "0"];
    pente(
        &[&["--out", s(dir), "char-lm", "train", "--model", "gpt", "--corpus", s(corpus)][..], &small, extra].concat(),
    )
}

#[test]
fn accumulation_that_does_not_divide_the_batch_is_an_error_naming_both_flags() {
    let (dir, corpus) = with_corpus("accumulate-divide");
    let o = train(&dir, &corpus, &["--batch-size", "8", "--accumulate", "3", "--steps", "2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("--accumulate = 3 does not divide --batch-size 8"), "{err}");
    assert!(!dir.join("char_lm_gpt.ckpt").exists(), "nothing was trained or saved");
    let o = train(&dir, &corpus, &["--batch-size", "8", "--accumulate", "4", "--shards", "4", "--steps", "2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("4 shards for a micro-batch of 2 windows"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A limit of 0 s is reached by the first step on any machine: one step, then the final
/// validation and the checkpoint; resuming needs a larger limit, and then continues.
#[test]
fn a_time_limit_of_zero_takes_one_step_then_validates_and_saves() {
    let (dir, corpus) = with_corpus("time-limit");
    let ckpt = dir.join("run.ckpt");
    let o = train(
        &dir,
        &corpus,
        &["--batch-size", "4", "--accumulate", "2", "--steps", "30", "--time-limit", "0", "--save", s(&ckpt)],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("stopped by --time-limit 0 s after step 1 of 30"), "{out}");
    assert!(out.contains("validations and saves are off the clock"), "{out}");
    assert!(out.contains("over every full-length window; 1 steps"), "{out}");
    assert!(ckpt.exists(), "the checkpoint is written");

    let o = pente(&["--out", s(&dir), "char-lm", "train", "--resume", s(&ckpt), "--sample-len", "0"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("--time-limit 0: the run in") && err.contains("give a larger --time-limit"), "{err}");

    let o = pente(&[
        "--out",
        s(&dir),
        "char-lm",
        "train",
        "--resume",
        s(&ckpt),
        "--time-limit",
        "600",
        "--sample-len",
        "0",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("--time-limit 600 s overrides the checkpoint's 0 s"), "{out}");
    assert!(out.contains("over every full-length window; 30 steps"), "{out}");
    assert!(!out.contains("stopped by"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_best_preset_is_for_the_gpt_and_given_flags_override_it() {
    let (dir, corpus) = with_corpus("preset");
    let o =
        pente(&["--out", s(&dir), "char-lm", "train", "--preset", "best", "--model", "mlp", "--corpus", s(&corpus)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("--preset best is a recipe for --model gpt, not for --model mlp"), "{err}");

    // The preset's model with the small sizes given here, and its steps replaced by 2.
    let o = train(&dir, &corpus, &["--preset", "best", "--steps", "2", "--batch-size", "4"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    // vocabulary: the line's distinct characters and the unknown symbol
    let v = LINE.chars().collect::<std::collections::BTreeSet<_>>().len() + 1;
    let (e, b) = (16, 8);
    let params = v * e + b * e + 12 * e * e + 13 * e + 2 * e;
    assert!(out.contains(&format!("gpt: {params} parameters, vocabulary {v}, 2 steps of 4 windows")), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}
