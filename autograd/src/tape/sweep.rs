//! The reverse sweep: one pass over the tape from the output back to the leaves, handing each
//! node's gradient to its op's backward and adding what comes out into the node's inputs.
//!
//! There are two sweeps. [`Tape::sweep_graph`] (for [`Tape::grad`]) records every gradient as a
//! node, so that it can be differentiated again. [`Tape::sweep_values`] (for
//! [`Var::backward`](super::Var::backward)) records nothing that survives it: gradients are
//! plain tensors, accumulated in place, and the gradients of 0-d nodes are plain numbers (the
//! *scalar lane*), handed to [`Op::backward_scalar`] so that a micrograd-style graph of single
//! numbers costs no tensor per node in backward.

use std::panic::Location;

use smallvec::SmallVec;

use super::{Inner, RecordingGuard, Tape, Var};
use crate::{Float, Op, Tensor};

impl<T: Float> Tape<T> {
    /// The differentiable sweep from `root`, seeded with `seed`: per node id up to `root`, the
    /// node holding its gradient (the gradient computations are recorded like any other op).
    pub(super) fn sweep_graph(&self, root: usize, seed: Tensor<T>) -> Vec<Option<usize>> {
        let seed = self.push_leaf(seed, "const", false, Location::caller()).id;
        self.sweep_graph_from(root, seed, 0)
    }

    /// [`Self::sweep_graph`] seeded with the gradient held by node `seed`, over the nodes from
    /// `root` down to `floor` only: the gradients reaching nodes below `floor` are collected but
    /// not passed on (a checkpointed segment's recomputation stops at its inputs this way).
    pub(super) fn sweep_graph_from(&self, root: usize, seed: usize, floor: usize) -> Vec<Option<usize>> {
        let _guard = RecordingGuard::set(self, true);
        let mut grads: Vec<Option<usize>> = vec![None; root + 1];
        grads[root] = Some(seed);
        let (anomaly, any_hooks) = self.sweep_flags();
        for i in (floor..=root).rev() {
            let Some(mut g) = grads[i].take() else { continue };
            let (requires_grad, has_op) = self.node_flags(i);
            if !requires_grad {
                continue;
            }
            if any_hooks {
                if let Some(new) = self.run_hooks(i, g) {
                    g = new;
                }
            }
            if anomaly {
                self.check_grad_finite(i, &self.value_of(g));
            }
            grads[i] = Some(g);
            if !has_op {
                continue;
            }
            for (j, r) in self.run_backward(i, g, anomaly) {
                grads[j] = Some(match grads[j] {
                    None => r.id,
                    Some(prev) => (Var { id: prev, tape: self } + r).id,
                });
            }
        }
        grads
    }

