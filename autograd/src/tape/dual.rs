//! Forward mode on the tape: tangents carried beside the values, as dual numbers.
//!
//! A leaf made by [`Tape::dual`] carries a tangent (a direction `v`). From then on, each op
//! applied to an input that carries a tangent asks its [`Op::jvp`] for the output's tangent, at
//! once, as the node is recorded: one forward pass computes `f(x)` and `J·v` together. The
//! tangents are ordinary nodes on the same tape, so a gradient of a tangent (reverse over
//! forward) and the tangent of a gradient (forward over reverse: [`Tape::grad`] of a function
//! of dual numbers gives the Hessian-vector product as the gradient's tangent) both work.
//!
//! A tape without dual numbers pays one test of a flag per op (`Tangents::carries`).

use std::panic::Location;

use smallvec::SmallVec;

use super::{Node, RecordingGuard, Tape, Var};
use crate::{shape_panic, Float, Op, Tensor};

/// The tangent node of each node that carries one, by node id.
#[derive(Default)]
pub(crate) struct Tangents {
    /// `ids[node]` is the node holding that node's tangent; shorter than the tape when the last
    /// nodes carry none, empty when forward mode was never used.
    ids: Vec<Option<usize>>,
    /// How many [`Suspend`] guards are alive: tangent rules themselves, and plain backward
    /// sweeps, compute no tangents of their own.
    suspended: u32,
    /// Some node carries a tangent and no guard is alive: the one flag `Tape::apply` reads.
    on: bool,
    /// Tangent rules run with recording off (see [`Tape::set_differentiable_tangents`]).
    constant: bool,
}

impl Tangents {
    /// Whether an op applied to `inputs` must compute a tangent.
    #[inline(always)]
    pub(super) fn carries<T: Float>(&self, inputs: &[Var<'_, T>]) -> bool {
        self.on && inputs.iter().any(|v| matches!(self.ids.get(v.id), Some(Some(_))))
    }

    fn get(&self, node: usize) -> Option<usize> {
        self.ids.get(node).copied().flatten()
    }

    fn set(&mut self, node: usize, tangent: usize) {
        if self.ids.len() <= node {
            self.ids.resize(node + 1, None);
        }
        self.ids[node] = Some(tangent);
        self.on = self.suspended == 0;
    }
}

/// Stops tangents from being computed while it lives (restored when dropped, also on panic).
pub(super) struct Suspend<'a, T: Float> {
    tape: &'a Tape<T>,
}

impl<'a, T: Float> Suspend<'a, T> {
    pub(super) fn new(tape: &'a Tape<T>) -> Self {
        let mut inner = tape.inner.borrow_mut();
        inner.duals.suspended += 1;
        inner.duals.on = false;
        Suspend { tape }
    }
}

impl<T: Float> Drop for Suspend<'_, T> {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.tape.inner.try_borrow_mut() {
            let duals = &mut inner.duals;
            duals.suspended -= 1;
            duals.on = duals.suspended == 0 && !duals.ids.is_empty();
        }
    }
}

/// Computes tangents again while it lives, inside the one [`Suspend`] of a tangent rule
/// (suspended again when dropped, also on panic).
struct Resume<'a, T: Float> {
    tape: &'a Tape<T>,
}

impl<T: Float> Drop for Resume<'_, T> {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.tape.inner.try_borrow_mut() {
            inner.duals.suspended += 1;
            inner.duals.on = false;
        }
    }
}

impl<T: Float> Tape<T> {
    /// Runs `f` with tangents computed, from inside a tangent rule: for an op whose tangent is
    /// the forward pass of a segment of ops run again (a checkpoint's), each of them by its own
    /// rule.
    pub(super) fn with_tangents_resumed<R>(&self, f: impl FnOnce() -> R) -> R {
        let resume = {
            let mut inner = self.inner.borrow_mut();
            let duals = &mut inner.duals;
            assert_eq!(duals.suspended, 1, "with_tangents_resumed: called outside a tangent rule");
            duals.suspended = 0;
            duals.on = !duals.ids.is_empty();
            Resume { tape: self }
        };
        let r = f();
        drop(resume);
        r
    }

