//! [`Vocab`]: the characters a model knows, built from its training text and saved with it.
//!
//! Ids are assigned in code-point order, so the same text always gives the same vocabulary. A
//! vocabulary may end with an *unknown symbol* ([`UNKNOWN_SYMBOL`], `�`) that stands for every
//! character the training text lacks; without it, encoding such a character is an error that
//! names it and its position. Which of the two is the user's choice when the vocabulary is built
//! (`pente char-lm train --strict-vocab` for the error).
//!
//! ```
//! use models::char_lm::vocab::Vocab;
//! let v = Vocab::from_text("to be", true);
//! assert_eq!(v.len(), 6); // ' ', 'b', 'e', 'o', 't' and the unknown symbol
//! assert_eq!(v.decode(&v.encode("be").expect("known")), "be");
//! assert_eq!(v.decode(&v.encode("bx").expect("x maps to �")), "b\u{FFFD}");
//! assert!(Vocab::from_text("to be", false).encode("bx").is_err());
//! ```

use std::collections::BTreeMap;
use std::fmt;

/// The character that stands for every character outside the vocabulary (U+FFFD, the Unicode
/// replacement character).
pub const UNKNOWN_SYMBOL: char = '\u{FFFD}';

/// A character-level vocabulary; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    chars: Vec<char>,
    index: BTreeMap<char, usize>,
    unknown: Option<usize>,
}

/// A character the vocabulary lacks, where it was found (1-based line and column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownChar {
    /// The character.
    pub ch: char,
    /// Its line, from 1.
    pub line: usize,
    /// Its column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for UnknownChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "character {:?} (U+{:04X}) at line {}, column {} is not in the model's vocabulary \
             (the model was trained with --strict-vocab, so unknown characters are an error)",
            self.ch, self.ch as u32, self.line, self.column
        )
    }
}

impl std::error::Error for UnknownChar {}

impl Vocab {
    /// The distinct characters of `text` in code-point order, followed by [`UNKNOWN_SYMBOL`] when
    /// `unknown_symbol` is set (and the text does not already contain it).
    pub fn from_text(text: &str, unknown_symbol: bool) -> Self {
        let mut chars: Vec<char> = text.chars().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        if unknown_symbol && !chars.contains(&UNKNOWN_SYMBOL) {
            chars.push(UNKNOWN_SYMBOL);
        }
        Self::from_chars(chars, unknown_symbol)
    }

    fn from_chars(chars: Vec<char>, unknown_symbol: bool) -> Self {
        let index: BTreeMap<char, usize> = chars.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        let unknown = if unknown_symbol { index.get(&UNKNOWN_SYMBOL).copied() } else { None };
        Vocab { chars, index, unknown }
    }

    /// The number of symbols (the model's `vocab_size`).
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The symbols, by id.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// Whether characters outside the vocabulary map to [`UNKNOWN_SYMBOL`] (otherwise they are an
    /// error).
    pub fn has_unknown_symbol(&self) -> bool {
        self.unknown.is_some()
    }

    /// The id of `c`, or of the unknown symbol if there is one.
    pub fn id(&self, c: char) -> Option<usize> {
        self.index.get(&c).copied().or(self.unknown)
    }

    /// The character of `id` (`�` for an id out of range).
    pub fn char(&self, id: usize) -> char {
        self.chars.get(id).copied().unwrap_or(UNKNOWN_SYMBOL)
    }

    /// The ids of the characters of `text`.
    ///
    /// # Errors
    /// The first character outside the vocabulary, with its position, when there is no unknown
    /// symbol.
    pub fn encode(&self, text: &str) -> Result<Vec<usize>, UnknownChar> {
        let mut out = Vec::with_capacity(text.len());
        let (mut line, mut column) = (1, 0);
        for ch in text.chars() {
            column += 1;
            match self.id(ch) {
                Some(id) => out.push(id),
                None => return Err(UnknownChar { ch, line, column }),
            }
            if ch == '\n' {
                line += 1;
                column = 0;
            }
        }
        Ok(out)
    }

    /// The text of `ids`.
    pub fn decode(&self, ids: &[usize]) -> String {
        ids.iter().map(|&i| self.char(i)).collect()
    }

    /// The vocabulary as checkpoint metadata: code points in decimal, comma-separated.
    pub fn to_metadata(&self) -> String {
        self.chars.iter().map(|&c| (c as u32).to_string()).collect::<Vec<_>>().join(",")
    }

    /// Parses [`Vocab::to_metadata`]'s form; `None` if it is not a list of distinct characters.
    pub fn from_metadata(s: &str, unknown_symbol: bool) -> Option<Self> {
        let chars = s
            .split(',')
            .map(|n| n.trim().parse::<u32>().ok().and_then(char::from_u32))
            .collect::<Option<Vec<char>>>()?;
        let v = Self::from_chars(chars, unknown_symbol);
        let distinct = v.index.len() == v.chars.len();
        (distinct && !v.is_empty() && (!unknown_symbol || v.unknown.is_some())).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_char_error_names_the_character_and_position() {
        let v = Vocab::from_text("ab\nc", false);
        let e = v.encode("ab\ncaé").expect_err("é is unknown");
        assert_eq!((e.ch, e.line, e.column), ('é', 2, 3));
        assert!(e.to_string().contains("U+00E9"), "{e}");
    }

    #[test]
    fn metadata_round_trips() {
        let v = Vocab::from_text("Hello, world!\n", true);
        assert_eq!(Vocab::from_metadata(&v.to_metadata(), true), Some(v.clone()));
        assert_eq!(v.char(v.len() - 1), UNKNOWN_SYMBOL);
        assert_eq!(Vocab::from_metadata("65,65", false), None);
        assert_eq!(Vocab::from_metadata("x", false), None);
    }
}
