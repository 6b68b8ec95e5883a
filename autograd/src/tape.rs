//! The [`Tape`] (a Wengert list of nodes in creation order), the [`Var`] handle and the
//! recording of ops. The reverse sweep that computes gradients is in the `sweep` submodule.
//!
//! Creation order is a topological order, so backward is one reverse pass over the node list.
//! Gradients are computed by each op's [`Op::backward`], which is written with `Var` operations on
//! the same tape: when the caller asks for a differentiable gradient ([`Tape::grad`]) those
//! operations are recorded like any other and can be differentiated again; otherwise
//! ([`Var::backward`]) the tape records them as constants, and drops them when the sweep is done.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smallvec::SmallVec;

use crate::{Float, Grads, KeepWarm, Op, Shape, Tensor};

mod checkpoint;
mod dual;
mod sweep;

pub(crate) use dual::bilinear_tangent;
pub use dual::{double_vjp_calls, jvp_by_double_vjp};

/// A gradient hook: sees the gradient arriving at a node, as a `Var` on the same tape, and may
/// return a replacement (see [`Var::register_hook`]).
type Hook<T> = Rc<dyn for<'t> Fn(Var<'t, T>) -> Option<Var<'t, T>>>;

/// One entry of the Wengert list.
pub(crate) struct Node<T: Float> {
    /// The forward value.
    pub value: Tensor<T>,
    /// The op that made this node, kept only when its gradient will be needed.
    pub op: Option<Box<dyn Op<T>>>,
    /// The op's name (`"var"` for a leaf, `"const"` for a constant).
    pub name: &'static str,
    /// Ids of the input nodes, kept only when the gradient will be needed.
    pub inputs: SmallVec<[usize; 2]>,
    /// Whether a gradient can flow into this node (it is a `var` leaf or depends on one).
    pub requires_grad: bool,
    /// The user's source line that created the node.
    pub location: &'static Location<'static>,
}

pub(crate) struct Inner<T: Float> {
    pub nodes: Vec<Node<T>>,
    recording: bool,
    anomaly: bool,
    rng: ChaCha8Rng,
    hooks: HashMap<usize, Vec<Hook<T>>>,
    /// Forward mode: the tangent of each node that carries one (see [`Tape::dual`]).
    duals: dual::Tangents,
}

/// A Wengert list: every value computed in a step, with the op and inputs that produced it.
///
/// Make a new tape per training step; it is cheap (one `Vec`). Values enter as leaves through
/// [`Tape::var`] (differentiable) or [`Tape::constant`], and every op on a [`Var`] appends a node.
///
/// ```
/// use autograd::Tape;
/// let tape = Tape::<f64>::new();
/// let x = tape.var(3.0);
/// let y = x * x + 2.0 * x; // dy/dx = 2x + 2 = 8
/// assert_eq!(y.backward()[x].item(), 8.0);
/// ```
pub struct Tape<T: Float> {
    inner: RefCell<Inner<T>>,
    /// Keeps rayon's other workers awake while the tape lives (see [`KeepWarm`]); renewed by
    /// [`Tape::reset`], as a worker stops spinning once it has gone a while without work.
    warm: KeepWarm,
    /// The precision of the matrix products recorded next (see [`crate::precision`]).
    pub(crate) precision: Cell<crate::precision::Precision>,
}

/// A handle to one node of a [`Tape`]: a node id and a reference to the tape.
///
/// `Var` is `Copy`, so expressions read like math: `(x.matmul(w) + b).relu()`. Plain `f64`
/// numbers mix in on either side of `+ - * /` and are converted to `T`.
pub struct Var<'t, T: Float> {
    id: usize,
    tape: &'t Tape<T>,
}

impl<T: Float> Clone for Var<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Float> Copy for Var<'_, T> {}

thread_local! {
    /// The source location of the op whose forward is running, for shape-error messages.
    static CURRENT_CALLER: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
}

