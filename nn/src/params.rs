//! [`ParamStore`]: a model's named parameters; [`Scope`]: how layers create them;
//! [`Bound`]: the store lifted onto one step's tape; [`ParamGrads`]: the gradients that come back.
//!
//! A step reads:
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{Linear, ParamStore};
//!
//! let mut store = ParamStore::<f64>::with_seed(0);
//! let layer = Linear::new(store.scope("fc"), 3, 2);
//! assert_eq!(store.names().collect::<Vec<_>>(), ["fc.weight", "fc.bias"]);
//!
//! let grads = {
//!     let tape = Tape::new();
//!     let p = store.bind(&tape);              // parameters are lifted lazily, once
//!     let x = tape.constant(Tensor::ones(&[4, 3]));
//!     let loss = layer.forward(&p, x).powi(2).mean();
//!     p.backward(loss)                        // gradients keyed by parameter
//! };                                          // the tape is gone: the store's tensors are unshared again
//! assert_eq!(grads.get(layer.weight).map(|g| g.shape().to_vec()), Some(vec![3, 2]));
//! ```

use std::cell::RefCell;
use std::fmt;

use autograd::{Float, Grads, Rng, SeedableRng, Tape, Tensor, Var};
use indexmap::IndexMap;

use crate::Init;

/// The id of one parameter in its [`ParamStore`]: its position in creation order. Cheap to copy;
/// layers keep these and nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub(crate) usize);

impl ParamId {
    /// The position of the parameter in the store (creation order).
    pub fn index(self) -> usize {
        self.0
    }
}

#[derive(Clone)]
struct Param<T> {
    tensor: Tensor<T>,
    frozen: bool,
    /// A buffer (running statistics): saved and loaded like a parameter, never trained.
    buffer: bool,
}

/// One row of [`ParamStore::summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamInfo {
    /// The hierarchical name, e.g. `"blocks.0.attn.qkv.weight"`.
    pub name: String,
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// The number of elements.
    pub numel: usize,
    /// Whether the parameter is frozen (no gradient, not updated).
    pub frozen: bool,
    /// Whether it is a buffer (see [`ParamStore::add_buffer`]).
    pub buffer: bool,
}

/// Owns every parameter of a model in a stable order, by hierarchical name.
///
/// Layers are created against a [`Scope`] (`store.scope("blocks").scope(0)`) and keep only
/// [`ParamId`]s. Each training step binds the store to a fresh tape ([`ParamStore::bind`]),
/// which lifts each parameter used onto it once; an optimizer then updates the tensors in place.
///
/// Initial values are drawn from the store's own ChaCha8 generator, in creation order: the same
/// seed and the same model code give bit-identical parameters.
#[derive(Clone)]
pub struct ParamStore<T: Float> {
    params: IndexMap<String, Param<T>>,
    rng: Rng,
}

impl<T: Float> Default for ParamStore<T> {
    /// An empty store seeded with 0.
    fn default() -> Self {
        Self::with_seed(0)
    }
}

impl<T: Float> ParamStore<T> {
    /// An empty store whose initializers draw from ChaCha8 seeded with `seed`.
    ///
    /// Made on the program's main thread, it makes that thread a worker of rayon's pool, as the
    /// first tape would (see `autograd::threads`): a model is usually made before the data is
    /// loaded, and a loader that uses rayon first would build the pool without it.
    pub fn with_seed(seed: u64) -> Self {
        autograd::threads::join_global_pool();
        ParamStore { params: IndexMap::new(), rng: Rng::seed_from_u64(seed) }
    }

