//! Gradient checkpointing ([`Tape::checkpoint`]): a segment of the computation that keeps only
//! its inputs and its output on the tape, and is run again in backward to get its gradients
//! (PyTorch's `torch.utils.checkpoint`, JAX's `jax.checkpoint`).
//!
//! The segment first runs on a tape of its own, which is dropped with every intermediate value
//! as soon as the output is known; the main tape records one `checkpoint` node. Its backward
//! runs the segment again from the saved inputs, with the random stream as it was the first
//! time (so dropout draws the same masks), and back-propagates through that recomputation:
//!
//! - in a plain backward ([`Var::backward`]), on a tape of its own again, dropped once the
//!   inputs' gradients are known, so at most one segment's intermediates are alive at a time;
//! - in a differentiable one ([`Tape::grad`]), on the main tape with `Var`s, so the gradient can
//!   be differentiated again (the recomputed nodes then stay on the tape, as they must).
//!
//! Either way, the recomputation runs the same ops on the same values in the same order as an
//! uncheckpointed run, so the gradients are the same to the last bit: the only difference is
//! where a segment's contributions to an input's gradient are summed. Each input's
//! contributions from inside the segment are added together first and then to those from
//! outside; when an input is used both inside the segment (twice or more) and outside it, that
//! sum may round differently in the last place.

use std::collections::HashMap;
use std::panic::Location;
use std::rc::Rc;

use rand_chacha::ChaCha8Rng;

use super::{Inner, Node, Tape, Var};
use crate::op::TensorGrads;
use crate::{Float, KeepWarm, Op, Tensor};

/// A segment: the function of the inputs that is recomputed instead of kept.
type Segment<T> = Rc<dyn for<'s> Fn(&[Var<'s, T>]) -> Var<'s, T>>;

/// The `checkpoint` node's op: the segment, and the random stream it first ran with.
struct Checkpoint<T: Float> {
    segment: Segment<T>,
    /// The tape's random generator as it was when the segment first ran.
    rng: ChaCha8Rng,
    /// Whether the tape had anomaly detection on (the tapes of recomputations get it too).
    anomaly: bool,
    /// The tape's precision when the segment was recorded (its recomputations use it too).
    precision: crate::precision::Precision,
    /// The user's line that made the checkpoint, for error messages.
    location: &'static Location<'static>,
}

