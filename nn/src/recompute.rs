//! [`Bound::checkpoint`]: gradient checkpointing for layers. A segment of a model (a
//! transformer block, say) keeps only its input and output on the tape and is run again in
//! backward, its parameters passed in as the segment's inputs (see autograd's
//! [`Tape::checkpoint`](autograd::Tape::checkpoint)).

use autograd::{Float, Var};

use crate::{Bound, ParamId};

impl<'t, T: Float> Bound<'t, T> {
    /// Runs `segment` on `inputs` with gradient checkpointing: its intermediate values are not
    /// kept, and backward runs it again (from `inputs` and the parameters `params`) to get its
    /// gradients, which are the same to the last bit as without the checkpoint, dropout masks
    /// included. The segment receives a binding that lifts exactly the parameters of `params`
    /// (as the segment's own inputs) and is in this binding's training mode. Every parameter the
    /// segment uses must be in `params`; [`TransformerBlock::forward_checkpointed`](crate::TransformerBlock::forward_checkpointed)
    /// lists its own.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    /// use nn::{Linear, ParamStore};
    /// let mut store = ParamStore::<f64>::with_seed(0);
    /// let fc = Linear::new(store.scope("fc"), 3, 3);
    /// let params = [fc.weight, fc.bias.expect("a bias by default")];
    /// let x = Tensor::from_vec(vec![0.5, -1.0, 2.0], &[1, 3]);
    /// let grads = |checkpointed: bool| {
    ///     let tape = Tape::new();
    ///     let p = store.bind(&tape);
    ///     let x = tape.constant(x.clone());
    ///     let h = if checkpointed {
    ///         p.checkpoint(&params, &[x], move |p, xs| fc.forward(p, xs[0]).tanh())
    ///     } else {
    ///         fc.forward(&p, x).tanh()
    ///     };
    ///     p.backward((h * h).sum())
    /// };
    /// let (with, without) = (grads(true), grads(false));
    /// assert_eq!(with.get(fc.weight), without.get(fc.weight));
    /// ```
    ///
    /// # Panics
    /// If the segment uses a parameter that is not in `params` (naming its id), or as
    /// [`Tape::checkpoint`](autograd::Tape::checkpoint) does (no inputs and no parameters).
    #[track_caller]
    pub fn checkpoint<F>(&self, params: &[ParamId], inputs: &[Var<'t, T>], segment: F) -> Var<'t, T>
    where
        F: for<'s> Fn(&Bound<'s, T>, &[Var<'s, T>]) -> Var<'s, T> + 'static,
    {
        let ids = params.to_vec();
        let (n_inputs, slots, training) = (inputs.len(), self.slots(), self.is_training());
        let mut all = inputs.to_vec();
        all.extend(ids.iter().map(|&id| self.get(id)));
        self.tape().checkpoint(&all, move |vars| {
            let (xs, ps) = vars.split_at(n_inputs);
            let p = Bound::segment(vars[0].tape(), training, slots, ids.iter().copied().zip(ps.iter().copied()));
            segment(&p, xs)
        })
    }
}