    /// A scope whose parameters are named `"{name}.…"`.
    pub fn scope(&mut self, name: impl fmt::Display) -> Scope<'_, T> {
        Scope { store: self, prefix: name.to_string() }
    }

    /// The root scope: parameters created here get bare names.
    pub fn root(&mut self) -> Scope<'_, T> {
        Scope { store: self, prefix: String::new() }
    }

    /// Adds a parameter with the given full name and value.
    ///
    /// # Panics
    /// If a parameter of that name exists (two layers built against the same scope).
    #[track_caller]
    pub fn add(&mut self, name: impl Into<String>, tensor: Tensor<T>) -> ParamId {
        let name = name.into();
        let (index, old) = self.params.insert_full(name.clone(), Param { tensor, frozen: false, buffer: false });
        assert!(
            old.is_none(),
            "ParamStore::add: a parameter named `{name}` already exists (two layers built in the same scope?)"
        );
        ParamId(index)
    }

    /// Adds a parameter drawn from `init` with the store's generator.
    #[track_caller]
    pub fn add_init(&mut self, name: impl Into<String>, shape: &[usize], init: Init) -> ParamId {
        let t = init.tensor(shape, &mut self.rng);
        self.add(name, t)
    }

    /// The store's generator (draws made with it advance the same stream initializers use).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The number of parameter tensors.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The total number of elements over all parameters (PyTorch's
    /// `sum(p.numel() for p in model.parameters())`).
    pub fn num_params(&self) -> usize {
        self.params.values().filter(|p| !p.buffer).map(|p| p.tensor.numel()).sum()
    }

    /// The number of elements over the parameters that are not frozen.
    pub fn num_trainable(&self) -> usize {
        self.params.values().filter(|p| !p.frozen && !p.buffer).map(|p| p.tensor.numel()).sum()
    }

    /// The id of the parameter with this full name.
    pub fn id(&self, name: &str) -> Option<ParamId> {
        self.params.get_index_of(name).map(ParamId)
    }

    /// The full name of a parameter.
    ///
    /// # Panics
    /// If `id` comes from another store.
    #[track_caller]
    pub fn name(&self, id: ParamId) -> &str {
        self.entry(id).0
    }

    /// A parameter's current value.
    ///
    /// # Panics
    /// If `id` comes from another store.
    #[track_caller]
    pub fn get(&self, id: ParamId) -> &Tensor<T> {
        &self.entry(id).1.tensor
    }

    /// Mutable access to a parameter's value (it must keep its shape for layers to keep working).
    ///
    /// # Panics
    /// If `id` comes from another store.
    #[track_caller]
    pub fn get_mut(&mut self, id: ParamId) -> &mut Tensor<T> {
        let n = self.params.len();
        &mut self
            .params
            .get_index_mut(id.0)
            .unwrap_or_else(|| panic!("ParamId({}) out of range for a store of {n}", id.0))
            .1
            .tensor
    }

    /// Replaces a parameter's value with a tensor of the same shape.
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn set(&mut self, id: ParamId, value: Tensor<T>) {
        let t = self.get_mut(id);
        assert_eq!(t.shape(), value.shape(), "ParamStore::set: shape mismatch for parameter {}", id.0);
        *t = value;
    }

    #[track_caller]
    fn entry(&self, id: ParamId) -> (&str, &Param<T>) {
        let (k, v) = self.params.get_index(id.0).unwrap_or_else(|| {
            panic!(
                "ParamId({}) out of range for a store of {} parameters (is it from another store?)",
                id.0,
                self.params.len()
            )
        });
        (k.as_str(), v)
    }

    /// Every parameter's name, in creation order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params.keys().map(String::as_str)
    }

    /// `(id, name, value)` for every parameter, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &str, &Tensor<T>)> {
        self.params.iter().enumerate().map(|(i, (k, p))| (ParamId(i), k.as_str(), &p.tensor))
    }

    /// `(id, value, frozen)` for every parameter, mutably, in creation order (for optimizers).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (ParamId, &mut Tensor<T>, bool)> {
        self.params.values_mut().enumerate().map(|(i, p)| (ParamId(i), &mut p.tensor, p.frozen || p.buffer))
    }

    /// Name, shape, element count and frozen flag of every parameter, in creation order. Its
    /// `Display` (via [`ParamStore`]'s) is a table.
    pub fn summary(&self) -> Vec<ParamInfo> {
        self.params
            .iter()
            .map(|(k, p)| ParamInfo {
                name: k.clone(),
                shape: p.tensor.shape().to_vec(),
                numel: p.tensor.numel(),
                frozen: p.frozen,
                buffer: p.buffer,
            })
            .collect()
    }

    /// Freezes or unfreezes a parameter: a frozen one is lifted as a constant (no gradient) and
    /// optimizers leave it alone.
    #[track_caller]
    pub fn set_frozen(&mut self, id: ParamId, frozen: bool) {
        let n = self.params.len();
        self.params
            .get_index_mut(id.0)
            .unwrap_or_else(|| panic!("ParamId({}) out of range for a store of {n}", id.0))
            .1
            .frozen = frozen;
    }

    /// Freezes (or unfreezes) every parameter whose name is `prefix` or starts with `"{prefix}."`.
    /// Returns how many matched.
    pub fn set_frozen_prefix(&mut self, prefix: &str, frozen: bool) -> usize {
        let mut n = 0;
        for (k, p) in self.params.iter_mut() {
            if under(k, prefix) {
                p.frozen = frozen;
                n += 1;
            }
        }
        n
    }

    /// Whether a parameter is frozen.
    #[track_caller]
    pub fn is_frozen(&self, id: ParamId) -> bool {
        self.entry(id).1.frozen
    }

    /// Binds the store to a tape for one step, in training mode (dropout active).
    pub fn bind<'t>(&'t self, tape: &'t Tape<T>) -> Bound<'t, T> {
        Bound {
            store: Some(self),
            tape,
            lifted: RefCell::new(vec![None; self.params.len()]),
            training: true,
            buffers: RefCell::new(Vec::new()),
        }
    }

    /// Runs `f` on a fresh tape seeded with `seed` (the seed drives dropout), back-propagates the
    /// one-element loss it returns, and gives back the loss value and the parameters' gradients.
    /// The tape is dropped before returning, so an optimizer step that follows updates the
    /// store's tensors in place, without a copy.
    ///
    /// ```
    /// use nn::{Linear, ParamStore, Sgd, SgdConfig, Optimizer};
    /// use autograd::Tensor;
    /// let mut store = ParamStore::<f32>::with_seed(1);
    /// let fc = Linear::new(store.scope("fc"), 2, 1);
    /// let x = Tensor::from_vec(vec![1.0, 2.0], &[1, 2]);
    /// let (loss, grads) = store.value_and_grad(0, |p| {
    ///     fc.forward(p, p.tape().constant(x.clone())).powi(2).sum()
    /// });
    /// let mut opt = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() });
    /// opt.step(&mut store, &grads);
    /// assert!(loss >= 0.0);
    /// ```
    pub fn value_and_grad<F>(&self, seed: u64, f: F) -> (T, ParamGrads<T>)
    where
        F: for<'t> FnOnce(&Bound<'t, T>) -> Var<'t, T>,
    {
        let tape = Tape::with_seed(seed);
        let bound = self.bind(&tape);
        let loss = f(&bound);
        let value = loss.item();
        let grads = bound.backward(loss);
        (value, grads)
    }

    /// Adds a buffer: a tensor saved and loaded with the parameters (checkpoints, safetensors,
    /// PyTorch state dicts) under its name, but never trained: it is lifted onto a tape as a
    /// constant (no gradient), optimizers leave it alone, and [`ParamStore::num_params`] does
    /// not count it. Layers change it through [`Bound::set_buffer`] (PyTorch's
    /// `register_buffer`, e.g. batch norm's `running_mean`).
    ///
    /// ```
    /// use autograd::Tensor;
    /// use nn::ParamStore;
    /// let mut store = ParamStore::<f32>::default();
    /// let w = store.add("bn.weight", Tensor::ones(&[2]));
    /// let m = store.add_buffer("bn.running_mean", Tensor::zeros(&[2]));
    /// let (_, grads) = store.value_and_grad(0, |p| {
    ///     p.set_buffer(m, Tensor::from(vec![1.0, 2.0]));
    ///     (p.get(w) * p.get(m)).sum()
    /// });
    /// assert!(grads.get(m).is_none() && store.is_buffer(m));
    /// store.update_buffers(&grads); // optimizers' `step` does this too
    /// assert_eq!(store.get(m).data(), &[1.0, 2.0]);
    /// assert_eq!(store.num_params(), 2);
    /// ```
    ///
    /// # Panics
    /// If a parameter or buffer of that name exists.
    #[track_caller]
    pub fn add_buffer(&mut self, name: impl Into<String>, tensor: Tensor<T>) -> ParamId {
        let id = self.add(name, tensor);
        self.params[id.0].buffer = true;
        id
    }

    /// Whether `id` is a buffer ([`ParamStore::add_buffer`]).
    ///
    /// # Panics
    /// If `id` comes from another store.
    #[track_caller]
    pub fn is_buffer(&self, id: ParamId) -> bool {
        self.entry(id).1.buffer
    }

    /// Stores the buffers' new values that a step recorded with [`Bound::set_buffer`] and that
    /// came back with its gradients. Every optimizer's `step` calls it, so a training loop
    /// that steps an optimizer needs nothing more.
    ///
    /// # Panics
    /// If `grads` comes from another store (an id out of range or not a buffer, or a shape
    /// that differs).
    #[track_caller]
    pub fn update_buffers(&mut self, grads: &ParamGrads<T>) {
        for (id, t) in &grads.buffers {
            let name = self.entry(*id).0.to_string();
            assert!(self.is_buffer(*id), "ParamStore::update_buffers: `{name}` is not a buffer");
            let old = self.get_mut(*id);
            assert_eq!(
                old.shape(),
                t.shape(),
                "ParamStore::update_buffers: buffer `{name}` of shape {:?} given a value of shape {:?}",
                old.shape(),
                t.shape()
            );
            *old = t.clone();
        }
    }
}

