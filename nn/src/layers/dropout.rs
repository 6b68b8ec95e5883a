//! [`Dropout`]: in training mode, zeroes each element with probability `p` and scales the rest
//! by `1 / (1 − p)` (inverted dropout, so evaluation needs no rescaling); in evaluation mode
//! ([`Bound::eval`]) it is the identity. The mask comes from the tape's seeded generator.
//! The variants draw from the same generator: [`Dropout1d`] and [`Dropout2d`] zero whole
//! channels, [`AlphaDropout`] keeps a SELU network's mean and variance.
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

/// Draws a mask of shape `mask_shape` from the tape's seeded generator, with the same draws as
/// [`Var::dropout`]: each element `1 / (1 − p)` (kept, probability `1 − p`) or 0.
fn draw_mask<T: Float>(tape: &autograd::Tape<T>, mask_shape: &[usize], p: f64) -> autograd::Tensor<T> {
    tape.constant(autograd::Tensor::ones(mask_shape)).dropout(p, true).value()
}

/// Checks that `p` is a dropout probability, naming the layer.
#[track_caller]
fn check_p(layer: &str, p: f64) {
    assert!((0.0..1.0).contains(&p), "{layer}::new: p must be in [0, 1), got {p}");
}

/// Channel dropout over the first `lead` axes of `x`: one draw per `(…lead)` index, broadcast
/// over the rest. Returns the output and the mask drawn.
fn channel_dropout<'t, T: Float>(x: Var<'t, T>, p: f64, lead: usize) -> (Var<'t, T>, autograd::Tensor<T>) {
    let shape = x.shape();
    let mask_shape: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if i < lead { d } else { 1 }).collect();
    let mask = draw_mask(x.tape(), &mask_shape, p);
    (x * x.tape().constant(mask.clone()), mask)
}

/// Channel dropout for 2-D feature maps, as PyTorch's `nn.Dropout2d`: in training mode, each
/// channel of each sample of `x` `(batch, channels, height, width)` is zeroed as a whole with
/// probability `p`, and the kept channels are scaled by `1 / (1 − p)`; in evaluation mode the
/// identity. Neighbouring pixels of a feature map are strongly correlated, so element-wise
/// dropout would barely regularize them.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use nn::{Dropout2d, ParamStore};
/// let store = ParamStore::<f32>::default();
/// let tape = Tape::with_seed(3);
/// let x = tape.constant(Tensor::ones(&[4, 8, 3, 3]));
/// let y = Dropout2d::new(0.5).forward(&store.bind(&tape), x).value();
/// for map in y.data().chunks(9) {
///     assert!(map.iter().all(|&v| v == 0.0) || map.iter().all(|&v| v == 2.0)); // whole channels
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout2d {
    /// The probability of zeroing a channel, in `[0, 1)`.
    pub p: f64,
}

impl Dropout2d {
    /// Channel dropout with probability `p`.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`.
    #[track_caller]
    pub fn new(p: f64) -> Self {
        check_p("Dropout2d", p);
        Dropout2d { p }
    }

    /// Applies channel dropout in training mode, the identity otherwise.
    ///
    /// # Panics
    /// If `x` is not 4-D `(batch, channels, height, width)` (for `(batch, channels, length)`, use
    /// [`Dropout1d`]).
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_with_mask(p, x).0
    }

    /// As [`forward`](Self::forward), also returning the mask drawn, `(batch, channels, 1, 1)`
    /// with entries 0 or `1 / (1 − p)` (`None` when no dropout was applied).
    ///
    /// # Panics
    /// As [`forward`](Self::forward).
    #[track_caller]
    pub fn forward_with_mask<'t, T: Float>(
        &self,
        p: &Bound<'t, T>,
        x: Var<'t, T>,
    ) -> (Var<'t, T>, Option<autograd::Tensor<T>>) {
        let shape = x.shape();
        assert!(
            shape.len() == 4,
            "Dropout2d: input of shape {:?} is not (batch, channels, height, width); use Dropout1d for (batch, channels, length)",
            shape.as_slice()
        );
        if self.p == 0.0 || !p.is_training() {
            return (x, None);
        }
        let (y, mask) = channel_dropout(x, self.p, 2);
        (y, Some(mask))
    }
}

impl Module for Dropout2d {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        Dropout2d::forward(self, p, x)
    }
}

/// Channel dropout for sequences, as PyTorch's `nn.Dropout1d`: in training mode, each channel of
/// `x` `(batch, channels, length)` (or `(channels, length)`) is zeroed as a whole with probability
/// `p`, and the kept channels are scaled by `1 / (1 − p)`; in evaluation mode the identity.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use nn::{Dropout1d, ParamStore};
/// let store = ParamStore::<f32>::default();
/// let tape = Tape::with_seed(3);
/// let x = tape.constant(Tensor::ones(&[16, 5]));
/// let y = Dropout1d::new(0.5).forward(&store.bind(&tape), x).value();
/// for channel in y.data().chunks(5) {
///     assert!(channel.iter().all(|&v| v == 0.0) || channel.iter().all(|&v| v == 2.0));
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout1d {
    /// The probability of zeroing a channel, in `[0, 1)`.
    pub p: f64,
}

