//! Optimizers: the [`Optimizer`] trait, [`Sgd`], [`Adam`] and [`AdamW`], [`RmsProp`],
//! [`Adagrad`] and [`Lion`]; learning-rate schedules ([`LrSchedule`] with warm-up and constant,
//! step, cosine or linear decay; [`OneCycleLr`]); gradient clipping ([`clip_grad_norm`]);
//! gradient accumulation over micro-batches ([`Accumulate`]).
//!
//! An update is one fused pass per parameter over its value, gradient and state, in place in
//! the store's tensors (`Tensor::data_mut`), split across threads for large parameters. Nothing
//! is allocated per step once the state exists (it is created on a parameter's first update),
//! provided the tape that read the parameters is dropped before the step (otherwise the first
//! write copies the shared data, once).
//!
//! State is [`OptimizerState`]: step count, learning rate and per-parameter buffers keyed by
//! parameter name, saved in checkpoints so that training resumes exactly.

use autograd::Float;
use rayon::prelude::*;

use crate::{AnyTensor, ParamGrads, ParamStore, Result};

pub mod accumulate;
pub mod adagrad;
pub mod adam;
pub mod clip;
pub mod lion;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;

pub use accumulate::Accumulate;
pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW, DecayOn};
pub use clip::clip_grad_norm;
pub use lion::{Lion, LionConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::{Anneal, OneCycleLr};
pub use schedule::{Decay, LrSchedule};
pub use sgd::{Sgd, SgdConfig};

/// Updates a [`ParamStore`] from gradients.
pub trait Optimizer<T: Float> {
    /// One update of every parameter that has a gradient and is not frozen; also stores the
    /// buffers' new values the step recorded ([`ParamStore::update_buffers`]: an optimizer
    /// must call it first).
    fn step(&mut self, store: &mut ParamStore<T>, grads: &ParamGrads<T>);

    /// The learning rate the next step uses.
    fn lr(&self) -> f64;

    /// Sets the learning rate (schedules call this before each step).
    fn set_lr(&mut self, lr: f64);

    /// How many steps have been taken.
    fn steps(&self) -> u64;

    /// A snapshot of the state, buffers keyed by the store's parameter names.
    fn state(&self, store: &ParamStore<T>) -> OptimizerState;

    /// Restores a snapshot taken by [`Optimizer::state`] of an optimizer of the same kind.
    ///
    /// # Errors
    /// [`Error::OptimizerState`](crate::Error::OptimizerState) if the kind differs, or a buffer
    /// names a parameter the store lacks or has another shape.
    fn load_state(&mut self, store: &ParamStore<T>, state: &OptimizerState) -> Result<()>;
}

/// An optimizer's state, independent of any one store: what a checkpoint saves.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// `"sgd"`, `"adam"`, `"adamw"`, `"rmsprop"`, `"adagrad"` or `"lion"`.
    pub kind: String,
    /// Steps taken.
    pub step: u64,
    /// Scalar state, e.g. `("lr", 0.001)`.
    pub scalars: Vec<(String, f64)>,
    /// Per-parameter buffers.
    pub slots: Vec<SlotState>,
}

/// One buffer of one parameter, e.g. Adam's first moment of `"fc.weight"`.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotState {
    /// The parameter's full name.
    pub param: String,
    /// The buffer's name (`"momentum"`, `"exp_avg"`, `"exp_avg_sq"`).
    pub slot: String,
    /// Its value.
    pub tensor: AnyTensor,
}

impl OptimizerState {
    /// The scalar named `name`.
    pub fn scalar(&self, name: &str) -> Option<f64> {
        self.scalars.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// Elements above which an update is split across threads.
const PAR_MIN: usize = 1 << 15;
/// Elements per parallel chunk.
const CHUNK: usize = 1 << 13;

/// Saves per-parameter buffers (`bufs[slot][param]`) under their parameter names.
pub(crate) fn save_slots<T: Float>(
    store: &ParamStore<T>,
    names: &[&str],
    bufs: &[&[Option<autograd::Tensor<T>>]],
) -> Vec<SlotState> {
    let mut out = Vec::new();
    for (id, name, _) in store.iter() {
        for (slot, buf) in names.iter().zip(bufs) {
            if let Some(Some(t)) = buf.get(id.index()) {
                out.push(SlotState { param: name.to_string(), slot: slot.to_string(), tensor: AnyTensor::new(t) });
            }
        }
    }
    out
}

/// Restores buffers saved by [`save_slots`] into `bufs[slot][param]`, checking names and shapes.
pub(crate) fn load_slots<T: Float>(
    store: &ParamStore<T>,
    state: &OptimizerState,
    kind: &str,
    names: &[&str],
) -> Result<Vec<Vec<Option<autograd::Tensor<T>>>>> {
    use crate::Error;
    if state.kind != kind {
        return Err(Error::OptimizerState(format!("saved by a `{}` optimizer, loading into `{kind}`", state.kind)));
    }
    let mut bufs = vec![vec![None; store.len()]; names.len()];
    let mut problems = Vec::new();
    for s in &state.slots {
        let Some(k) = names.iter().position(|n| *n == s.slot) else {
            problems.push(format!("unknown buffer `{}` for `{}`", s.slot, s.param));
            continue;
        };
        let Some(id) = store.id(&s.param) else {
            problems.push(format!("buffer for unknown parameter `{}`", s.param));
            continue;
        };
        if store.get(id).shape() != s.tensor.shape() {
            problems.push(format!(
                "`{}` buffer of `{}` has shape {:?}, the parameter {:?}",
                s.slot,
                s.param,
                s.tensor.shape(),
                store.get(id).shape()
            ));
            continue;
        }
        bufs[k][id.index()] = Some(s.tensor.to());
    }
    if problems.is_empty() {
        Ok(bufs)
    } else {
        Err(Error::OptimizerState(problems.join("; ")))
    }
}

autograd::simd::kernel! {
    /// `f(p, g, a, b)` compiled for the CPU's vector instructions: the slices are this
    /// function's own arguments, so the compiler knows they do not overlap and vectorizes `f`'s
    /// loop.
    fn update_chunk[T: Float, F: Fn(&mut [T], &[T], &mut [T], &mut [T])](f: &F, p: &mut [T], g: &[T], a: &mut [T], b: &mut [T]) where [] {
        f(p, g, a, b)
    }
}

/// Runs `f` over matching chunks of a parameter, its gradient and up to two state buffers,
/// in parallel for large parameters. `f(p, g, a, b)` sees slices of equal length (`b` may be
/// empty when there is one buffer).
pub(crate) fn fused<T: Float>(
    p: &mut [T],
    g: &[T],
    a: &mut [T],
    b: &mut [T],
    f: impl Fn(&mut [T], &[T], &mut [T], &mut [T]) + Sync + Send,
) {
    // Each chunk's loop compiled for the CPU's vector instructions (see `autograd::simd`).
    let f = |p: &mut [T], g: &[T], a: &mut [T], b: &mut [T]| update_chunk(&f, p, g, a, b);
    let n = p.len();
    let two = !b.is_empty();
    if n < PAR_MIN {
        return f(p, g, a, b);
    }
    if two {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(a.par_chunks_mut(CHUNK))
            .zip(b.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), a), b)| f(p, g, a, b));
    } else if !a.is_empty() {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(a.par_chunks_mut(CHUNK))
            .for_each(|((p, g), a)| f(p, g, a, &mut []));
    } else {
        p.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(p, g)| f(p, g, &mut [], &mut []));
    }
}