/// Whether `name` is `prefix` itself or lies under it (`prefix.…`).
pub(crate) fn under(name: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || name == prefix
        || (name.starts_with(prefix) && name.as_bytes().get(prefix.len()) == Some(&b'.'))
}

impl<T: Float> fmt::Display for ParamStore<T> {
    /// A table of the parameters and the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.params.keys().map(String::len).max().unwrap_or(4).max(4);
        writeln!(f, "{:<width$}  {:<16} {:>10}", "name", "shape", "count")?;
        for p in self.summary() {
            let shape = format!("{:?}", p.shape);
            let frozen = if p.buffer {
                "  (buffer)"
            } else if p.frozen {
                "  (frozen)"
            } else {
                ""
            };
            writeln!(f, "{:<width$}  {shape:<16} {:>10}{frozen}", p.name, p.numel)?;
        }
        write!(f, "{} tensors, {} parameters ({} trainable)", self.len(), self.num_params(), self.num_trainable())
    }
}

impl<T: Float> fmt::Debug for ParamStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.summary()).finish()
    }
}

/// A name prefix of a [`ParamStore`], through which layers create their parameters.
///
/// `store.scope("blocks").scope(0).scope("attn")` names parameters `"blocks.0.attn.…"`.
pub struct Scope<'a, T: Float> {
    store: &'a mut ParamStore<T>,
    prefix: String,
}