    /// A differentiable leaf that carries a tangent: forward mode's dual number `value + ε·tangent`.
    ///
    /// Every op applied to it, and to what is computed from it, computes its output's tangent
    /// at once (the Jacobian-vector product `J·v` of the function so far, with `v = tangent`),
    /// read with [`Var::tangent`]. The cost is one forward pass with a tangent rule per op
    /// (about two to three times the forward alone), not a reverse sweep. The functions of
    /// [`crate::functional`] wrap this; use it directly to read tangents of intermediate values
    /// or to combine forward and reverse mode on one tape.
    ///
    /// ```
    /// use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.dual(2.0, 1.0);          // x = 2, dx = 1
    /// let y = x * x * x;                    // y = x³ = 8
    /// assert_eq!(y.tangent().unwrap().item(), 12.0); // dy = 3x²·dx = 12
    ///
    /// // Forward over reverse: the tangent of the gradient is a Hessian-vector product.
    /// let g = tape.grad(y, &[x])[0];        // 3x² = 12
    /// assert_eq!(g.tangent().unwrap().item(), 12.0); // 6x·dx = 12
    /// ```
    ///
    /// # Panics
    /// If `tangent` does not have `value`'s shape.
    #[track_caller]
    pub fn dual(&self, value: impl Into<Tensor<T>>, tangent: impl Into<Tensor<T>>) -> Var<'_, T> {
        let (value, tangent) = (value.into(), tangent.into());
        if value.shape() != tangent.shape() {
            shape_panic(
                "dual",
                &format!("a tangent of shape {:?} for a value of shape {:?}", tangent.shape(), value.shape()),
            );
        }
        let location = Location::caller();
        let x = self.push_leaf(value, "var", true, location);
        let t = self.push_leaf(tangent, "const", false, location);
        self.inner.borrow_mut().duals.set(x.id, t.id);
        x
    }

    /// Whether tangents are recorded so that they can be differentiated (on, the default), or
    /// computed as constants (off): each tangent rule then runs with recording off, on its
    /// fastest path (one fused pass for an element-wise op), and a gradient taken of a tangent
    /// is zero. Turn it off when only the tangents' values are read: a `jvp`, or a
    /// Hessian-vector product as the tangent of a gradient (forward over reverse), which is
    /// what [`crate::functional`] does. Values and gradients are recorded as before.
    ///
    /// ```
    /// use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// tape.set_differentiable_tangents(false);
    /// let x = tape.dual(2.0, 1.0);
    /// let g = tape.grad(x.powi(3), &[x])[0];          // 3x² = 12
    /// assert_eq!(g.tangent().unwrap().item(), 12.0);  // 6x·dx = 12
    /// ```
    pub fn set_differentiable_tangents(&self, on: bool) {
        self.inner.borrow_mut().duals.constant = !on;
    }

    /// Records the node of an op one of whose inputs carries a tangent, then the output's
    /// tangent from the op's [`Op::jvp`] (computed with tangents suspended: a tangent carries
    /// no tangent of its own).
    pub(super) fn push_dual<'t>(&'t self, op: impl Op<T>, inputs: &[Var<'t, T>], mut node: Node<T>) -> Var<'t, T> {
        if node.requires_grad {
            for v in inputs {
                node.inputs.push(v.id);
            }
        }
        let keep = node.requires_grad;
        let out = {
            let mut inner = self.inner.borrow_mut();
            inner.nodes.push(node);
            Var { id: inner.nodes.len() - 1, tape: self }
        };
        let tangents: SmallVec<[Option<Var<'t, T>>; 4]> = {
            let inner = self.inner.borrow();
            inputs.iter().map(|v| inner.duals.get(v.id).map(|id| Var { id, tape: self })).collect()
        };
        let constant = self.inner.borrow().duals.constant;
        let tangent = {
            let _suspend = Suspend::new(self);
            if constant {
                let _off = RecordingGuard::set(self, false);
                op.jvp(inputs, out, &tangents)
            } else {
                op.jvp(inputs, out, &tangents)
            }
        };
        // The op joins its node only now, so that a tangent rule that panics (and is caught)
        // leaves no node whose op went missing half-way.
        if keep {
            self.inner.borrow_mut().nodes[out.id].op = Some(Box::new(op));
        }
        if let Some(t) = tangent {
            assert!(std::ptr::eq(t.tape, self), "jvp of `{}` returned a tangent from another tape", out.op_name());
            if t.shape() != out.shape() {
                shape_panic(
                    out.op_name(),
                    &format!(
                        "its jvp returned a tangent of shape {:?} for an output of shape {:?}",
                        t.shape(),
                        out.shape()
                    ),
                );
            }
            self.inner.borrow_mut().duals.set(out.id, t.id);
        }
        out
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The tangent this node carries in forward mode (see [`Tape::dual`]): the derivative of
    /// this value along the dual leaves' tangents. `None` if it does not depend on a dual leaf
    /// (its tangent is zero).
    pub fn tangent(self) -> Option<Var<'t, T>> {
        self.tape.inner.borrow().duals.get(self.id).map(|id| Var { id, tape: self.tape })
    }
}

