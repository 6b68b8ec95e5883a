//! What a char-lm checkpoint computes on a text, written for another framework to compare
//! with: the logits of the text's first two windows and the mean loss over all its
//! full-length windows (what `pente char-lm eval` prints, here at full precision).
//! `scripts/torch_interop.py` runs it on a GPT that PyTorch trained and pente imported.
//!
//! Run: `cargo run --release --example char_lm_scores -- CKPT TEXT OUT.safetensors`
//! Expected: OUT holds `ids` `(2, context)` (as f32) and `logits` `(2, context, vocab)`, with
//! the loss in its metadata (`"loss"`); the loss is printed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use autograd::Tensor;
use nn::ParamStore;
use pente::models::char_lm::model::Net;
use pente::models::char_lm::{data, CharLm};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [ckpt, text_file, out] = args.as_slice() else {
        return Err("usage: char_lm_scores CKPT TEXT OUT.safetensors".into());
    };
    let model = CharLm::load(ckpt)?;
    let Net::Gpt(gpt) = &model.net else { return Err(format!("{}: not a GPT", ckpt.display()).into()) };
    let text = data::read_text(text_file)?;
    let ids = data::encode(&model.vocab, &text, text_file)?;
    let t = gpt.config.block_size;
    if ids.len() < 2 * t + 1 {
        return Err(format!("{}: fewer than {} characters", text_file.display(), 2 * t + 1).into());
    }
    let loss = model.evaluate(&ids, None);
    let v = model.vocab.len();
    let mut logits = Vec::with_capacity(2 * t * v);
    for row in ids[..2 * t].chunks(t) {
        logits.extend_from_slice(gpt.logits(&model.store, row).data());
    }
    let mut file = ParamStore::<f32>::with_seed(0);
    file.add("ids", Tensor::from_vec(ids[..2 * t].iter().map(|&i| i as f32).collect(), &[2, t]));
    file.add("logits", Tensor::from_vec(logits, &[2, t, v]));
    let meta = BTreeMap::from([("loss".to_string(), format!("{loss:?}"))]);
    nn::safetensors::export(&file, out, &meta)?;
    println!("loss {loss:?} nats per character over {}; wrote {}", text_file.display(), out.display());
    Ok(())
}
