//! `pente char-lm next`: the ranked table of next characters and words, its JSON form, and a
//! prompt outside the vocabulary, on a bigram trained in a second on a tiny text.

mod common;

use std::path::{Path, PathBuf};

use common::{pente, temp_dir};

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// A bigram trained on a tiny text in which "t" is followed by "o" or " ", "o" by " " or "r".
fn trained_bigram(dir: &Path) -> PathBuf {
    let corpus = dir.join("tiny.txt");
    std::fs::write(&corpus, "to be or not to be, that is the question.\n".repeat(40)).expect("writable");
    let ckpt = dir.join("bigram.ckpt");
    let o = pente(&[
        "--out",
        s(dir),
        "char-lm",
        "train",
        "--model",
        "bigram",
        "--corpus",
        s(&corpus),
        "--steps",
        "300",
        "--sample-len",
        "0",
        "--save",
        s(&ckpt),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ckpt
}

#[test]
fn next_prints_ranked_characters_and_words_as_tables_and_json() {
    let dir = temp_dir("char-lm-next");
    let ckpt = trained_bigram(&dir);
    let o = pente(&["char-lm", "next", "--load", s(&ckpt), "--prompt", "that is t", "--top", "3"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("bigram model (") && lines[0].contains(r#"it sees the last 1: "t""#), "{out}");
    assert_eq!(lines[1], "next character:", "{out}");
    // After "t": "h" (that, the), "o" (to, not… no: to), " " (not, that): three ranked rows with bars.
    let rows: Vec<&str> = lines[2..5].to_vec();
    for (i, row) in rows.iter().enumerate() {
        assert!(row.trim_start().starts_with(&format!("{}  '", i + 1)), "{out}");
        assert!(row.contains(" %  █"), "{out}");
    }
    assert_eq!(lines[5], "next word (beam 32, at most 24 characters):", "{out}");
    assert_eq!(lines.len(), 9, "three words: {out}");

    let o = pente(&["char-lm", "next", "--load", s(&ckpt), "--prompt", "that is t", "--top", "100", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["model"], "bigram");
    assert_eq!(v["context"], "t");
    let chars = v["next_chars"].as_array().expect("a list");
    let p = |x: &serde_json::Value| x["p"].as_f64().expect("a number");
    let total: f64 = chars.iter().map(p).sum();
    assert!((total - 1.0).abs() < 1e-9, "all {} characters sum to {total}", chars.len());
    assert!(chars.windows(2).all(|w| p(&w[0]) >= p(&w[1])));
    // The text's only pairs after "t": "to" ×2, "t " ×2 ("not ", "that "), "th" ×2 ("that", "the"),
    // "ti" ×1 ("question"): the trained table ranks them first, well above the rest.
    let top: Vec<&str> = chars.iter().take(4).map(|c| c["char"].as_str().expect("text")).collect();
    for c in ["o", " ", "h", "i"] {
        assert!(top.contains(&c), "{c:?} not among {top:?}");
    }
    let words = v["next_words"].as_array().expect("a list");
    assert!(!words.is_empty() && words.windows(2).all(|w| p(&w[0]) >= p(&w[1])), "{words:?}");
    assert!(words.iter().any(|w| w["text"] == "he"), "\"the\" is a word after \"t\": {words:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_prompt_outside_the_vocabulary_is_an_error_naming_its_characters() {
    let dir = temp_dir("char-lm-next-vocab");
    let ckpt = trained_bigram(&dir);
    let o = pente(&["char-lm", "next", "--load", s(&ckpt), "--prompt", "ROMEO: to be"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("'R', 'O', 'M', 'E', ':'"), "{err}");
    assert!(err.contains(s(&ckpt)), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
