//! [`Grads`]: the result of [`Var::backward`](crate::Var::backward), the gradient of every node
//! of the tape by its `Var`.

use std::ops::Index;

use crate::{Float, Tensor, Var};

/// The gradients computed by one backward pass, indexed by the `Var` they belong to.
///
/// Every node the output depends on through differentiable ops has one: `var` leaves and
/// intermediate results alike. Nodes the output does not depend on, and constants, have none.
///
/// ```
/// use autograd::Tape;
/// let tape = Tape::<f64>::new();
/// let (a, b) = (tape.var(3.0), tape.var(2.0));
/// let h = a * b;
/// let grads = (h + b.powf(3.0)).relu().backward();
/// assert_eq!((grads[a].item(), grads[b].item()), (2.0, 15.0));
/// assert_eq!(grads[h].item(), 1.0); // intermediates too
/// ```
pub struct Grads<T: Float> {
    grads: Vec<Option<Tensor<T>>>,
}

impl<T: Float> Grads<T> {
    pub(crate) fn new(grads: Vec<Option<Tensor<T>>>) -> Self {
        Grads { grads }
    }

    /// The gradient of `var`, or `None` if the output does not depend on it.
    pub fn get(&self, var: Var<'_, T>) -> Option<&Tensor<T>> {
        self.get_by_id(var.id())
    }

    /// The gradient of the node with this id, or `None`.
    pub fn get_by_id(&self, id: usize) -> Option<&Tensor<T>> {
        self.grads.get(id).and_then(Option::as_ref)
    }

    /// Takes the gradient out (no copy), leaving `None` in its place.
    pub fn take(&mut self, var: Var<'_, T>) -> Option<Tensor<T>> {
        self.grads.get_mut(var.id()).and_then(Option::take)
    }

    /// `(node id, gradient)` for every node that has one, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Tensor<T>)> {
        self.grads.iter().enumerate().filter_map(|(i, g)| g.as_ref().map(|g| (i, g)))
    }
}

impl<T: Float> std::fmt::Debug for Grads<T> {
    /// Lists the node ids that have a gradient, with each gradient's shape.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter().map(|(id, g)| (id, g.shape()))).finish()
    }
}

impl<T: Float> Index<Var<'_, T>> for Grads<T> {
    type Output = Tensor<T>;

    /// # Panics
    /// If the output does not depend on `var` (use [`Grads::get`] to ask).
    #[track_caller]
    fn index(&self, var: Var<'_, T>) -> &Tensor<T> {
        // A `match`, not `unwrap_or_else`: a panic inside a closure would name this file's line
        // instead of the caller's.
        match self.get(var) {
            Some(g) => g,
            None => panic!(
                "no gradient for node {} (`{}` created at {}): the output does not depend on it, or it is a constant",
                var.id(),
                var.op_name(),
                var.location()
            ),
        }
    }
}