/// Panics with a shape or axis error that names the op and the user's line that called it.
///
/// Ops call this from `forward` (where the caller's location is known to the tape) and from
/// `#[track_caller]` methods (where `Location::caller()` is the user's line).
#[track_caller]
#[cold]
pub fn shape_panic(op: &str, msg: &str) -> ! {
    // `Location::caller()` must be called here, in this `#[track_caller]` body: passed as a
    // function (`unwrap_or_else(Location::caller)`) it would name the standard library's line.
    let loc = match CURRENT_CALLER.with(|c| c.get()) {
        Some(loc) => loc,
        None => Location::caller(),
    };
    panic!("{op}: {msg} (called at {loc})")
}

/// Sets the location shape errors name while an op's forward runs, and restores the previous
/// one when dropped, also when the forward panics (so that a caught panic leaves no stale
/// location behind).
struct CallerGuard(Option<&'static Location<'static>>);

impl CallerGuard {
    fn set(location: &'static Location<'static>) -> Self {
        CallerGuard(CURRENT_CALLER.with(|c| c.replace(Some(location))))
    }
}

impl Drop for CallerGuard {
    fn drop(&mut self) {
        CURRENT_CALLER.with(|c| c.set(self.0));
    }
}

impl<T: Float> Default for Tape<T> {
    fn default() -> Self {
        Self::with_seed(0)
    }
}

