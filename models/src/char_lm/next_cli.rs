//! `pente char-lm next`: what a trained model expects after a prompt, as a ranked table of
//! next characters and next words with bars (or JSON lines for scripts), and the figure that
//! sets several models' next-character distributions side by side.
//!
//! ```text
//! pente char-lm next --load OUT/char_lm_gpt.ckpt --prompt "ROMEO: I will"
//! pente char-lm next --load b.ckpt --load m.ckpt --load g.ckpt --prompt "ROMEO: I will" --figure next.svg
//! pente char-lm next --load OUT/char_lm_gpt.ckpt --prompt "ROMEO: I will" --json
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::figures::{self, NextPanel};
use super::model::CharLm;
use super::next::{self, NextChar, NextWord, WordSearch};
use crate::Error;

/// `pente char-lm next`.
#[derive(Args, Debug)]
pub struct NextArgs {
    /// A model saved by `pente char-lm train`; give it several times to compare models.
    #[arg(long, value_name = "FILE", required = true)]
    pub load: Vec<PathBuf>,
    /// The text so far (a GPT sees at most its block, cropped as sampling crops it).
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// How many characters and words to list.
    #[arg(long, default_value_t = WordSearch::default().top as u32, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub top: u32,
    /// Unfinished prefixes the word search keeps at each length (wider finds more, slower).
    #[arg(long, default_value_t = WordSearch::default().beam as u32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub beam: u32,
    /// Characters after which an unfinished word stops.
    #[arg(long, default_value_t = WordSearch::default().max_len as u32, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_len: u32,
    /// One JSON object per model on its own line instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// Also draw the models' next-character distributions side by side into this SVG file.
    #[arg(long, value_name = "FILE")]
    pub figure: Option<PathBuf>,
}

/// What one model expects after the prompt.
struct Answer {
    model: CharLm,
    context: String,
    chars: Vec<NextChar>,
    words: Vec<NextWord>,
}

/// Runs `pente char-lm next`.
///
/// # Errors
/// Unreadable or foreign checkpoints, a prompt with characters outside a model's vocabulary
/// (naming them), broken weights, an unwritable figure.
pub fn run(args: &NextArgs) -> Result<(), Error> {
    let search = WordSearch { top: args.top as usize, beam: args.beam as usize, max_len: args.max_len as usize };
    let mut answers = Vec::new();
    for path in &args.load {
        let model = CharLm::load(path)?;
        let prompt =
            next::encode_prompt(&model, &args.prompt).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let context = model.vocab.decode(&next::context_seen(&model, &prompt));
        let chars = next::next_chars(&model, &prompt)?;
        let words = next::next_words(&model, &prompt, &search)?;
        answers.push(Answer { model, context, chars, words });
    }
    let k = search.top;
    for (a, path) in answers.iter().zip(&args.load) {
        if args.json {
            let line = json!({
                "model": a.model.config.kind(),
                "file": path.display().to_string(),
                "prompt": args.prompt,
                "context": a.context,
                "next_chars": a.chars.iter().take(k).map(|c| json!({"char": c.ch.to_string(), "p": c.probability})).collect::<Vec<_>>(),
                "next_words": a.words.iter().map(|w| json!({"text": w.text, "p": w.probability, "complete": w.complete})).collect::<Vec<_>>(),
                "beam": search.beam,
                "max_len": search.max_len,
            });
            println!("{line}");
        } else {
            print!("{}", table(a, path, &args.prompt, &search));
        }
    }
    if let Some(fig) = &args.figure {
        let panels: Vec<NextPanel> = answers
            .iter()
            .map(|a| NextPanel {
                label: a.model.config.kind().to_uppercase(),
                context: a.context.clone(),
                chars: a.chars.iter().take(k).copied().collect(),
                entropy_bits: -a
                    .chars
                    .iter()
                    .filter(|c| c.probability > 0.0)
                    .map(|c| c.probability * c.probability.log2())
                    .sum::<f64>(),
            })
            .collect();
        figures::write_next_chars(&panels, &args.prompt, fig)?;
        if !args.json {
            println!("wrote {}", fig.display());
        }
    }
    Ok(())
}

/// A bar of `p` (0 to 1) on 30 cells, in eighths of a cell.
fn bar(p: f64) -> String {
    let eighths = (p.clamp(0.0, 1.0) * 30.0 * 8.0).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8 - 1]);
    }
    s
}

/// The two ranked tables of one model.
fn table(a: &Answer, path: &std::path::Path, prompt: &str, search: &WordSearch) -> String {
    let mut s = String::new();
    let seen = a.context.chars().count();
    let _ = writeln!(
        s,
        "{} model ({}) after {prompt:?}; it sees {}",
        a.model.config.kind(),
        path.display(),
        if seen == prompt.chars().count() {
            format!("all {seen} characters")
        } else {
            format!("the last {seen}: {:?}", a.context)
        }
    );
    let _ = writeln!(s, "next character:");
    for (i, c) in a.chars.iter().take(search.top).enumerate() {
        let _ = writeln!(
            s,
            "{:>4}  {:<6} {:>7.3} %  {}",
            i + 1,
            format!("{:?}", c.ch),
            100.0 * c.probability,
            bar(c.probability)
        );
    }
    let _ = writeln!(s, "next word (beam {}, at most {} characters):", search.beam, search.max_len);
    let width = a.words.iter().map(|w| format!("{:?}", w.text).chars().count()).max().unwrap_or(0);
    for (i, w) in a.words.iter().enumerate() {
        let text = format!("{:?}{}", w.text, if w.complete { "" } else { "…" });
        let _ = writeln!(
            s,
            "{:>4}  {text:<width$} {:>7.3} %  {}",
            i + 1,
            100.0 * w.probability,
            bar(w.probability),
            width = width + 1
        );
    }
    s
}
