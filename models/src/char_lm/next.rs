//! "Given the text so far, what comes next?": the probability of every next character, and the
//! most likely next *words*, found by a beam search over characters.
//!
//! Both ask the model through [`Generator`], the machinery sampling uses, so they see what
//! sampling would see: the bigram the last character, the MLP the last `context` characters
//! (padded on the left with the newline), the GPT at most `block_size` characters. A prompt
//! longer than the GPT's block is cropped as sampling crops it: the GPT sees its last
//! `block_size / 2` characters (the window restarts at half a block when it overflows).
//!
//! **Words.** A completion is what the model would write up to the end of the next word: any
//! leading whitespace, then word characters (letters, digits, the apostrophe), ended by the
//! first space or punctuation mark after them. Its probability is the product of the model's
//! probabilities of its characters, each given the prompt and the characters before it, times
//! the probability that a space or punctuation mark comes next (that the word ends there). A
//! punctuation mark met before any word character is a completion of its own (`","`, `" :"`).
//! The completions of all lengths together have a probability of at most 1.
//!
//! The search keeps the `beam` most probable unfinished prefixes at each length, and stops when
//! no kept prefix is more probable than the `top`-th completion found (a prefix's probability
//! only falls as it grows, so none of its completions could rank higher). The beam bounds what
//! it can find: a completion whose prefix at some length was not among the `beam` most probable
//! prefixes of that length is never seen, even if its later characters are near-certain. With
//! `beam` at least the number of prefixes of every length the search is exhaustive; in
//! practice a beam a few times `top` finds the `top` most probable completions of a trained
//! model. A prefix still unfinished after `max_len` characters is reported as it stands,
//! marked incomplete, with the probability of the prefix.

use std::cmp::Ordering;

use super::model::CharLm;
use super::sample::Generator;
use crate::Error;

/// One possible next character.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NextChar {
    /// The character.
    pub ch: char,
    /// Its id in the vocabulary.
    pub id: usize,
    /// The model's probability that it comes next.
    pub probability: f64,
}

/// One possible completion of the next word.
#[derive(Clone, Debug, PartialEq)]
pub struct NextWord {
    /// The characters after the prompt (leading whitespace included, the ending space or
    /// punctuation excluded, except for a completion that is a punctuation mark).
    pub text: String,
    /// The product of the characters' probabilities, times the probability that the word ends
    /// there (for a complete word).
    pub probability: f64,
    /// `false` for a prefix cut at [`WordSearch::max_len`] characters.
    pub complete: bool,
}

/// The settings of [`next_words`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WordSearch {
    /// Completions to return. Default 10.
    pub top: usize,
    /// Unfinished prefixes kept at each length. Default 32.
    pub beam: usize,
    /// Characters after which an unfinished prefix stops. Default 24.
    pub max_len: usize,
}

impl Default for WordSearch {
    fn default() -> Self {
        WordSearch { top: 10, beam: 32, max_len: 24 }
    }
}

/// The ids of `prompt`.
///
/// # Errors
/// [`Error::Config`] naming every character of `prompt` that is not in the model's vocabulary
/// (a vocabulary with an unknown symbol would map them to it; here they are refused, since
/// the model would answer about another text).
pub fn encode_prompt(model: &CharLm, prompt: &str) -> Result<Vec<usize>, Error> {
    let known = model.vocab.chars();
    let mut outside: Vec<char> = Vec::new();
    for c in prompt.chars() {
        if (!known.contains(&c) || c == super::vocab::UNKNOWN_SYMBOL) && !outside.contains(&c) {
            outside.push(c);
        }
    }
    if !outside.is_empty() {
        let list: Vec<String> = outside.iter().map(|c| format!("{c:?}")).collect();
        return Err(Error::Config(format!(
            "--prompt: {} not in the model's vocabulary of {} characters: {}",
            if outside.len() == 1 { "this character is" } else { "these characters are" },
            model.vocab.len(),
            list.join(", ")
        )));
    }
    model.vocab.encode(prompt).map_err(|e| Error::Config(format!("--prompt: {e}")))
}

