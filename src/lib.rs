//! pente: tape-based reverse-mode automatic differentiation, with the layers, losses, optimizers
//! and checkpoints to train real models, and four models that show it working.
//!
//! This facade re-exports the workspace's crates so that one dependency brings them:
//!
//! | crate | what it holds |
//! | --- | --- |
//! | [`autograd`] | `Tensor`, `Tape`, `Var`, every differentiable op and its derivative, gradient checking |
//! | [`nn`] | parameters, layers, losses, optimizers, checkpoints (save / load, safetensors) |
//! | `models` | the curve fit, the attractor classifier, the digits and char-lm models, their figures: only with the `models` feature |
//! | `onnx` | ONNX export of a traced forward pass: only with the `onnx` feature |
//!
//! `pente = { path = "…" }` brings autograd and nn only; `features = ["models"]` adds
//! `pente::models` (and its dependencies: plotters, indicatif, png, flate2, sha2). The `pente`
//! command-line tool is the `pente-cli` package (`cargo install --path cli`).
//!
//! ```
//! use pente::autograd::Tape;
//! let tape = Tape::<f64>::new();
//! let (a, b) = (tape.var(3.0), tape.var(2.0));
//! let grads = (a * b + b.powf(3.0)).backward();
//! assert_eq!((grads[a].item(), grads[b].item()), (2.0, 15.0));
//! ```

pub use autograd;
#[cfg(feature = "models")]
pub use models;
pub use nn;
#[cfg(feature = "onnx")]
pub use onnx;

/// The README, compiled as documentation only while rustdoc collects doctests, so that its
/// example is tested by `cargo test` (`scripts/readme-crate` also builds it in a fresh crate).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub mod readme {}

/// The guide's chapters (`docs/guide/src`), compiled as documentation only while rustdoc collects
/// doctests, so that `cargo test` compiles and runs every Rust snippet of the book.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../docs/guide/src/introduction.md")]
    pub mod introduction {}
    #[doc = include_str!("../docs/guide/src/what-is-a-model.md")]
    pub mod what_is_a_model {}
    #[doc = include_str!("../docs/guide/src/curve-fit.md")]
    pub mod curve_fit {}
    #[doc = include_str!("../docs/guide/src/neurons.md")]
    pub mod neurons {}
    #[doc = include_str!("../docs/guide/src/attractors.md")]
    pub mod attractors {}
    #[doc = include_str!("../docs/guide/src/gradient-descent.md")]
    pub mod gradient_descent {}
    #[doc = include_str!("../docs/guide/src/digits.md")]
    pub mod digits {}
    #[doc = include_str!("../docs/guide/src/next-character.md")]
    pub mod next_character {}
    #[doc = include_str!("../docs/guide/src/own-crate.md")]
    pub mod own_crate {}
    #[doc = include_str!("../docs/guide/src/tape.md")]
    pub mod tape {}
    #[doc = include_str!("../docs/guide/src/custom-layers-and-ops.md")]
    pub mod custom_layers_and_ops {}
    #[doc = include_str!("../docs/guide/src/debugging-gradients.md")]
    pub mod debugging_gradients {}
    #[doc = include_str!("../docs/guide/src/saving.md")]
    pub mod saving {}
    #[doc = include_str!("../docs/guide/src/performance.md")]
    pub mod performance {}
    #[doc = include_str!("../docs/guide/src/physics-in-the-loss.md")]
    pub mod physics_in_the_loss {}
    #[doc = include_str!("../docs/guide/src/forward-mode.md")]
    pub mod forward_mode {}
    #[doc = include_str!("../docs/guide/src/several-machines.md")]
    pub mod several_machines {}
}