impl<T: Float> Tape<T> {
    /// An empty tape whose random stream (for dropout) starts from seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty tape whose random stream (for dropout) starts from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        crate::threads::join_global_pool();
        Tape {
            inner: RefCell::new(Inner {
                nodes: Vec::with_capacity(64),
                recording: true,
                anomaly: false,
                rng: ChaCha8Rng::seed_from_u64(seed),
                hooks: HashMap::new(),
                duals: dual::Tangents::default(),
            }),
            warm: KeepWarm::new(),
            precision: Cell::default(),
        }
    }

    /// Empties the tape for the next step while keeping its memory, so that a training loop
    /// that reuses one tape allocates nothing for its nodes after the first step. Taking
    /// `&mut self` proves that no `Var` of the previous step is still alive. The random stream
    /// continues (dropout masks differ from step to step); hooks are removed.
    ///
    /// ```
    /// use autograd::Tape;
    /// let mut tape = Tape::<f32>::new();
    /// for step in 0..3 {
    ///     tape.reset();
    ///     let w = tape.var(step as f32);
    ///     let _grads = (w * w).backward();
    /// }
    /// ```
    pub fn reset(&mut self) {
        let inner = self.inner.get_mut();
        inner.nodes.clear();
        inner.hooks.clear();
        inner.duals = dual::Tangents::default();
        inner.recording = true;
        // A loop that reuses one tape keeps the workers awake step after step, as one that
        // makes a new tape per step does, even after a pause (an evaluation, a checkpoint).
        self.warm = KeepWarm::new();
    }

    /// A differentiable leaf: gradients flow into it and [`Grads`] report them.
    #[track_caller]
    pub fn var(&self, value: impl Into<Tensor<T>>) -> Var<'_, T> {
        self.push_leaf(value.into(), "var", true, Location::caller())
    }

    /// A constant leaf: no gradient flows into it.
    #[track_caller]
    pub fn constant(&self, value: impl Into<Tensor<T>>) -> Var<'_, T> {
        self.push_leaf(value.into(), "const", false, Location::caller())
    }

    fn push_leaf(
        &self,
        value: Tensor<T>,
        name: &'static str,
        requires_grad: bool,
        location: &'static Location<'static>,
    ) -> Var<'_, T> {
        let mut inner = self.inner.borrow_mut();
        if inner.anomaly && !value.all_finite() {
            panic!("anomaly: non-finite value in a `{name}` leaf of shape {:?} created at {location}", value.shape());
        }
        inner.nodes.push(Node { value, op: None, name, inputs: SmallVec::new(), requires_grad, location });
        Var { id: inner.nodes.len() - 1, tape: self }
    }

    /// Records `op` applied to `inputs` and returns its output.
    ///
    /// This is how every op, built-in or custom, gets onto the tape: the forward runs now on the
    /// inputs' values; the op and the input ids are kept only when a gradient can flow through.
    #[track_caller]
    pub fn apply<'t>(&'t self, op: impl Op<T>, inputs: &[Var<'t, T>]) -> Var<'t, T> {
        let location = Location::caller();
        // The node is built in one place (no block returns it), its value written there by the
        // forward: each move of a fresh node cost more than the forward of a scalar op.
        let inner = self.inner.borrow();
        let mut values: SmallVec<[&Tensor<T>; 4]> = SmallVec::new();
        for v in inputs {
            assert!(std::ptr::eq(v.tape, self), "{}: input comes from another tape", op.name());
            values.push(&inner.nodes[v.id].value);
        }
        let requires_grad = inner.recording && inputs.iter().any(|v| inner.nodes[v.id].requires_grad);
        let carry = inner.duals.carries(inputs);
        let caller = CallerGuard::set(location);
        let mut node = Node {
            value: op.forward(&values),
            op: None,
            name: op.name(),
            inputs: SmallVec::new(),
            requires_grad,
            location,
        };
        drop(caller);
        if inner.anomaly && !node.value.all_finite() {
            let shapes: Vec<&[usize]> = values.iter().map(|t| t.shape()).collect();
            let finite = values.iter().all(|t| t.all_finite());
            panic!(
                "anomaly: `{}` produced a non-finite value (inputs of shapes {:?}, {}) at {location}",
                op.name(),
                shapes,
                if finite { "all finite" } else { "some already non-finite" }
            );
        }
        drop(values);
        drop(inner);
        if carry {
            return self.push_dual(op, inputs, node);
        }
        // The op and its inputs are kept only when a gradient can flow through this node.
        if requires_grad {
            for v in inputs {
                node.inputs.push(v.id);
            }
            node.op = Some(Box::new(op));
        }
        let mut inner = self.inner.borrow_mut();
        inner.nodes.push(node);
        Var { id: inner.nodes.len() - 1, tape: self }
    }

    /// Runs `f` with recording off: ops compute values but no gradient flows through them
    /// (PyTorch's `torch.no_grad()`). Nests, and restores the previous state even on panic.
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = RecordingGuard::set(self, false);
        f()
    }

    /// Whether ops are being recorded for differentiation right now. Off inside
    /// [`Tape::no_grad`] and during a non-differentiable backward; an op's `backward` may check
    /// it to take a faster path that computes its gradient directly as a constant.
    pub fn is_recording(&self) -> bool {
        self.inner.borrow().recording
    }

    /// Anomaly mode: when on, the first non-finite value produced by an op in forward, or
    /// flowing as a gradient in backward, panics with the op's name, its input shapes and the
    /// user's source line that created it. Off by default (it costs a scan of every value).
    pub fn set_anomaly_detection(&self, on: bool) {
        self.inner.borrow_mut().anomaly = on;
    }

    /// Number of nodes recorded so far.
    pub fn len(&self) -> usize {
        self.inner.borrow().nodes.len()
    }

    /// Whether nothing has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` with the tape's seeded random generator (used by dropout). The stream is
    /// ChaCha8, stable across `rand` versions.
    pub fn with_rng<R>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        f(&mut self.inner.borrow_mut().rng)
    }

    /// Gradients of `y` (a one-element output) with respect to each of `xs`, as `Var`s on this
    /// tape that can be differentiated again (PyTorch's `autograd.grad(create_graph=True)`).
    /// An `x` that `y` does not depend on gets a zero gradient.
    ///
    /// ```
    /// use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(2.0);
    /// let y = x.powi(3);
    /// let dy = tape.grad(y, &[x])[0];     // 3x² = 12
    /// let d2y = tape.grad(dy, &[x])[0];   // 6x = 12
    /// assert_eq!((dy.item(), d2y.item()), (12.0, 12.0));
    /// ```
    ///
    /// # Panics
    /// If `y` has more than one element.
    #[track_caller]
    pub fn grad<'t>(&'t self, y: Var<'t, T>, xs: &[Var<'t, T>]) -> Vec<Var<'t, T>> {
        check_scalar_root("grad", y);
        let grads = self.sweep_graph(y.id, Tensor::ones(&y.shape()));
        xs.iter()
            .map(|x| match grads.get(x.id) {
                Some(Some(id)) => Var { id: *id, tape: self },
                _ => self.constant(Tensor::zeros(&x.shape())),
            })
            .collect()
    }
}

