//! [`Dropout`]: in training mode, zeroes each element with probability `p` and scales the rest
//! by `1 / (1 − p)` (inverted dropout, so evaluation needs no rescaling); in evaluation mode
//! ([`Bound::eval`]) it is the identity. The mask comes from the tape's seeded generator.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{Dropout, ParamStore};
//! let store = ParamStore::<f32>::default();
//! let drop = Dropout::new(0.5);
//! let tape = Tape::with_seed(3);
//! let x = tape.constant(Tensor::ones(&[1000]));
//! let eval = drop.forward(&store.bind(&tape).eval(), x).value();
//! assert_eq!(eval, Tensor::ones(&[1000]));
//! let train = drop.forward(&store.bind(&tape), x).value();
//! assert!(train.data().iter().all(|&v| v == 0.0 || v == 2.0));
//! ```

use autograd::{Float, Var};

use crate::{Bound, Module};

/// Inverted dropout with probability `p`; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// The probability of zeroing an element, in `[0, 1)`.
    pub p: f64,
}

impl Dropout {
    /// Dropout with probability `p`.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`.
    #[track_caller]
    pub fn new(p: f64) -> Self {
        assert!((0.0..1.0).contains(&p), "Dropout::new: p must be in [0, 1), got {p}");
        Dropout { p }
    }

    /// Applies dropout when `p` is bound in training mode, the identity otherwise.
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        if self.p == 0.0 || !p.is_training() {
            x
        } else {
            x.dropout(self.p, true)
        }
    }
}

impl Module for Dropout {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        Dropout::forward(self, p, x)
    }
}
