//! [`Embedding`]: a lookup table of `vocab_size` vectors of size `n_embd`; row `i` is the
//! embedding of token `i`. Gradients flow only into the rows looked up.
//!
//! ```
//! use autograd::Tape;
//! use nn::{Embedding, ParamStore};
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let wte = Embedding::new(store.scope("wte"), 65, 8);
//! let tape = Tape::new();
//! let p = store.bind(&tape);
//! let x = wte.forward_shaped(&p, &[1, 2, 3, 4, 5, 6], &[2, 3]); // (batch 2, seq_len 3, n_embd 8)
//! assert_eq!(x.shape().as_slice(), &[2, 3, 8]);
//! ```

use autograd::{Float, Var};

use crate::{Bound, Init, ParamId, Scope};

/// A table of learned vectors indexed by token id; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Embedding {
    /// The table, `(vocab_size, n_embd)`.
    pub weight: ParamId,
    /// Number of rows.
    pub vocab_size: usize,
    /// Size of each vector.
    pub n_embd: usize,
}

impl Embedding {
    /// A table initialized from `N(0, 1)` (PyTorch's default), parameter `weight` in `scope`.
    pub fn new<T: Float>(scope: Scope<'_, T>, vocab_size: usize, n_embd: usize) -> Self {
        Self::with_init(scope, vocab_size, n_embd, Init::Normal { mean: 0.0, std: 1.0 })
    }

    /// A table drawn from `init` (GPT-2 uses `Normal { mean: 0.0, std: 0.02 }`).
    pub fn with_init<T: Float>(mut scope: Scope<'_, T>, vocab_size: usize, n_embd: usize, init: Init) -> Self {
        let weight = scope.param("weight", &[vocab_size, n_embd], init);
        Embedding { weight, vocab_size, n_embd }
    }

    /// The rows of `ids`, shape `(ids.len(), n_embd)`.
    ///
    /// # Panics
    /// If an id is not below `vocab_size`.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, ids: &[usize]) -> Var<'t, T> {
        if let Some(bad) = ids.iter().find(|&&i| i >= self.vocab_size) {
            panic!("Embedding: token id {bad} out of range for vocab_size {}", self.vocab_size);
        }
        p.get(self.weight).index_select(ids)
    }

    /// The rows of `ids` arranged as `shape` (whose product must be `ids.len()`), giving
    /// `(…shape, n_embd)`.
    ///
    /// # Panics
    /// If the shape does not hold `ids.len()` elements, or an id is out of range.
    #[track_caller]
    pub fn forward_shaped<'t, T: Float>(&self, p: &Bound<'t, T>, ids: &[usize], shape: &[usize]) -> Var<'t, T> {
        assert_eq!(
            shape.iter().product::<usize>(),
            ids.len(),
            "Embedding::forward_shaped: shape {shape:?} does not hold {} ids",
            ids.len()
        );
        let mut out = shape.to_vec();
        out.push(self.n_embd);
        self.forward(p, ids).reshape(&out)
    }
}
