//! [`Mlp`]: a stack of [`Linear`] layers with an [`Activation`] between them (none after the
//! last), and the activation functions themselves.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{Activation, Mlp, ParamStore};
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let mlp = Mlp::new(store.scope("mlp"), &[2, 16, 16, 1], Activation::Tanh);
//! assert_eq!(store.num_params(), 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1);
//! let tape = Tape::new();
//! let y = mlp.forward(&store.bind(&tape), tape.constant(Tensor::zeros(&[8, 2])));
//! assert_eq!(y.shape().as_slice(), &[8, 1]);
//! ```

use autograd::{Float, Var};

use crate::{Bound, Linear, Module, Scope};

/// An element-wise nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// `max(x, 0)`.
    #[default]
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^−x)`.
    Sigmoid,
    /// `x·Φ(x)` with the exact normal CDF (erf).
    Gelu,
    /// GELU's tanh approximation (GPT-2's).
    GeluTanh,
    /// `ln(1 + e^x)`.
    Softplus,
    /// The identity.
    Identity,
}

impl Activation {
    /// Applies the function element-wise.
    #[track_caller]
    pub fn apply<'t, T: Float>(self, x: Var<'t, T>) -> Var<'t, T> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Gelu => x.gelu(),
            Activation::GeluTanh => x.gelu_tanh(),
            Activation::Softplus => x.softplus(),
            Activation::Identity => x,
        }
    }
}

/// Linear layers of the given sizes with `activation` between them; see the
/// [module docs](self). Parameters are named `"{scope}.{i}.weight"` and `"{scope}.{i}.bias"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mlp {
    /// The layers, input first.
    pub layers: Vec<Linear>,
    /// The nonlinearity between layers.
    pub activation: Activation,
}

impl Mlp {
    /// An MLP through `sizes` (`[in, hidden…, out]`), each layer with a bias and PyTorch's
    /// default initialization.
    ///
    /// # Panics
    /// If `sizes` has fewer than two entries.
    #[track_caller]
    pub fn new<T: Float>(mut scope: Scope<'_, T>, sizes: &[usize], activation: Activation) -> Self {
        assert!(sizes.len() >= 2, "Mlp::new: need at least [in, out] sizes, got {sizes:?}");
        let layers = sizes.windows(2).enumerate().map(|(i, w)| Linear::new(scope.scope(i), w[0], w[1])).collect();
        Mlp { layers, activation }
    }

    /// Runs the layers in turn, the activation after each but the last.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        // A loop, not a fold: a closure would cut the chain of `#[track_caller]` locations that
        // lets the nodes name the user's line.
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(p, h);
            if i + 1 < self.layers.len() {
                h = self.activation.apply(h);
            }
        }
        h
    }
}

impl Module for Mlp {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        Mlp::forward(self, p, x)
    }
}