    /// The plain sweep from `root`, seeded with `seed`: per node id up to `root`, its gradient.
    /// Nothing it records outlives it (the caller truncates the tape afterwards).
    pub(super) fn sweep_values(&self, root: usize, seed: Tensor<T>) -> Vec<Option<Tensor<T>>> {
        let _guard = RecordingGuard::set(self, false);
        let (anomaly, any_hooks) = self.sweep_flags();
        // Hooks and anomaly checks see every gradient as a tensor: they turn the scalar lane off.
        let mut acc = Accumulator::new(root + 1, !anomaly && !any_hooks);
        acc.add(&self.inner.borrow(), root, seed);
        for i in (0..=root).rev() {
            let inner = self.inner.borrow();
            let node = &inner.nodes[i];
            if !node.requires_grad {
                // Only the root can hold a gradient here (inputs that need none get none).
                acc.clear(i);
                continue;
            }
            let in_lane = acc.in_lane(node);
            let g = if in_lane {
                if !acc.has_scalar[i] {
                    continue;
                }
                let Some(op) = node.op.as_ref() else { continue };
                let g = acc.scalars[i];
                // Inputs and their gradients on the stack: up to four numbers each.
                let n = node.inputs.len();
                let (mut xs, mut ds) = ([T::ZERO; 4], [T::ZERO; 4]);
                let mut all_scalar = n <= 4;
                for (x, &j) in xs.iter_mut().zip(&node.inputs) {
                    let input = &inner.nodes[j];
                    if acc.in_lane(input) {
                        *x = input.value.data()[0];
                    } else {
                        all_scalar = false;
                    }
                }
                if all_scalar && op.backward_scalar(&xs[..n], node.value.data()[0], g, &mut ds[..n]) {
                    for (&j, &d) in node.inputs.iter().zip(&ds) {
                        if inner.nodes[j].requires_grad {
                            acc.scalars[j] += d;
                            acc.has_scalar[j] = true;
                        }
                    }
                    continue;
                }
                drop(inner);
                Tensor::scalar(g)
            } else {
                let Some(g) = acc.take(i) else { continue };
                let has_op = node.op.is_some();
                drop(inner);
                let g = match any_hooks.then(|| self.run_hooks_on_value(i, &g)).flatten() {
                    Some(new) => new,
                    None => g,
                };
                if anomaly {
                    self.check_grad_finite(i, &g);
                }
                if !has_op {
                    acc.put(i, g);
                    continue;
                }
                g
            };
            if !self.backward_values_into(i, &g, &mut acc, anomaly) {
                let gid = self.push_leaf(g.clone(), "const", false, Location::caller()).id;
                for (j, r) in self.run_backward(i, gid, anomaly) {
                    let inner = self.inner.borrow();
                    let value = inner.nodes[r.id].value.clone();
                    acc.add(&inner, j, value);
                }
            }
            if !in_lane {
                acc.put(i, g);
            }
        }
        acc.into_grads()
    }

    /// Whether anomaly detection is on and whether any hook is registered.
    fn sweep_flags(&self) -> (bool, bool) {
        let inner = self.inner.borrow();
        (inner.anomaly, !inner.hooks.is_empty())
    }

    /// Whether node `i` needs a gradient and whether it has an op to pass it on through.
    fn node_flags(&self, i: usize) -> (bool, bool) {
        let inner = self.inner.borrow();
        let node = &inner.nodes[i];
        (node.requires_grad, node.op.is_some())
    }

    fn value_of(&self, id: usize) -> Tensor<T> {
        self.inner.borrow().nodes[id].value.clone()
    }

