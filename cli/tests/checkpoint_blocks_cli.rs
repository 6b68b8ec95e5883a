//! `pente char-lm train --checkpoint-blocks` from the outside: the GPT trains with its blocks
//! checkpointed, the checkpoint records the choice, and a resumed run keeps it.

use std::path::Path;
use std::process::Output;

mod common;
use common::{pente, temp_dir};

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn checkpoint_blocks_is_recorded_and_kept_across_a_resume() {
    let dir = temp_dir("checkpoint-blocks");
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, "to be, or not to be: that is the question.\n".repeat(30)).expect("writable");
    let ckpt = dir.join("run.ckpt");
    let model = ["--model", "gpt", "--n-embd", "16", "--n-head", "2", "--n-layer", "2", "--block", "8"];
    let run = ["--batch-size", "4", "--eval-every", "2", "--sample-len", "0", "--shards", "1"];
    let files = ["--corpus", s(&corpus), "--save", s(&ckpt)];
    let args =
        [&["--out", s(&dir), "char-lm", "train", "--steps", "2"][..], &model, &run, &files, &["--checkpoint-blocks"]]
            .concat();
    let o = pente(&args);
    assert!(o.status.success(), "{}", text(&o));
    let inspect = |ckpt: &Path| {
        let o = pente(&["inspect", s(ckpt)]);
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    assert!(inspect(&ckpt).contains("\"checkpoint_blocks\":true"), "{}", inspect(&ckpt));
    let o = pente(&["--out", s(&dir), "char-lm", "train", "--resume", s(&ckpt), "--steps", "3", "--sample-len", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    let saved = inspect(&ckpt);
    assert!(saved.contains("step:      3") && saved.contains("\"checkpoint_blocks\":true"), "{saved}");
    let _ = std::fs::remove_dir_all(dir);
}