impl<T: Float> Scope<'_, T> {
    /// A sub-scope `"{self}.{name}"`.
    pub fn scope(&mut self, name: impl fmt::Display) -> Scope<'_, T> {
        let prefix = self.path(&name.to_string());
        Scope { store: &mut *self.store, prefix }
    }

    /// The full name of `name` in this scope.
    pub fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// This scope's prefix (empty for the root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Creates a parameter `"{scope}.{name}"` drawn from `init`.
    ///
    /// # Panics
    /// If the name is taken.
    #[track_caller]
    pub fn param(&mut self, name: &str, shape: &[usize], init: Init) -> ParamId {
        let full = self.path(name);
        self.store.add_init(full, shape, init)
    }

    /// Creates a parameter `"{scope}.{name}"` with the given value.
    ///
    /// # Panics
    /// If the name is taken.
    #[track_caller]
    pub fn add(&mut self, name: &str, tensor: Tensor<T>) -> ParamId {
        let full = self.path(name);
        self.store.add(full, tensor)
    }

    /// The store behind this scope.
    pub fn store(&mut self) -> &mut ParamStore<T> {
        self.store
    }

    /// Creates a buffer `"{scope}.{name}"` (see [`ParamStore::add_buffer`]).
    ///
    /// # Panics
    /// If the name is taken.
    #[track_caller]
    pub fn buffer(&mut self, name: &str, tensor: Tensor<T>) -> ParamId {
        let full = self.path(name);
        self.store.add_buffer(full, tensor)
    }
}

/// A [`ParamStore`] bound to one step's tape. [`Bound::get`] lifts a parameter onto the tape the
/// first time it is asked for (as a variable, or as a constant when frozen) and returns the same
/// `Var` afterwards, so a parameter used twice (weight tying) gets one summed gradient.
pub struct Bound<'t, T: Float> {
    /// `None` inside a checkpointed segment, whose parameters all come in as its inputs.
    store: Option<&'t ParamStore<T>>,
    tape: &'t Tape<T>,
    lifted: RefCell<Vec<Option<Var<'t, T>>>>,
    training: bool,
    /// New values of buffers set during the step ([`Bound::set_buffer`]).
    buffers: RefCell<Vec<(ParamId, Tensor<T>)>>,
}

