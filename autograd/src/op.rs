//! The [`Op`] trait: what every differentiable operation, built-in or yours, implements.
//!
//! An op is a name, a forward over tensors and a backward over `Var`s. Writing the backward with
//! `Var` operations on the same tape is what makes gradients differentiable again: a second
//! derivative is just another backward through the nodes the first one recorded.
//!
//! An element-wise op is simpler to write as a [`derivative`](crate::derivative) rule: its
//! derivative is stated once, and the differentiable backward and the fast paths over tensors
//! and single numbers all come from it.
//!
//! # A complete custom op
//!
//! `cube(x) = x³`, with `d cube / dx = 3x²`:
//!
//! ```
//! use autograd::{check, Float, Op, Tape, Tensor, Var};
//!
//! struct Cube;
//!
//! impl<T: Float> Op<T> for Cube {
//!     fn name(&self) -> &'static str {
//!         "cube"
//!     }
//!
//!     fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
//!         inputs[0].map(|x| x * x * x)
//!     }
//!
//!     // d x³/dx = 3x², written with Vars so that it can itself be differentiated.
//!     fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>)
//!         -> Vec<Option<Var<'t, T>>> {
//!         let x = inputs[0];
//!         vec![Some(grad_out * 3.0 * x * x)]
//!     }
//! }
//!
//! let tape = Tape::<f64>::new();
//! let x = tape.var(2.0);
//! let y = tape.apply(Cube, &[x]);
//! assert_eq!(y.backward()[x].item(), 12.0);
//!
//! // First and second order against central finite differences.
//! check::gradcheck(|v| v[0].tape().apply(Cube, &[v[0]]).sum(), &[vec![0.5, -1.5, 2.0].into()]);
//! check::gradgradcheck(|v| v[0].tape().apply(Cube, &[v[0]]).sum(), &[vec![0.5, -1.5, 2.0].into()]);
//! ```

use smallvec::SmallVec;

pub use crate::tape::{double_vjp_calls, jvp_by_double_vjp};
use crate::{Float, Tensor, Var};

/// Gradients computed directly on tensors by [`Op::backward_values`], one per input.
pub type TensorGrads<T> = SmallVec<[Option<Tensor<T>>; 2]>;

/// A differentiable operation: a forward over tensors and a backward over `Var`s.
///
/// Record an op on a tape with [`Tape::apply`](crate::Tape::apply). The built-in ops of
/// [`crate::ops`] are implemented exactly this way.
pub trait Op<T: Float>: 'static {
    /// The op's name, as shown in graph summaries, DOT exports and error messages.
    fn name(&self) -> &'static str;

    /// Computes the output from the inputs' values.
    ///
    /// Validate shapes here and report a mismatch with
    /// [`shape_panic`](crate::shape_panic), which names the caller's source line.
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T>;

    /// Given the gradient of the final output with respect to this op's output (`grad_out`,
    /// shaped like `out`), returns the gradient with respect to each input, in order: `None`
    /// for an input that gets no gradient (an integer index, say).
    ///
    /// Write it with `Var` operations so that it can be differentiated again. An input whose
    /// [`Var::requires_grad`] is false may be given `None` to save work. When the tape is not
    /// recording ([`Tape::is_recording`](crate::Tape::is_recording)), nobody will differentiate
    /// this gradient, and a backward may compute it directly as a
    /// [`Tape::constant`](crate::Tape::constant) instead.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>>;

    /// Optional fast path for a plain (non-differentiable) backward: the same gradients as
    /// [`Op::backward`], computed directly on tensors, with nothing recorded on the tape.
    /// `needs_grad[i]` says whether input `i` wants a gradient (`None` may be returned for the
    /// others). Return `None` (the default) to use `backward`.
    ///
    /// Element-wise ops get it from their [`derivative`](crate::derivative) rule. Ops with a
    /// kernel of their own (a matrix product, a fused attention) implement it by hand, and the
    /// test suite checks it against `backward` for each of them.
    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        out: &Tensor<T>,
        grad_out: &Tensor<T>,
        needs_grad: &[bool],
    ) -> Option<TensorGrads<T>> {
        let _ = (inputs, out, grad_out, needs_grad);
        None
    }

    /// Optional fastest path for a node whose inputs and output are all single numbers (0-d
    /// tensors, as in a micrograd-style scalar graph), in a plain backward: writes the gradient
    /// of each input into `grads` (same order as `inputs`; `grads` starts zeroed) and returns
    /// `true`. Return `false` (the default) to use [`Op::backward_values`] or [`Op::backward`].
    ///
    /// The tape keeps the gradients of 0-d nodes as plain numbers during the sweep, so an op
    /// that implements this costs no tensor at all in backward. Element-wise ops get it from
    /// their [`derivative`](crate::derivative) rule, the same rule as their other backwards.
    fn backward_scalar(&self, inputs: &[T], out: T, grad_out: T, grads: &mut [T]) -> bool {
        let _ = (inputs, out, grad_out, grads);
        false
    }

    /// The op's attributes for an exporter ([`Tape::trace`](crate::Tape::trace)): a reshape's
    /// shape, a convolution's stride, …, or [`OpAttrs::Plain`](crate::trace::OpAttrs::Plain)
    /// for an op without any. `None` (the default) says the op cannot be exported: an exporter
    /// then fails naming it. Built-in ops that can appear in an inference graph implement it;
    /// training-only ops (dropout, cross-entropy, the adjoints) do not.
    fn attrs(&self) -> Option<crate::trace::OpAttrs> {
        None
    }

    /// The tangent of the output in forward mode (see [`Tape::dual`](crate::Tape::dual)):
    /// `J·v`, given the output `out` and the tangent of each input (`None` for an input whose
    /// tangent is zero; at least one is `Some`). Return `None` for a zero tangent.
    ///
    /// Write it with `Var` operations, like [`Op::backward`], so that the tangent can itself be
    /// differentiated (reverse over forward) and so that a tangent taken of a gradient is a
    /// Hessian-vector product (forward over reverse). The tape computes it with forward mode
    /// suspended: the operations of a tangent rule carry no tangents of their own.
    ///
    /// The default derives the tangent from [`Op::backward`] by the double-vjp identity
    /// ([`jvp_by_double_vjp`]): exact, but two reverse passes
    /// through the op's backward per call instead of one rule; the built-in ops all have rules
    /// of their own.
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        jvp_by_double_vjp(self, inputs, out, tangents)
    }
}
