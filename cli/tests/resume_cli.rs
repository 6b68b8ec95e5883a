//! `pente char-lm train --resume` from the outside: the checkpoint records the corpus (its
//! SHA-256), the save cadence and the training configuration; a resumed run continues on its
//! own corpus, can be extended, and prints every flag that overrides the file; model flags are
//! refused with --resume.

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

/// A directory with a small corpus and a bigram run of `steps` steps saved to `run.ckpt`
/// (with `extra` flags).
fn trained(name: &str, steps: &str, extra: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, "to be, or not to be: that is the question.\n".repeat(30)).expect("writable");
    let ckpt = dir.join("run.ckpt");
    let args = [
        &["--out", s(&dir), "char-lm", "train", "--model", "bigram", "--corpus", s(&corpus)][..],
        &["--steps", steps, "--save", s(&ckpt), "--sample-len", "0"],
        extra,
    ]
    .concat();
    let o = pente(&args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    (dir, corpus, ckpt)
}

fn inspect(ckpt: &Path) -> String {
    let o = pente(&["inspect", s(ckpt)]);
    assert!(o.status.success());
    text(&o).0
}

#[test]
fn a_resumed_run_refuses_another_corpus() {
    let (dir, _, ckpt) = trained("resume-corpus", "4", &[]);
    let other = dir.join("other.txt");
    std::fs::write(&other, "something else entirely, with other words in it.\n".repeat(30)).expect("writable");
    let o = pente(&["--out", s(&dir), "char-lm", "train", "--resume", s(&ckpt), "--steps", "8", "--corpus", s(&other)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("corpus.txt") && err.contains("other.txt") && err.contains("sha256"), "{err}");
    assert!(err.contains("a run continues on its own corpus"), "{err}");
    assert!(inspect(&ckpt).contains("step:      4"), "the checkpoint is untouched");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_resumed_run_finds_its_corpus_extends_to_more_steps_and_prints_overrides() {
    let (dir, _, ckpt) = trained("resume-extend", "4", &[]);
    // No --corpus: the run's own, recorded in the checkpoint (the default corpus would differ).
    let o = pente(&["--out", s(&dir), "char-lm", "train", "--resume", s(&ckpt), "--steps", "8", "--lr", "0.1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("--steps 8 overrides the checkpoint's 4"), "{out}");
    assert!(out.contains("--lr 0.1 overrides the checkpoint's 0.5"), "{out}");
    let saved = inspect(&ckpt);
    assert!(saved.contains("step:      8") && saved.contains("\"learning_rate\":0.1"), "{saved}");
    // Fewer steps than the run has taken is an error, not a silent no-op.
    let o = pente(&["--out", s(&dir), "char-lm", "train", "--resume", s(&ckpt), "--steps", "6"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("--steps 6: the run in") && err.contains("already at step 8"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_save_cadence_is_kept_across_a_resume() {
    let (dir, _, ckpt) = trained("resume-cadence", "4", &["--save-every", "2"]);
    assert!(inspect(&ckpt).contains("\"save_every\":2"));
    let o = pente(&["--out", s(&dir), "char-lm", "train", "--resume", s(&ckpt), "--steps", "6"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(!out.contains("--save-every"), "no override was given: {out}");
    assert!(inspect(&ckpt).contains("\"save_every\":2"), "still 2 after the resumed run");
    let o = pente(&["--out", s(&dir), "char-lm", "train", "--resume", s(&ckpt), "--steps", "7", "--save-every", "5"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("--save-every 5 overrides the checkpoint's 2"), "{out}");
    assert!(inspect(&ckpt).contains("\"save_every\":5"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn model_flags_conflict_with_resume() {
    for flag in [&["--model", "mlp"][..], &["--n-embd", "32"], &["--block", "16"], &["--strict-vocab"]] {
        let o = pente(&[&["char-lm", "train", "--resume", "x.ckpt"][..], flag].concat());
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{flag:?}: {err}");
        assert!(err.contains(flag[0]) && err.contains("cannot be used with"), "{flag:?}: {err}");
    }
}
