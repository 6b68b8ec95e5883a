//! [`Embedding`]: a lookup table of `vocab_size` vectors of size `n_embd`; row `i` is the
//! embedding of token `i`. Gradients flow only into the rows looked up. With a padding index
//! ([`EmbeddingConfig::padding_idx`], PyTorch's `padding_idx`), that row starts at zeros and
//! never gets a gradient, so it stays what it was (zeros, unless loaded otherwise).
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
//!
//! // Token 0 pads: its row is zeros and its gradient is zero.
//! use nn::EmbeddingConfig;
//! let pad = Embedding::with_config(store.scope("pad"), EmbeddingConfig { padding_idx: Some(0), ..EmbeddingConfig::new(65, 8) });
//! let tape = Tape::new();
//! let p = store.bind(&tape);
//! let x = pad.forward(&p, &[0, 5, 0]);
//! assert!(x.value().data()[..8].iter().all(|&v| v == 0.0));
//! let grads = p.backward(x.exp().sum());
//! assert!(grads.get(pad.weight).unwrap().data()[..8].iter().all(|&g| g == 0.0));
//! ```

use autograd::{Float, Tensor, Var};

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
    /// The row that gets no gradient (initialized to zeros), if any.
    pub padding_idx: Option<usize>,
}

/// The shape, initialization and padding index of an [`Embedding`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmbeddingConfig {
    /// Number of rows.
    pub vocab_size: usize,
    /// Size of each vector.
    pub n_embd: usize,
    /// How the table is drawn; `N(0, 1)` by default, as PyTorch's.
    pub init: Init,
    /// The row that gets no gradient and starts at zeros (PyTorch's `padding_idx`).
    pub padding_idx: Option<usize>,
}

impl EmbeddingConfig {
    /// `vocab_size` rows of `n_embd`, drawn from `N(0, 1)`, with no padding index.
    pub fn new(vocab_size: usize, n_embd: usize) -> Self {
        EmbeddingConfig { vocab_size, n_embd, init: Init::Normal { mean: 0.0, std: 1.0 }, padding_idx: None }
    }
}

impl Embedding {
    /// A table initialized from `N(0, 1)` (PyTorch's default), parameter `weight` in `scope`.
    pub fn new<T: Float>(scope: Scope<'_, T>, vocab_size: usize, n_embd: usize) -> Self {
        Self::with_init(scope, vocab_size, n_embd, Init::Normal { mean: 0.0, std: 1.0 })
    }

    /// A table drawn from `init` (GPT-2 uses `Normal { mean: 0.0, std: 0.02 }`).
    pub fn with_init<T: Float>(scope: Scope<'_, T>, vocab_size: usize, n_embd: usize, init: Init) -> Self {
        Self::with_config(scope, EmbeddingConfig { init, ..EmbeddingConfig::new(vocab_size, n_embd) })
    }

    /// A table as `config` says; the padding row, if any, is set to zeros.
    ///
    /// # Panics
    /// If the padding index is not below `vocab_size`.
    #[track_caller]
    pub fn with_config<T: Float>(mut scope: Scope<'_, T>, config: EmbeddingConfig) -> Self {
        let EmbeddingConfig { vocab_size, n_embd, init, padding_idx } = config;
        if let Some(pad) = padding_idx {
            assert!(pad < vocab_size, "Embedding: padding_idx {pad} out of range for vocab_size {vocab_size}");
        }
        let weight = scope.param("weight", &[vocab_size, n_embd], init);
        if let Some(pad) = padding_idx {
            scope.store().get_mut(weight).data_mut()[pad * n_embd..(pad + 1) * n_embd].fill(T::ZERO);
        }
        Embedding { weight, vocab_size, n_embd, padding_idx }
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
        let rows = p.get(self.weight).index_select(ids);
        match self.padding_idx {
            // The padding rows' values, detached: no gradient reaches the padding row.
            Some(pad) if ids.contains(&pad) => {
                let keep: Vec<T> = ids.iter().map(|&i| if i == pad { T::ZERO } else { T::ONE }).collect();
                rows.where_cond(&Tensor::from_vec(keep, &[ids.len(), 1]), rows.detach())
            }
            _ => rows,
        }
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