    /// Calls node `i`'s differentiable backward ([`Op::backward`](crate::Op::backward)) with
    /// the gradient held by node `g`, and returns `(input id, gradient node)` for each input
    /// that needs a gradient, checked for shape (and, with `anomaly`, for finite values).
    fn run_backward(&self, i: usize, g: usize, anomaly: bool) -> SmallVec<[(usize, Var<'_, T>); 2]> {
        // The op leaves its node while its backward records new nodes on the tape (which
        // borrows the node list); the guard puts it back afterwards, and also when the backward
        // panics, so that a caught panic does not leave a node without its op (a later sweep
        // would then silently give zeros).
        let (op, inputs) = {
            let mut inner = self.inner.borrow_mut();
            let node = &mut inner.nodes[i];
            (node.op.take().expect("run_backward is only called for nodes with an op"), node.inputs.clone())
        };
        let op = OpOut { tape: self, node: i, op: Some(op) };
        let in_vars: SmallVec<[Var<'_, T>; 4]> = inputs.iter().map(|&id| Var { id, tape: self }).collect();
        let results = op.get().backward(&in_vars, Var { id: i, tape: self }, Var { id: g, tape: self });
        let name = op.get().name();
        drop(op);
        assert_eq!(
            results.len(),
            inputs.len(),
            "backward of `{name}` returned {} gradients for {} inputs",
            results.len(),
            inputs.len()
        );
        let mut out = SmallVec::new();
        for (&j, r) in inputs.iter().zip(results) {
            let Some(r) = r else { continue };
            {
                let inner = self.inner.borrow();
                let (input, grad) = (&inner.nodes[j], &inner.nodes[r.id]);
                if !input.requires_grad {
                    continue;
                }
                check_grad_shape(name, grad.value.shape(), input.value.shape());
            }
            if anomaly && !self.value_of(r.id).all_finite() {
                self.report_backward_anomaly(i);
            }
            out.push((j, r));
        }
        out
    }

    /// Runs node `i`'s tensor-level backward ([`Op::backward_values`](crate::Op::backward_values))
    /// if its op has one, adding each input's gradient into `acc`; returns whether it ran.
    fn backward_values_into(&self, i: usize, g: &Tensor<T>, acc: &mut Accumulator<T>, anomaly: bool) -> bool {
        let inner = self.inner.borrow();
        let node = &inner.nodes[i];
        let Some(op) = node.op.as_ref() else { return false };
        let mut inputs: SmallVec<[&Tensor<T>; 4]> = SmallVec::new();
        let mut needs: SmallVec<[bool; 4]> = SmallVec::new();
        for &j in &node.inputs {
            inputs.push(&inner.nodes[j].value);
            needs.push(inner.nodes[j].requires_grad);
        }
        let Some(results) = op.backward_values(&inputs, &node.value, g, &needs) else { return false };
        assert_eq!(
            results.len(),
            inputs.len(),
            "backward_values of `{}` returned the wrong number of gradients",
            node.name
        );
        for ((&j, r), &need) in node.inputs.iter().zip(results).zip(&needs) {
            let Some(r) = r.filter(|_| need) else { continue };
            let shape = inner.nodes[j].value.shape();
            check_grad_shape(node.name, r.shape(), shape);
            if anomaly && !r.all_finite() {
                self.report_backward_anomaly(i);
            }
            acc.add(&inner, j, r);
        }
        true
    }

    /// Runs node `i`'s hooks in registration order on the gradient held by node `g`; returns
    /// the node holding the last replacement, or `None` if no hook replaced it. The hooks' ops
    /// are recorded when the tape is recording, so a replacement built from `g` stays
    /// differentiable.
    fn run_hooks(&self, node: usize, g: usize) -> Option<usize> {
        let hooks = self.inner.borrow().hooks.get(&node).cloned()?;
        let mut current = Var { id: g, tape: self };
        let mut replaced = false;
        for hook in hooks {
            if let Some(new) = hook(current) {
                assert!(std::ptr::eq(new.tape, self), "a gradient hook on node {node} returned a Var of another tape");
                if new.shape() != current.shape() {
                    let inner = self.inner.borrow();
                    let n = &inner.nodes[node];
                    panic!(
                        "a gradient hook on `{}` (created at {}) replaced a gradient of shape {:?} with shape {:?}",
                        n.name,
                        n.location,
                        current.shape(),
                        new.shape()
                    );
                }
                current = new;
                replaced = true;
            }
        }
        replaced.then_some(current.id)
    }

    /// [`Self::run_hooks`] on a plain gradient: the value of the replacement, if any.
    fn run_hooks_on_value(&self, node: usize, g: &Tensor<T>) -> Option<Tensor<T>> {
        if !self.inner.borrow().hooks.contains_key(&node) {
            return None;
        }
        let gid = self.push_leaf(g.clone(), "const", false, Location::caller()).id;
        self.run_hooks(node, gid).map(|id| self.value_of(id))
    }

    fn report_backward_anomaly(&self, node: usize) -> ! {
        let inner = self.inner.borrow();
        let n = &inner.nodes[node];
        let shapes: Vec<&[usize]> = n.inputs.iter().map(|&j| inner.nodes[j].value.shape()).collect();
        panic!(
            "anomaly: the backward of `{}` (inputs of shapes {shapes:?}) produced a non-finite gradient; \
             the `{}` was created at {}",
            n.name, n.name, n.location
        );
    }

    fn check_grad_finite(&self, node: usize, g: &Tensor<T>) {
        if !g.all_finite() {
            let inner = self.inner.borrow();
            let n = &inner.nodes[node];
            panic!(
                "anomaly: non-finite gradient flowing into `{}` (node {node}, shape {:?}) created at {}",
                n.name,
                n.value.shape(),
                n.location
            );
        }
    }
}

/// Panics unless the gradient an op's backward returned for an input has the input's shape.
fn check_grad_shape(op: &str, grad: &[usize], input: &[usize]) {
    assert!(
        crate::shape::same(input, grad),
        "backward of `{op}` returned a gradient of shape {grad:?} for an input of shape {input:?}"
    );
}

/// The gradients of a plain sweep: tensors, and plain numbers for 0-d nodes in the scalar lane.
struct Accumulator<T: Float> {
    /// Number of nodes swept.
    len: usize,
    /// Tensor gradients by node id; allocated on the first one (a scalar graph has none).
    tensors: Vec<Option<Tensor<T>>>,
    scalars: Vec<T>,
    has_scalar: Vec<bool>,
    /// Whether 0-d nodes keep their gradient in `scalars` (off when hooks or anomaly checks
    /// need to see every gradient as a tensor).
    lane: bool,
}

impl<T: Float> Accumulator<T> {
    fn new(len: usize, lane: bool) -> Self {
        let n = if lane { len } else { 0 };
        Accumulator { len, tensors: Vec::new(), scalars: vec![T::ZERO; n], has_scalar: vec![false; n], lane }
    }

    /// Whether `node`'s gradient is kept as a plain number.
    fn in_lane(&self, node: &super::Node<T>) -> bool {
        self.lane && node.value.rank() == 0
    }

    fn take(&mut self, i: usize) -> Option<Tensor<T>> {
        self.tensors.get_mut(i).and_then(Option::take)
    }

    fn put(&mut self, i: usize, g: Tensor<T>) {
        if self.tensors.is_empty() {
            self.tensors.resize_with(self.len, || None);
        }
        self.tensors[i] = Some(g);
    }

    /// Adds `r` into node `j`'s gradient: as a number in the scalar lane, otherwise in place
    /// when the accumulated tensor holds its data alone (into a new tensor otherwise, so another
    /// holder of the same data is never changed).
    fn add(&mut self, inner: &Inner<T>, j: usize, r: Tensor<T>) {
        if self.in_lane(&inner.nodes[j]) {
            self.scalars[j] += r.data()[0];
            self.has_scalar[j] = true;
            return;
        }
        let sum = match self.take(j) {
            None => r,
            Some(acc) => acc.sum_with(&r),
        };
        self.put(j, sum);
    }

    fn clear(&mut self, i: usize) {
        self.take(i);
        if self.lane {
            self.has_scalar[i] = false;
        }
    }

    /// The gradient of every node, by id, written in one pass.
    fn into_grads(self) -> Vec<Option<Tensor<T>>> {
        let mut tensors = self.tensors.into_iter();
        (0..self.len)
            .map(|i| {
                let tensor = tensors.next().flatten();
                match self.lane && self.has_scalar[i] {
                    true => Some(Tensor::scalar(self.scalars[i])),
                    false => tensor,
                }
            })
            .collect()
    }
}

/// A node's op taken out of the tape for its backward; put back when dropped (see
/// `run_backward`).
struct OpOut<'a, T: Float> {
    tape: &'a Tape<T>,
    node: usize,
    op: Option<Box<dyn Op<T>>>,
}

impl<T: Float> OpOut<'_, T> {
    fn get(&self) -> &dyn Op<T> {
        self.op.as_deref().expect("the op is present until the guard drops")
    }
}