impl<'t, T: Float> Bound<'t, T> {
    /// The parameter as a node of the tape.
    ///
    /// # Panics
    /// If `id` comes from another store, or inside a checkpointed segment
    /// ([`Bound::checkpoint`]) if the parameter was not passed to the segment.
    #[track_caller]
    pub fn get(&self, id: ParamId) -> Var<'t, T> {
        if let Some(Some(v)) = self.lifted.borrow().get(id.0) {
            return *v;
        }
        let Some(store) = self.store else {
            panic!(
                "Bound::get: parameter ParamId({}) is used inside a checkpointed segment but was not passed \
                 to it: add it to Bound::checkpoint's parameters (ParamStore::name tells which it is; called at {})",
                id.0,
                std::panic::Location::caller()
            )
        };
        let (_, p) = store.entry(id);
        let v =
            if p.frozen || p.buffer { self.tape.constant(p.tensor.clone()) } else { self.tape.var(p.tensor.clone()) };
        self.lifted.borrow_mut()[id.0] = Some(v);
        v
    }

    /// The tape, to put inputs on it (`p.tape().constant(x)`).
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// The store this binding reads.
    ///
    /// # Panics
    /// Inside a checkpointed segment ([`Bound::checkpoint`]), which sees only the parameters
    /// passed to it.
    #[track_caller]
    pub fn store(&self) -> &'t ParamStore<T> {
        self.store.expect("Bound::store: inside a checkpointed segment the store is not reachable; use Bound::get")
    }

    /// Whether layers run in training mode (dropout active). True after [`ParamStore::bind`].
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// The same binding in evaluation mode (dropout is the identity) or back in training mode.
    pub fn train(mut self, training: bool) -> Self {
        self.training = training;
        self
    }

    /// Shorthand for `train(false)`.
    pub fn eval(self) -> Self {
        self.train(false)
    }

    /// Back-propagates the one-element `loss` and returns the gradient of every parameter that
    /// was lifted and is not frozen.
    ///
    /// # Panics
    /// If `loss` has more than one element.
    #[track_caller]
    pub fn backward(&self, loss: Var<'t, T>) -> ParamGrads<T> {
        self.grads(loss.backward())
    }

    /// Takes the parameters' gradients out of a backward pass's result (no copy).
    pub fn grads(&self, mut grads: Grads<T>) -> ParamGrads<T> {
        let lifted = self.lifted.borrow();
        ParamGrads {
            grads: lifted.iter().map(|v| v.and_then(|v| grads.take(v))).collect(),
            buffers: self.buffers.take(),
        }
    }

    /// A binding for a checkpointed segment's tape: the parameters `params` are the segment's
    /// inputs, and no others can be reached (see [`Bound::checkpoint`]).
    pub(crate) fn segment(
        tape: &'t Tape<T>,
        training: bool,
        slots: usize,
        params: impl Iterator<Item = (ParamId, Var<'t, T>)>,
    ) -> Self {
        let mut lifted = vec![None; slots];
        for (id, v) in params {
            lifted[id.0] = Some(v);
        }
        Bound { store: None, tape, lifted: RefCell::new(lifted), training, buffers: RefCell::new(Vec::new()) }
    }

    /// How many parameters this binding can lift (the store's length).
    pub(crate) fn slots(&self) -> usize {
        self.lifted.borrow().len()
    }

    /// The parameter as a forward-mode dual number carrying `tangent` (see
    /// [`Tape::dual`](autograd::Tape::dual)): every output computed from it carries its
    /// derivative along `tangent`, read with [`Var::tangent`]. A frozen parameter carries the
    /// tangent too (a direction is not a gradient).
    ///
    /// # Panics
    /// If the parameter was already lifted onto the tape (values computed from it would carry no
    /// tangent), or `tangent` does not have its shape.
    #[track_caller]
    pub fn get_dual(&self, id: ParamId, tangent: Tensor<T>) -> Var<'t, T> {
        let Some(store) = self.store else {
            panic!("get_dual: parameter ParamId({}) cannot be given a tangent inside a checkpointed segment", id.0)
        };
        let (name, p) = store.entry(id);
        if let Some(Some(_)) = self.lifted.borrow().get(id.0) {
            panic!("get_dual: parameter `{name}` is already on the tape; give it its tangent before any use");
        }
        let v = self.tape.dual(p.tensor.clone(), tangent);
        self.lifted.borrow_mut()[id.0] = Some(v);
        v
    }

    /// The parameters lifted onto the tape so far, with their nodes, in [`ParamId`] order: to
    /// register gradient hooks on them between forward and backward, as
    /// [`comm::Ddp`](crate::comm::Ddp) does to reduce each gradient as soon as it is complete.
    pub fn lifted(&self) -> Vec<(ParamId, Var<'t, T>)> {
        self.lifted.borrow().iter().enumerate().filter_map(|(i, v)| v.map(|v| (ParamId(i), v))).collect()
    }

    /// Records a new value for a buffer (running statistics in training mode). The store keeps
    /// its old value during the step; the new one comes back with the gradients
    /// ([`Bound::grads`]) and is stored by [`ParamStore::update_buffers`], which optimizers'
    /// `step` calls. Setting it twice in a step keeps the last value.
    ///
    /// # Panics
    /// If `id` is not a buffer of the store, `value` does not have its shape, or inside a
    /// checkpointed segment (recomputed in backward, it would update the buffer twice).
    #[track_caller]
    pub fn set_buffer(&self, id: ParamId, value: Tensor<T>) {
        let Some(store) = self.store else {
            panic!(
                "Bound::set_buffer: buffer ParamId({}) cannot be updated inside a checkpointed segment \
                 (its recomputation would update it twice); keep the layer outside the segment",
                id.0
            )
        };
        let (name, p) = store.entry(id);
        assert!(p.buffer, "Bound::set_buffer: `{name}` is a parameter, not a buffer");
        assert_eq!(
            p.tensor.shape(),
            value.shape(),
            "Bound::set_buffer: buffer `{name}` of shape {:?} given a value of shape {:?}",
            p.tensor.shape(),
            value.shape()
        );
        let mut buffers = self.buffers.borrow_mut();
        buffers.retain(|(i, _)| *i != id);
        buffers.push((id, value));
    }
}