impl Dropout1d {
    /// Channel dropout with probability `p`.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`.
    #[track_caller]
    pub fn new(p: f64) -> Self {
        check_p("Dropout1d", p);
        Dropout1d { p }
    }

    /// Applies channel dropout in training mode, the identity otherwise.
    ///
    /// # Panics
    /// If `x` is not 2-D `(channels, length)` or 3-D `(batch, channels, length)`.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_with_mask(p, x).0
    }

    /// As [`forward`](Self::forward), also returning the mask drawn, `(batch, channels, 1)` (or
    /// `(channels, 1)`) with entries 0 or `1 / (1 − p)` (`None` when no dropout was applied).
    ///
    /// # Panics
    /// As [`forward`](Self::forward).
    #[track_caller]
    pub fn forward_with_mask<'t, T: Float>(
        &self,
        p: &Bound<'t, T>,
        x: Var<'t, T>,
    ) -> (Var<'t, T>, Option<autograd::Tensor<T>>) {
        let shape = x.shape();
        assert!(
            shape.len() == 2 || shape.len() == 3,
            "Dropout1d: input of shape {:?} is not (channels, length) or (batch, channels, length)",
            shape.as_slice()
        );
        if self.p == 0.0 || !p.is_training() {
            return (x, None);
        }
        let (y, mask) = channel_dropout(x, self.p, shape.len() - 1);
        (y, Some(mask))
    }
}

impl Module for Dropout1d {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        Dropout1d::forward(self, p, x)
    }
}

/// SELU's `−λα`: the value a dropped unit takes before the affine correction.
const SELU_NEG_SATURATION: f64 = -1.758_099_340_847_376_6;

/// Alpha dropout for self-normalizing (SELU) networks, as PyTorch's `nn.AlphaDropout`: in
/// training mode each element is kept with probability `1 − p` or set to SELU's negative
/// saturation `α' = −λα ≈ −1.7581`, then the result is mapped by `a·v + b` with
/// `a = ((1 − p)(1 + p·α'²))^(−½)` and `b = −a·α'·p`, so inputs of zero mean and unit variance
/// keep them. The gradient is `a` for kept elements and 0 for dropped ones. In evaluation mode
/// the identity.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use nn::{AlphaDropout, ParamStore};
/// let store = ParamStore::<f64>::default();
/// let tape = Tape::with_seed(3);
/// let x = tape.constant(Tensor::zeros(&[1000]));
/// let y = AlphaDropout::new(0.2).forward(&store.bind(&tape), x).value();
/// let (a, sat) = (1.0 / (0.8 * (1.0 + 0.2 * 1.7580993408473766f64.powi(2))).sqrt(), -1.7580993408473766);
/// let b = -a * sat * 0.2;
/// assert!(y.data().iter().all(|&v| (v - b).abs() < 1e-12 || (v - (a * sat + b)).abs() < 1e-12));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlphaDropout {
    /// The probability of dropping an element, in `[0, 1)`.
    pub p: f64,
}

impl AlphaDropout {
    /// Alpha dropout with probability `p`.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`.
    #[track_caller]
    pub fn new(p: f64) -> Self {
        check_p("AlphaDropout", p);
        AlphaDropout { p }
    }

    /// The affine correction `(a, b)` for probability `p`.
    pub fn affine(p: f64) -> (f64, f64) {
        let sat = SELU_NEG_SATURATION;
        let a = 1.0 / ((1.0 - p) * (1.0 + p * sat * sat)).sqrt();
        (a, -a * sat * p)
    }

    /// Applies alpha dropout in training mode, the identity otherwise.
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_with_mask(p, x).0
    }

    /// As [`forward`](Self::forward), also returning the mask drawn, of `x`'s shape, with 1 for
    /// kept elements and 0 for dropped ones (`None` when no dropout was applied).
    pub fn forward_with_mask<'t, T: Float>(
        &self,
        p: &Bound<'t, T>,
        x: Var<'t, T>,
    ) -> (Var<'t, T>, Option<autograd::Tensor<T>>) {
        if self.p == 0.0 || !p.is_training() {
            return (x, None);
        }
        let keep = draw_mask(x.tape(), &x.shape(), self.p).map(|m| if m == T::ZERO { T::ZERO } else { T::ONE });
        let (a, b) = Self::affine(self.p);
        let (a, dropped) = (T::from_f64(a), T::from_f64(a * SELU_NEG_SATURATION + b));
        let (b, tape) = (T::from_f64(b), x.tape());
        // y = x·(a·k) + (k ? b : a·α' + b), k the keep mask.
        let scale = tape.constant(keep.map(|k| k * a));
        let shift = tape.constant(keep.map(|k| if k == T::ZERO { dropped } else { b }));
        (x * scale + shift, Some(keep))
    }
}

impl Module for AlphaDropout {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        AlphaDropout::forward(self, p, x)
    }
}