/// The softmax of `logits` in `f64`.
///
/// # Errors
/// [`Error::Config`] if a logit is NaN or every logit is infinite (no distribution).
pub fn probabilities(logits: &[f32]) -> Result<Vec<f64>, Error> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if logits.iter().any(|l| l.is_nan()) || !max.is_finite() {
        return Err(Error::Config("the model's logits are not finite: its weights are broken".into()));
    }
    let weights: Vec<f64> = logits.iter().map(|&l| (f64::from(l) - f64::from(max)).exp()).collect();
    let total: f64 = weights.iter().sum();
    Ok(weights.into_iter().map(|w| w / total).collect())
}

/// The probability of every character of the vocabulary coming after `prompt` (ids), most
/// probable first (ties by id); they sum to 1.
///
/// # Errors
/// As [`probabilities`].
pub fn next_chars(model: &CharLm, prompt: &[usize]) -> Result<Vec<NextChar>, Error> {
    let mut gen = Generator::new(model);
    gen.push(prompt);
    ranked(model, &probabilities(&gen.next_logits())?)
}

fn ranked(model: &CharLm, probs: &[f64]) -> Result<Vec<NextChar>, Error> {
    let mut out: Vec<NextChar> = probs
        .iter()
        .enumerate()
        .map(|(id, &probability)| NextChar { ch: model.vocab.char(id), id, probability })
        .collect();
    out.sort_by(|a, b| b.probability.total_cmp(&a.probability).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// The ids of `prompt` the model sees when predicting the character after it (see the
/// [module docs](self) for the cropping).
pub fn context_seen(model: &CharLm, prompt: &[usize]) -> Vec<usize> {
    let mut gen = Generator::uncached(model);
    gen.push(prompt);
    let _ = gen.next_logits();
    gen.context().to_vec()
}

/// How a character takes part in a word.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Letters, digits, the apostrophe: the word goes on.
    Word,
    /// Whitespace: leading, or the end of a word.
    Space,
    /// Anything else: the end of a word, or a completion of its own.
    Punctuation,
}

fn class(c: char) -> Class {
    if c.is_alphanumeric() || c == '\'' {
        Class::Word
    } else if c.is_whitespace() {
        Class::Space
    } else {
        Class::Punctuation
    }
}

/// An unfinished prefix of the search.
#[derive(Clone)]
struct Beam<'m> {
    text: String,
    probability: f64,
    has_word: bool,
    gen: Generator<'m>,
}