/// The gradient of each parameter after one backward pass, by [`ParamId`]. Parameters that were
/// not used, or are frozen, have none.
#[derive(Clone, Default)]
pub struct ParamGrads<T: Float> {
    grads: Vec<Option<Tensor<T>>>,
    /// The buffers' new values recorded by the step, applied by [`ParamStore::update_buffers`].
    pub(crate) buffers: Vec<(ParamId, Tensor<T>)>,
}

impl<T: Float> ParamGrads<T> {
    /// Gradients given explicitly, one slot per parameter of the store in order (for tests and
    /// for gradients computed some other way).
    pub fn from_vec(grads: Vec<Option<Tensor<T>>>) -> Self {
        ParamGrads { grads, buffers: Vec::new() }
    }

    /// The gradient of a parameter, if it has one.
    pub fn get(&self, id: ParamId) -> Option<&Tensor<T>> {
        self.grads.get(id.0).and_then(Option::as_ref)
    }

    /// Mutable access to a parameter's gradient.
    pub fn get_mut(&mut self, id: ParamId) -> Option<&mut Tensor<T>> {
        self.grads.get_mut(id.0).and_then(Option::as_mut)
    }

    /// `(id, gradient)` for every parameter that has one.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Tensor<T>)> {
        self.grads.iter().enumerate().filter_map(|(i, g)| g.as_ref().map(|g| (ParamId(i), g)))
    }

    /// Mutable `(id, gradient)` for every parameter that has one.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ParamId, &mut Tensor<T>)> {
        self.grads.iter_mut().enumerate().filter_map(|(i, g)| g.as_mut().map(|g| (ParamId(i), g)))
    }

    /// The Euclidean norm of all gradients together, accumulated in `f64`.
    pub fn global_norm(&self) -> f64 {
        self.iter().map(|(_, g)| g.data().iter().map(|x| x.to_f64() * x.to_f64()).sum::<f64>()).sum::<f64>().sqrt()
    }

    /// The buffers' new values recorded by the step ([`Bound::set_buffer`]), in the order set.
    pub fn buffer_updates(&self) -> impl Iterator<Item = (ParamId, &Tensor<T>)> {
        self.buffers.iter().map(|(id, t)| (*id, t))
    }

    /// Adds another step's gradients into these (gradient accumulation).
    ///
    /// # Panics
    /// If a gradient's shape differs between the two.
    #[track_caller]
    pub fn accumulate(&mut self, other: &ParamGrads<T>) {
        if self.grads.len() < other.grads.len() {
            self.grads.resize(other.grads.len(), None);
        }
        // A later micro-batch's running statistics replace an earlier one's, as in PyTorch.
        for (id, t) in &other.buffers {
            self.buffers.retain(|(i, _)| i != id);
            self.buffers.push((*id, t.clone()));
        }
        for (mine, theirs) in self.grads.iter_mut().zip(&other.grads) {
            match (mine.as_mut(), theirs) {
                (_, None) => {}
                (None, Some(g)) => *mine = Some(g.clone()),
                (Some(m), Some(g)) => {
                    assert_eq!(m.shape(), g.shape(), "ParamGrads::accumulate: shapes differ");
                    for (a, &b) in m.data_mut().iter_mut().zip(g.data()) {
                        *a += b;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_build_hierarchical_names_in_creation_order() {
        let mut store = ParamStore::<f32>::default();
        store.scope("blocks").scope(0).scope("attn").add("w", Tensor::zeros(&[2]));
        {
            let mut s = store.scope("blocks");
            let mut b1 = s.scope(1);
            b1.param("w", &[3], Init::Ones);
        }
        store.root().add("head", Tensor::zeros(&[1]));
        assert_eq!(store.names().collect::<Vec<_>>(), ["blocks.0.attn.w", "blocks.1.w", "head"]);
        assert_eq!(store.num_params(), 6);
        assert_eq!(store.id("blocks.1.w"), Some(ParamId(1)));
        assert_eq!(store.get(ParamId(1)).data(), &[1.0; 3]);
    }

    #[test]
    #[should_panic(expected = "already exists")]
    fn duplicate_names_panic() {
        let mut store = ParamStore::<f32>::default();
        store.scope("a").add("w", Tensor::zeros(&[1]));
        store.scope("a").add("w", Tensor::zeros(&[1]));
    }

    #[test]
    fn frozen_parameters_get_no_gradient_and_prefix_freezing_respects_dots() {
        let mut store = ParamStore::<f64>::default();
        let a = store.add("enc.w", Tensor::from(vec![1.0, 2.0]));
        let b = store.add("enc2.w", Tensor::from(vec![3.0, 4.0]));
        assert_eq!(store.set_frozen_prefix("enc", true), 1);
        assert!(store.is_frozen(a) && !store.is_frozen(b));
        assert_eq!(store.num_trainable(), 2);
        let (_, grads) = store.value_and_grad(0, |p| (p.get(a) * p.get(b)).sum());
        assert!(grads.get(a).is_none());
        assert_eq!(grads.get(b).map(|g| g.to_vec()), Some(vec![1.0, 2.0]));
    }

    #[test]
    fn a_parameter_used_twice_is_lifted_once_and_gets_the_summed_gradient() {
        let mut store = ParamStore::<f64>::default();
        let w = store.add("w", Tensor::scalar(3.0));
        let tape = Tape::new();
        let p = store.bind(&tape);
        assert_eq!(p.get(w).id(), p.get(w).id());
        let loss = p.get(w) * p.get(w); // d(w²)/dw = 2w = 6
        let n = tape.len();
        let g = p.backward(loss);
        assert_eq!(n, 2);
        assert_eq!(g.get(w).map(|t| t.item()), Some(6.0));
    }

    #[test]
    fn summary_table_lists_names_shapes_and_counts() {
        let mut store = ParamStore::<f32>::default();
        store.add("fc.weight", Tensor::zeros(&[3, 2]));
        let id = store.add("fc.bias", Tensor::zeros(&[2]));
        store.set_frozen(id, true);
        let s = store.to_string();
        assert!(s.contains("fc.weight") && s.contains("[3, 2]") && s.contains("(frozen)"), "{s}");
        assert!(s.ends_with("2 tensors, 8 parameters (6 trainable)"), "{s}");
    }
}