impl<T: Float> Drop for OpOut<'_, T> {
    fn drop(&mut self) {
        if let (Some(op), Ok(mut inner)) = (self.op.take(), self.tape.inner.try_borrow_mut()) {
            inner.nodes[self.node].op = Some(op);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Float, Op, Tape, Tensor, Var};

    /// `2x`, whose differentiable backward panics the first time it runs.
    struct PanicsOnce(std::sync::atomic::AtomicBool);

    impl<T: Float> Op<T> for PanicsOnce {
        fn name(&self) -> &'static str {
            "panics_once"
        }
        fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
            inputs[0].map(|x| x + x)
        }
        fn backward<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
            if !self.0.swap(true, std::sync::atomic::Ordering::Relaxed) {
                panic!("backward failed");
            }
            vec![Some(g * 2.0)]
        }
    }

    #[test]
    fn a_panic_in_a_backward_leaves_the_tape_whole() {
        let tape = Tape::<f64>::new();
        let x = tape.var(3.0);
        let y = tape.apply(PanicsOnce(Default::default()), &[x]);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tape.grad(y, &[x])));
        assert!(caught.is_err(), "the first sweep panics");
        // The node got its op back: the next sweep gives the gradient, not a silent zero.
        assert_eq!(tape.grad(y, &[x])[0].item(), 2.0);
    }

    /// A scalar graph through every element-wise op (each has a scalar backward, from its
    /// rule), a 0-d value used twice, and a detour through a vector and back.
    fn graph<'t>(x: Var<'t, f64>, y: Var<'t, f64>) -> Var<'t, f64> {
        let a = (x * y + x - y / (x + 3.0)).tanh() * 2.0 - 0.5;
        let b = (-a).exp() + (y * y + 1.0).ln() + (x * x + 1.0).sqrt() + y.powi(3) + (x * x + 0.5).powf(1.5);
        let c = (a * b).sigmoid() + (a - b).relu() + (y + 2.0).recip() + x.abs() + y.erf();
        let d = (a * 0.5).gelu() + (b * 0.1).gelu_tanh() + (c - 1.0).softplus();
        let v = Var::stack(&[c, a, b, d], 0); // a vector op in the middle of the scalar graph
        (v * v).sum() * c + d
    }

    /// The scalar lane keeps gradients as plain numbers and the tensor sweep (the lane off, as
    /// anomaly detection turns it off) as tensors: the two must agree to the bit, since both run
    /// the same rules on the same numbers and only the bookkeeping differs.
    #[test]
    fn scalar_lane_agrees_with_the_tensor_sweep() {
        for (x, y) in [(0.3, -0.7), (-1.2, 0.4), (2.0, 1.5), (-0.1, -2.5)] {
            let tape = Tape::<f64>::new();
            let (xv, yv) = (tape.var(x), tape.var(y));
            let out = graph(xv, yv);
            let lane = out.backward();
            tape.set_anomaly_detection(true);
            let tensors = out.backward();
            for v in [xv, yv] {
                assert_eq!(lane[v].item().to_bits(), tensors[v].item().to_bits(), "at ({x}, {y})");
            }
            assert!(lane[xv].item() != 0.0 && lane[yv].item() != 0.0, "the graph depends on both inputs");
        }
    }

    #[test]
    fn scalar_lane_reports_intermediates_and_skips_constants() {
        let tape = Tape::<f64>::new();
        let x = tape.var(2.0);
        let k = tape.constant(5.0);
        let h = x * k; // 10
        let out = h * h + k; // d/dh = 2h = 20, d/dx = 20·5 = 100
        let grads = out.backward();
        assert_eq!(grads[h].item(), 20.0);
        assert_eq!(grads[x].item(), 100.0);
        assert!(grads.get(k).is_none(), "a constant gets no gradient");
        assert_eq!(grads[out].item(), 1.0);
    }

    #[test]
    fn scalar_lane_takes_gradients_from_tensor_ops() {
        // A 0-d node broadcast against a vector gets its gradient from a tensor kernel.
        let tape = Tape::<f64>::new();
        let s = tape.var(3.0);
        let v = tape.var(Tensor::from_vec(vec![1.0, 2.0, 4.0], &[3]));
        let out = (v * s).sum() * s; // = 7 s², d/ds = 14 s = 42
        let grads = out.backward();
        assert_eq!(grads[s].item(), 42.0);
        assert_eq!(grads[v].to_vec(), vec![9.0, 9.0, 9.0]);
    }
}