/// The `search.top` most probable completions of the next word after `prompt` (ids), most
/// probable first, found by the beam search of the [module docs](self).
///
/// # Errors
/// As [`probabilities`]; [`Error::Config`] for a `top`, `beam` or `max_len` of 0.
pub fn next_words(model: &CharLm, prompt: &[usize], search: &WordSearch) -> Result<Vec<NextWord>, Error> {
    for (name, v) in [("top", search.top), ("beam", search.beam), ("max_len", search.max_len)] {
        if v == 0 {
            return Err(Error::Config(format!("{name} = 0: the word search needs at least 1")));
        }
    }
    let by_probability = |a: &NextWord, b: &NextWord| b.probability.total_cmp(&a.probability);
    let mut root = Generator::new(model);
    root.push(prompt);
    let mut live = vec![Beam { text: String::new(), probability: 1.0, has_word: false, gen: root }];
    let mut finished: Vec<NextWord> = Vec::new();
    for _ in 0..search.max_len {
        // (probability, parent, id) of every unfinished extension.
        let mut grown: Vec<(f64, usize, usize)> = Vec::new();
        for (parent, beam) in live.iter_mut().enumerate() {
            let probs = probabilities(&beam.gen.next_logits())?;
            let mut ends = 0.0;
            for (id, &q) in probs.iter().enumerate() {
                let c = model.vocab.char(id);
                let p = beam.probability * q;
                match (class(c), beam.has_word) {
                    (Class::Word, _) | (Class::Space, false) => grown.push((p, parent, id)),
                    (Class::Space | Class::Punctuation, true) => ends += q,
                    (Class::Punctuation, false) => {
                        finished.push(NextWord { text: format!("{}{c}", beam.text), probability: p, complete: true });
                    }
                }
            }
            if beam.has_word {
                let probability = beam.probability * ends;
                finished.push(NextWord { text: beam.text.clone(), probability, complete: true });
            }
        }
        finished.sort_by(by_probability);
        finished.truncate(search.top);
        grown.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        grown.truncate(search.beam);
        let bar = if finished.len() == search.top { finished[search.top - 1].probability } else { 0.0 };
        grown.retain(|&(p, _, _)| p > bar);
        live = grown
            .into_iter()
            .map(|(probability, parent, id)| {
                let from = &live[parent];
                let c = model.vocab.char(id);
                let mut gen = from.gen.clone();
                gen.push(&[id]);
                let has_word = from.has_word || class(c) == Class::Word;
                Beam { text: format!("{}{c}", from.text), probability, has_word, gen }
            })
            .collect();
        if live.is_empty() {
            break;
        }
    }
    finished.extend(live.into_iter().map(|b| NextWord { text: b.text, probability: b.probability, complete: false }));
    finished.sort_by(|a, b| by_probability(a, b).then_with(|| a.text.cmp(&b.text)).then(Ordering::Equal));
    finished.truncate(search.top);
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::char_lm::gpt::GptConfig;
    use crate::char_lm::mlp::MlpConfig;
    use crate::char_lm::model::ModelConfig;
    use crate::char_lm::vocab::Vocab;

    fn models() -> Vec<CharLm> {
        let vocab = Vocab::from_text("to be, or not to be: that is the question.\n", false);
        [
            ModelConfig::Bigram(Default::default()),
            ModelConfig::Mlp(MlpConfig { context: 3, n_embd: 4, hidden: 16 }),
            ModelConfig::Gpt(GptConfig { block_size: 16, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.0 }),
        ]
        .into_iter()
        .map(|c| {
            let mut m = CharLm::new(vocab.clone(), c, 3).expect("valid");
            // Random weights of some size, so that the distributions are far from uniform.
            let ids: Vec<_> = m.store.iter().map(|(id, _, _)| id).collect();
            for id in ids {
                for (i, x) in m.store.get_mut(id).data_mut().iter_mut().enumerate() {
                    *x += ((i * 7919 % 13) as f32 - 6.0) * 0.3;
                }
            }
            m
        })
        .collect()
    }

    #[test]
    fn next_characters_sum_to_one_over_the_vocabulary_in_decreasing_order() {
        for model in models() {
            let prompt = encode_prompt(&model, "to be").expect("known");
            let chars = next_chars(&model, &prompt).expect("finite");
            assert_eq!(chars.len(), model.vocab.len());
            let total: f64 = chars.iter().map(|c| c.probability).sum();
            assert!((total - 1.0).abs() < 1e-12, "{}: {total}", model.config.kind());
            assert!(chars.windows(2).all(|w| w[0].probability >= w[1].probability));
        }
    }

    /// The probability of `text` after `prompt`, from the uncached forward pass character by
    /// character, times that of a word end when `complete`.
    fn recomputed(model: &CharLm, prompt: &[usize], word: &NextWord) -> f64 {
        let mut ids = prompt.to_vec();
        let mut p = 1.0;
        for c in word.text.chars() {
            let id = model.vocab.id(c).expect("known");
            p *= probabilities(&model.next_logits(&ids)).expect("finite")[id];
            ids.push(id);
        }
        let last_is_word = word.text.chars().last().is_some_and(|c| class(c) == Class::Word);
        if word.complete && last_is_word {
            let probs = probabilities(&model.next_logits(&ids)).expect("finite");
            p *= (0..probs.len()).filter(|&i| class(model.vocab.char(i)) != Class::Word).map(|i| probs[i]).sum::<f64>();
        }
        p
    }

    #[test]
    fn words_come_in_decreasing_probability_each_the_product_of_its_characters() {
        for model in models() {
            let prompt = encode_prompt(&model, "that is ").expect("known");
            let search = WordSearch { top: 8, beam: 16, max_len: 6 };
            let words = next_words(&model, &prompt, &search).expect("finite");
            assert_eq!(words.len(), 8, "{}", model.config.kind());
            assert!(words.windows(2).all(|w| w[0].probability >= w[1].probability), "{words:?}");
            for w in &words {
                let want = recomputed(&model, &prompt, w);
                assert!(
                    (w.probability - want).abs() <= 1e-5 * want,
                    "{}: {:?} has {} but its characters give {want}",
                    model.config.kind(),
                    w.text,
                    w.probability
                );
            }
        }
    }

    #[test]
    fn a_wide_beam_finds_every_completion_of_a_narrow_one() {
        let model = &models()[1];
        let prompt = encode_prompt(model, "or ").expect("known");
        let narrow = next_words(model, &prompt, &WordSearch { top: 5, beam: 5, max_len: 4 }).expect("finite");
        let wide = next_words(model, &prompt, &WordSearch { top: 5, beam: 400, max_len: 4 }).expect("finite");
        // The wide beam's k-th completion is at least as probable as the narrow one's.
        for (n, w) in narrow.iter().zip(&wide) {
            assert!(w.probability >= n.probability * (1.0 - 1e-12), "{narrow:?} vs {wide:?}");
        }
    }

    /// A bigram trained to its optimum on a tiny text: its table is the logarithm of the
    /// pair counts (the maximum-likelihood solution gradient descent converges to, reached in
    /// closed form), so every answer is a fraction of counts.
    #[test]
    fn a_trained_bigram_gives_the_counted_answers_exactly() {
        let text = "to be or not to be";
        let vocab = Vocab::from_text(text, false);
        let mut model = CharLm::new(vocab.clone(), ModelConfig::Bigram(Default::default()), 0).expect("valid");
        let ids = vocab.encode(text).expect("known");
        let v = vocab.len();
        let counts = crate::char_lm::bigram::CountBigram::fit(&ids, v, 0.0);
        let super::super::model::Net::Bigram(b) = model.net else { unreachable!("a bigram") };
        let table = model.store.get_mut(b.table).data_mut();
        for (t, &n) in table.iter_mut().zip(&counts.counts) {
            *t = (n as f32).ln(); // −∞ for a pair never seen: probability 0
        }
        // After "o": " " twice ("to ", "to "), "r" once, "t" once.
        let chars = next_chars(&model, &encode_prompt(&model, "to").expect("known")).expect("finite");
        for (c, (ch, p)) in chars.iter().zip([(' ', 0.5), ('r', 0.25), ('t', 0.25)]) {
            assert_eq!(c.ch, ch, "{chars:?}");
            assert!((c.probability - p).abs() < 1e-7, "{c:?}");
        }
        assert!(chars[3..].iter().all(|c| c.probability == 0.0));
        // The word after "to be or n": n→o (1), then o ends it (1/2), or r (1/4) then r→" " (1),
        // or t (1/4) then t→" " (1/3) or t→o (2/3) and on.
        let prompt = encode_prompt(&model, "to be or n").expect("known");
        let words = next_words(&model, &prompt, &WordSearch { top: 5, beam: 8, max_len: 8 }).expect("finite");
        let got: Vec<(&str, f64)> = words.iter().map(|w| (w.text.as_str(), w.probability)).collect();
        let want = [("o", 0.5), ("or", 0.25), ("ot", 1.0 / 12.0), ("oto", 1.0 / 12.0), ("otor", 1.0 / 24.0)];
        // "ot" and "oto" tie at 1/12: their order is float rounding's.
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (want_text, want_p) in want {
            let p = got.iter().find(|(t, _)| *t == want_text).map(|&(_, p)| p);
            assert!(p.is_some_and(|p| (p - want_p).abs() < 1e-7), "{want_text}: {p:?} vs {want_p} in {got:?}");
        }
    }

    #[test]
    fn characters_outside_the_vocabulary_are_named() {
        let model = &models()[0];
        let e = encode_prompt(model, "to bez, quoth Xyz").unwrap_err().to_string();
        assert!(
            e.ends_with("these characters are not in the model's vocabulary of 17 characters: 'z', 'X', 'y'"),
            "{e}"
        );
        assert!(!e.contains("'t'"), "{e}");
    }

    #[test]
    fn a_long_prompt_is_cropped_as_sampling_crops_it() {
        let model = &models()[2]; // block 16
        let prompt = encode_prompt(model, &"to be or not to be ".repeat(3)).expect("known");
        assert_eq!(context_seen(model, &prompt), prompt[prompt.len() - 8..]);
        let short = &prompt[prompt.len() - 8..];
        let (a, b) = (next_chars(model, &prompt).expect("finite"), next_chars(model, short).expect("finite"));
        for (x, y) in a.iter().zip(&b) {
            assert!((x.probability - y.probability).abs() < 1e-6);
        }
    }
}