impl<T: Float> Tape<T> {
    /// Runs `segment` on `inputs` without keeping its intermediate values: only the inputs and
    /// the output stay on the tape, and backward runs the segment again to get its gradients.
    /// This trades compute (about one more forward of the segment) for memory (its
    /// intermediates), as PyTorch's `torch.utils.checkpoint` does.
    ///
    /// The gradients are the same to the last bit as without the checkpoint, dropout included:
    /// the recomputation draws from the random stream as it was the first time, and the stream
    /// continues after the segment as if it had run in place. (One exception: an input used
    /// twice or more inside the segment and also outside it may get a gradient that differs in
    /// the last place, as its contributions are summed in another order.) Differentiating a
    /// gradient again ([`Tape::grad`]) works through a checkpoint too.
    ///
    /// The segment must reach everything it differentiates through `inputs`: a parameter is
    /// passed as an input like any other value (nn's `Bound::checkpoint` does it for layers).
    /// The `'static` bound and the fresh lifetime `'s` let the compiler refuse a segment that
    /// captures a `Var` of the tape.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from(vec![0.5, -1.0, 2.0]));
    /// let w = tape.var(Tensor::from(vec![1.5, 0.25, -0.5]));
    /// // y = Σ tanh(x·w)²; only x, w and the segment's output are kept.
    /// let h = tape.checkpoint(&[x, w], |v| (v[0] * v[1]).tanh());
    /// let grads = (h * h).sum().backward();
    ///
    /// let plain = Tape::<f64>::new();
    /// let (px, pw) = (plain.var(x.value()), plain.var(w.value()));
    /// let ph = (px * pw).tanh();
    /// let expected = (ph * ph).sum().backward();
    /// assert_eq!(grads[x], expected[px]); // bit for bit
    /// assert_eq!(grads[w], expected[pw]);
    /// ```
    ///
    /// # Panics
    /// If `inputs` is empty or holds a `Var` of another tape, or if the segment returns a
    /// `Var` of another tape. In backward, if the recomputed output's shape differs from the
    /// first one's (a segment whose shapes depend on something other than its inputs).
    #[track_caller]
    pub fn checkpoint<'t, F>(&'t self, inputs: &[Var<'t, T>], segment: F) -> Var<'t, T>
    where
        F: for<'s> Fn(&[Var<'s, T>]) -> Var<'s, T> + 'static,
    {
        let location = Location::caller();
        assert!(
            !inputs.is_empty(),
            "checkpoint: the segment has no inputs; pass the Vars it depends on, parameters included \
             (called at {location})"
        );
        for (i, v) in inputs.iter().enumerate() {
            assert!(std::ptr::eq(v.tape, self), "checkpoint: input {i} comes from another tape (called at {location})");
        }
        let (rng, anomaly, recording) = {
            let inner = self.inner.borrow();
            (inner.rng.clone(), inner.anomaly, inner.recording)
        };
        let op = Checkpoint { segment: Rc::new(segment), rng, anomaly, location, precision: self.precision() };
        let needs: Vec<bool> = inputs.iter().map(|v| v.requires_grad()).collect();
        let values: Vec<Tensor<T>> = inputs.iter().map(|v| v.value()).collect();
        let requires_grad = recording && needs.iter().any(|&n| n);
        let (value, rng_after) = {
            let apart = op.tape_apart(recording);
            let xs = apart.leaves(&values, &needs);
            let y = op.run(&apart, &xs);
            let value = y.value();
            (value, apart.inner.into_inner().rng)
        };
        // The stream continues after the segment as if the segment had run on this tape.
        self.inner.borrow_mut().rng = rng_after;
        let mut node =
            Node { value, op: None, name: "checkpoint", inputs: Default::default(), requires_grad, location };
        // In forward mode the node's tangent comes from the op's rule, as for any other op.
        if self.inner.borrow().duals.carries(inputs) {
            return self.push_dual(op, inputs, node);
        }
        let mut inner = self.inner.borrow_mut();
        if requires_grad {
            node.inputs.extend(inputs.iter().map(|v| v.id));
            node.op = Some(Box::new(op));
        }
        inner.nodes.push(node);
        Var { id: inner.nodes.len() - 1, tape: self }
    }
}

impl<T: Float> Tape<T> {
    /// Leaves for `values` on this tape: variables where `needs` says a gradient is wanted,
    /// constants elsewhere (as the original inputs were).
    fn leaves(&self, values: &[Tensor<T>], needs: &[bool]) -> Vec<Var<'_, T>> {
        let here = Location::caller();
        values
            .iter()
            .zip(needs)
            .map(|(v, &need)| self.push_leaf(v.clone(), if need { "var" } else { "const" }, need, here))
            .collect()
    }
}

impl<T: Float> Checkpoint<T> {
    /// A tape of the segment's own, whose random stream starts where the main tape's was.
    fn tape_apart(&self, recording: bool) -> Tape<T> {
        Tape {
            inner: std::cell::RefCell::new(Inner {
                nodes: Vec::with_capacity(64),
                recording,
                anomaly: self.anomaly,
                rng: self.rng.clone(),
                hooks: HashMap::new(),
                duals: super::dual::Tangents::default(),
            }),
            warm: KeepWarm::inert(),
            precision: std::cell::Cell::new(self.precision),
        }
    }