thread_local! {
    /// How many tangents [`jvp_by_double_vjp`] derived on this thread.
    static DOUBLE_VJP_CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many tangents this thread has derived through [`jvp_by_double_vjp`] (the fallback of ops
/// without a tangent rule). A test can assert that it did not grow while an op ran in forward
/// mode, which proves that the op has a tangent rule of its own.
pub fn double_vjp_calls() -> u64 {
    DOUBLE_VJP_CALLS.with(|c| c.get())
}

/// The tangent rule of an op bilinear in its first two inputs and affine in an optional third,
/// a bias (`matmul_bias`, `conv2d`, `conv_transpose2d`): `d out = f(da, b) + f(a, db) + dc`.
/// `f(a, b, c)` is the op itself, with `c` the bias or none; the bias's tangent is folded into
/// the first term there is, so it costs no extra pass, and `spread(dc)` broadcasts it to the
/// output's shape when neither `a` nor `b` has a tangent.
pub(crate) fn bilinear_tangent<'t, T: Float>(
    inputs: &[Var<'t, T>],
    tangents: &[Option<Var<'t, T>>],
    mut f: impl FnMut(Var<'t, T>, Var<'t, T>, Option<Var<'t, T>>) -> Var<'t, T>,
    spread: impl FnOnce(Var<'t, T>) -> Var<'t, T>,
) -> Option<Var<'t, T>> {
    let (a, b) = (inputs[0], inputs[1]);
    let mut dc = tangents.get(2).copied().flatten();
    let first = tangents[0].map(|da| f(da, b, dc.take()));
    let second = tangents[1].map(|db| f(a, db, dc.take()));
    match (first, second, dc) {
        (Some(x), Some(y), _) => Some(x + y),
        (x, y, None) => x.or(y),
        (None, None, Some(dc)) => Some(spread(dc)),
        (Some(_), None, Some(_)) | (None, Some(_), Some(_)) => unreachable!("the bias tangent was folded into a term"),
    }
}

/// The tangent of `op`'s output from its differentiable backward, for an op without a tangent
/// rule of its own (the default [`Op::jvp`]).
///
/// It uses the double-vjp identity: the backward `u ↦ uᵀJ` is linear in `u`, so
/// `J·v = ∂/∂u ⟨uᵀJ, v⟩`. That is the op's backward recorded once at `u = 0` and swept once in
/// reverse: two reverse passes through the op's backward, instead of one tangent rule, plus a
/// walk over the tape's node list (so a graph of many such ops costs time quadratic in its
/// length). It needs a backward written with `Var` operations (which every op has) and is
/// exact, as differentiable as that backward.
pub fn jvp_by_double_vjp<'t, T: Float, O: Op<T> + ?Sized>(
    op: &O,
    inputs: &[Var<'t, T>],
    out: Var<'t, T>,
    tangents: &[Option<Var<'t, T>>],
) -> Option<Var<'t, T>> {
    if tangents.iter().all(Option::is_none) {
        return None;
    }
    DOUBLE_VJP_CALLS.with(|c| c.set(c.get() + 1));
    let tape = out.tape;
    let _record = RecordingGuard::set(tape, true);
    // A backward may skip inputs that need no gradient: stand-ins that need one take their
    // place (their tangent is still the input's).
    let xs: SmallVec<[Var<'t, T>; 4]> = inputs
        .iter()
        .zip(tangents)
        .map(|(&x, t)| if t.is_some() && !x.requires_grad() { tape.var(x.value()) } else { x })
        .collect();
    let u = tape.var(Tensor::zeros(&out.shape()));
    let mut dot: Option<Var<'t, T>> = None;
    for (w, t) in op.backward(&xs, out, u).into_iter().zip(tangents) {
        if let (Some(w), Some(t)) = (w, *t) {
            let term = (w * t).sum();
            dot = Some(match dot {
                None => term,
                Some(d) => d + term,
            });
        }
    }
    Some(tape.grad(dot?, &[u])[0])
}
