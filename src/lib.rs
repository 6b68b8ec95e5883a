//! pente: tape-based reverse-mode automatic differentiation, with the layers, losses, optimizers
//! and checkpoints to train real models, and four models that show it working.
//!
//! This facade re-exports the workspace's three crates so that one dependency brings them all:
//!
//! | crate | what it holds |
//! | --- | --- |
//! | [`autograd`] | `Tensor`, `Tape`, `Var`, every differentiable op and its derivative, gradient checking |
//! | [`nn`] | parameters, layers, losses, optimizers, checkpoints (save / load, safetensors) |
//! | [`models`] | the curve fit, the attractor classifier, figures and the `pente` CLI's models |
//!
//! ```
//! use pente::autograd::Tape;
//! let tape = Tape::<f64>::new();
//! let (a, b) = (tape.var(3.0), tape.var(2.0));
//! let grads = (a * b + b.powf(3.0)).backward();
//! assert_eq!((grads[a].item(), grads[b].item()), (2.0, 15.0));
//! ```

pub use autograd;
pub use models;
pub use nn;
