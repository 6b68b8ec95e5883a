//! Tensors, a tape, and reverse-mode gradients: the foundation of pente.
//!
//! # Brief overview
//!
//! - [`Tensor`] is an n-dimensional `f32`/`f64` array, row-major, its data shared behind an
//!   `Arc` (cheap to clone) and its shape inline (a scalar allocates nothing for its shape).
//! - [`Tape`] is a Wengert list: every value computed in a step, in creation order, with the
//!   [`Op`] and inputs that produced it and the source line that asked for it.
//! - [`Var`] is a `Copy` handle to one node of a tape, with the ops as methods and operators, so
//!   models read like math: `(x.matmul(w) + b).relu()`.
//! - [`Var::backward`] sweeps the tape once in reverse and returns [`Grads`]: the gradient of
//!   every node by its `Var`. [`Tape::grad`] returns gradients as `Var`s that can be
//!   differentiated again (Hessian-vector products, gradient penalties).
//! - [`Op`] is the trait every op implements, built-in or yours; [`op`] walks through a complete
//!   custom op, and [`check`] verifies its gradient against finite differences. An element-wise
//!   op can instead state its derivative once, as a [`derivative`] rule, and get every backward
//!   path from it.
//! - Forward mode: [`Tape::dual`] makes a leaf carry a tangent, and every op computes its
//!   output's tangent ([`Op::jvp`]) as it is recorded, read with [`Var::tangent`];
//!   [`functional`] has `jvp`, `vjp`, `jacobian`, `hessian`, `hvp` and per-example gradients.
//! - The speed needs nothing from your program: [`simd`] picks AVX-512, AVX2 or baseline code for
//!   the kernels when the program runs, [`recycle`] reuses large buffers from step to step, and
//!   [`threads`] makes the main thread one of rayon's workers at its first tape.
//!
//! ```
//! use autograd::{Tape, Tensor};
//!
//! let tape = Tape::<f64>::new();
//! let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]));
//! let w = tape.var(Tensor::from_vec(vec![0.5, -1.0], &[2, 1]));
//! let loss = x.matmul(w).tanh().sum(); // (2, 2) · (2, 1) → (2, 1) → scalar
//! let grads = loss.backward();
//! assert_eq!(grads[w].shape(), &[2, 1]);
//! assert_eq!(grads[x].shape(), &[2, 2]);
//! ```
//!
//! Shape mistakes are programming errors: ops panic with the op's name, the shapes and the
//! caller's source line (see [`shape_panic`]).
#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod check;
pub mod derivative;
pub mod fastmath;
mod float;
pub mod functional;
mod grads;
pub mod inspect;
pub mod kernels;
pub mod op;
pub mod ops;
pub mod precision;
pub mod recycle;
pub mod shape;
mod tape;
mod tensor;
pub mod threads;
pub mod trace;
pub mod warm;

pub use float::Float;
pub use grads::Grads;
pub use kernels::simd;
pub use op::Op;
pub use shape::Shape;
pub use tape::{shape_panic, Tape, Var};
pub use tensor::{Tensor, PAR_THRESHOLD};
pub use warm::KeepWarm;

/// `Rng::seed_from_u64` and friends.
pub use rand::SeedableRng;
/// The ChaCha8 generator used for every seeded random draw in pente (its stream does not change
/// across `rand` versions).
pub use rand_chacha::ChaCha8Rng as Rng;