/// Sets the tape's recording flag and restores the previous one when dropped, even on panic.
struct RecordingGuard<'t, T: Float> {
    tape: &'t Tape<T>,
    prev: bool,
}

impl<'t, T: Float> RecordingGuard<'t, T> {
    fn set(tape: &'t Tape<T>, on: bool) -> Self {
        let prev = std::mem::replace(&mut tape.inner.borrow_mut().recording, on);
        RecordingGuard { tape, prev }
    }
}

impl<T: Float> Tape<T> {
    /// Read access to the node list, for inspection.
    pub(crate) fn with_nodes<R>(&self, f: impl FnOnce(&[Node<T>]) -> R) -> R {
        f(&self.inner.borrow().nodes)
    }
}

impl<T: Float> Drop for RecordingGuard<'_, T> {
    fn drop(&mut self) {
        self.tape.inner.borrow_mut().recording = self.prev;
    }
}

/// Panics unless `y` has one element, naming `op` (`"backward"` or `"grad"`) and the caller's
/// line, and saying what to do instead for that op.
#[track_caller]
fn check_scalar_root<T: Float>(op: &str, y: Var<'_, T>) {
    if y.numel() != 1 {
        let instead = if op == "backward" {
            "reduce it to one element (e.g. .sum()), or give the output's gradient with backward_with"
        } else {
            "reduce it to one element (e.g. .sum()); for a vector-Jacobian product J·v, take the grad \
             of (y * v).sum() for a constant v of y's shape"
        };
        shape_panic(op, &format!("the output has shape {:?}; {instead}", y.shape()));
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The node's id on its tape (its position in creation order).
    pub fn id(self) -> usize {
        self.id
    }

    /// The tape this node lives on.
    pub fn tape(self) -> &'t Tape<T> {
        self.tape
    }

    /// The forward value (a cheap clone sharing the data).
    pub fn value(self) -> Tensor<T> {
        self.tape.inner.borrow().nodes[self.id].value.clone()
    }

    /// The value of a one-element node.
    ///
    /// # Panics
    /// If the node has more or fewer than one element.
    #[track_caller]
    pub fn item(self) -> T {
        self.tape.inner.borrow().nodes[self.id].value.item()
    }

    /// The node's shape.
    pub fn shape(self) -> Shape {
        Shape::from_slice(self.tape.inner.borrow().nodes[self.id].value.shape())
    }

    /// The number of elements.
    pub fn numel(self) -> usize {
        self.tape.inner.borrow().nodes[self.id].value.numel()
    }

    /// The number of dimensions.
    pub fn rank(self) -> usize {
        self.tape.inner.borrow().nodes[self.id].value.rank()
    }

    /// Whether a gradient can flow into this node. An op's backward may skip computing the
    /// gradient of an input for which this is false (it would be discarded).
    pub fn requires_grad(self) -> bool {
        self.tape.inner.borrow().nodes[self.id].requires_grad
    }

    /// The name of the op that made this node (`"var"`, `"const"` for leaves).
    pub fn op_name(self) -> &'static str {
        self.tape.inner.borrow().nodes[self.id].name
    }

    /// The source line that created this node.
    pub fn location(self) -> &'static Location<'static> {
        self.tape.inner.borrow().nodes[self.id].location
    }

    /// A constant node with this node's value: gradients stop here (PyTorch's `detach`).
    #[track_caller]
    pub fn detach(self) -> Var<'t, T> {
        self.tape.constant(self.value())
    }

    /// Runs reverse-mode differentiation from this one-element node and returns the gradient of
    /// every node it depends on, leaves and intermediates.
    ///
    /// The gradient computations are not recorded (use [`Tape::grad`] for a differentiable
    /// gradient) and the tape is left as it was, so `backward` can be called again.
    ///
    /// # Panics
    /// If this node has more than one element (use [`Var::backward_with`]).
    #[track_caller]
    pub fn backward(self) -> Grads<T> {
        check_scalar_root("backward", self);
        self.backward_with(Tensor::ones(&self.shape()))
    }

    /// Reverse-mode differentiation seeded with `grad` (the gradient of some scalar with respect
    /// to this node; PyTorch's `y.backward(gradient)`).
    ///
    /// # Panics
    /// If `grad` does not have this node's shape.
    #[track_caller]
    pub fn backward_with(self, grad: Tensor<T>) -> Grads<T> {
        if grad.shape() != self.shape().as_slice() {
            shape_panic(
                "backward_with",
                &format!("seed gradient of shape {:?} for an output of shape {:?}", grad.shape(), self.shape()),
            );
        }
        let tape = self.tape;
        let len = tape.len();
        // Nobody reads the tangents of gradients that are dropped at once.
        let _no_tangents = dual::Suspend::new(tape);
        let grads = tape.sweep_values(self.id, grad);
        // The gradient nodes were constants only needed to carry values: drop them.
        tape.inner.borrow_mut().nodes.truncate(len);
        Grads::new(grads)
    }

    /// Registers a hook that sees the gradient arriving at this node during backward, before it
    /// flows on to the node's inputs, and may return a replacement of the same shape (for
    /// clipping, logging or surgery); `None` leaves the gradient as it is. Hooks run in
    /// registration order, each on the previous one's result.
    ///
    /// The hook receives the gradient as a [`Var`] on this tape and returns a `Var`, like
    /// PyTorch's tensor hooks (`Tensor.register_hook`): in a differentiable gradient
    /// ([`Tape::grad`], PyTorch's `create_graph=True`) the ops a hook applies to `g` are recorded
    /// like any other, so a replacement built from `g` (`Some(g)`, `Some(g * 0.5)`,
    /// `Some(g.clamp(-1.0, 1.0))`) is differentiated through and second-order results see exactly
    /// the function the hook computes. A replacement built from values alone
    /// (`tape.constant(...)` of `g.value()`) is a constant, as a detached tensor is in PyTorch.
    /// As in PyTorch, a hook runs in every sweep through its node, so differentiating a
    /// gradient again runs it again on the second-order gradient. In [`Var::backward`] nothing
    /// is recorded and only the replacement's value matters. To only read the gradient, look at
    /// `g.value()` and return `None`.
    ///
    /// ```
    /// use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(3.0);
    /// let h = x * 2.0;
    /// h.register_hook(|g| Some(g * 10.0)); // scale what flows through h
    /// let grads = (h * h).backward();      // d(h²)/dh = 2h = 12
    /// assert_eq!(grads[h].item(), 120.0);
    /// assert_eq!(grads[x].item(), 240.0);
    /// ```
    ///
    /// # Panics
    /// During backward, if a hook returns a gradient of another shape (naming the node's op and
    /// line) or a `Var` of another tape.
    pub fn register_hook(self, hook: impl for<'a> Fn(Var<'a, T>) -> Option<Var<'a, T>> + 'static) {
        self.tape.inner.borrow_mut().hooks.entry(self.id).or_default().push(Rc::new(hook));
    }
}

impl<T: Float> fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.tape.inner.borrow();
        let n = &inner.nodes[self.id];
        write!(f, "Var#{} `{}` {:?} at {}", self.id, n.name, n.value, n.location)
    }
}

impl<T: Float> fmt::Display for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.tape.inner.borrow().nodes[self.id].value, f)
    }
}