    /// Runs the segment on `xs` and checks that its output lives on their tape.
    fn run<'s>(&self, tape: &'s Tape<T>, xs: &[Var<'s, T>]) -> Var<'s, T> {
        let y = (self.segment)(xs);
        assert!(
            std::ptr::eq(y.tape, tape),
            "checkpoint: the segment returned a Var of another tape; it must compute its output from \
             the Vars it is given (checkpoint made at {})",
            self.location
        );
        y
    }

    /// Panics unless a recomputed output has the shape the first run gave.
    fn check_same_shape(&self, recomputed: &[usize], first: &[usize]) {
        assert!(
            recomputed == first,
            "checkpoint: the segment gave an output of shape {recomputed:?} when run again in backward, \
             {first:?} the first time; it must depend on its inputs only (checkpoint made at {})",
            self.location
        );
    }
}

impl<T: Float> Op<T> for Checkpoint<T> {
    fn name(&self) -> &'static str {
        "checkpoint"
    }

    /// [`Tape::checkpoint`] computes the node's value itself (it must also advance the tape's
    /// random stream), so the sweeps never call this; it runs the segment the same way.
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let apart = self.tape_apart(true);
        let values: Vec<Tensor<T>> = inputs.iter().map(|&t| t.clone()).collect();
        let xs = apart.leaves(&values, &vec![false; values.len()]);
        self.run(&apart, &xs).value()
    }

    // ∂L/∂xᵢ = the segment's own backward, seeded with ∂L/∂out, through a recomputation on this
    // tape (recorded, so that the gradient can be differentiated again).
    fn backward<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let tape = grad_out.tape;
        let floor = tape.len();
        let y = {
            let _stream = StreamGuard::replay(tape, self.rng.clone());
            self.run(tape, inputs)
        };
        self.check_same_shape(&y.shape(), &out.shape());
        let grads = tape.sweep_graph_from(y.id, grad_out.id, floor);
        inputs
            .iter()
            .enumerate()
            .map(|(k, x)| {
                // An input given twice gets its whole gradient once (the sweep sums both uses).
                let first = inputs[..k].iter().all(|prev| prev.id != x.id);
                let g = grads.get(x.id).copied().flatten().filter(|_| first && x.requires_grad());
                g.map(|id| Var { id, tape })
            })
            .collect()
    }

    // The tangent is the segment's own: the segment once more on this tape, from the same random
    // stream, with tangents carried through its ops by their rules (so the tangent is recorded
    // like any other and can be differentiated; forward over reverse works through it).
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, _tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let tape = out.tape;
        let y = tape.with_tangents_resumed(|| {
            let _stream = StreamGuard::replay(tape, self.rng.clone());
            self.run(tape, inputs)
        });
        self.check_same_shape(&y.shape(), &out.shape());
        y.tangent()
    }

    // The same gradients, from a recomputation on a tape of its own that is dropped before
    // returning: only one segment's intermediates are alive at a time.
    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        out: &Tensor<T>,
        grad_out: &Tensor<T>,
        needs_grad: &[bool],
    ) -> Option<TensorGrads<T>> {
        let apart = self.tape_apart(true);
        let values: Vec<Tensor<T>> = inputs.iter().map(|&t| t.clone()).collect();
        let xs = apart.leaves(&values, needs_grad);
        let y = self.run(&apart, &xs);
        self.check_same_shape(&y.shape(), out.shape());
        let mut grads = y.backward_with(grad_out.clone());
        Some(xs.iter().zip(needs_grad).map(|(&x, &need)| if need { grads.take(x) } else { None }).collect())
    }
}

/// Sets a tape's random generator for a recomputation and puts the tape's own back when
/// dropped, also when the segment panics.
struct StreamGuard<'t, T: Float> {
    tape: &'t Tape<T>,
    saved: Option<ChaCha8Rng>,
}

impl<'t, T: Float> StreamGuard<'t, T> {
    fn replay(tape: &'t Tape<T>, rng: ChaCha8Rng) -> Self {
        let saved = std::mem::replace(&mut tape.inner.borrow_mut().rng, rng);
        StreamGuard { tape, saved: Some(saved) }
    }
}

impl<T: Float> Drop for StreamGuard<'_, T> {
    fn drop(&mut self) {
        if let (Some(rng), Ok(mut inner)) = (self.saved.take(), self.tape.inner.try_borrow_mut()) {
            inner.rng = rng;
        }
    }
}
