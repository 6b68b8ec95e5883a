//! [`clip_grad_norm`]: scale all gradients together so that their global norm is at most a bound.

use autograd::Float;

use crate::ParamGrads;

/// Scales every gradient by `max_norm / norm` when the global norm (the Euclidean norm of all
/// gradients concatenated) exceeds `max_norm`, in place. Returns the norm before clipping
/// (PyTorch's `clip_grad_norm_`, which also adds 1e-6 to the denominator).
///
/// ```
/// use autograd::Tensor;
/// use nn::{clip_grad_norm, ParamGrads};
/// let mut g = ParamGrads::from_vec(vec![Some(Tensor::from(vec![3.0f64])), Some(Tensor::from(vec![4.0]))]);
/// assert_eq!(clip_grad_norm(&mut g, 1.0), 5.0);
/// assert!((g.global_norm() - 1.0).abs() < 1e-6);
/// ```
pub fn clip_grad_norm<T: Float>(grads: &mut ParamGrads<T>, max_norm: f64) -> f64 {
    let norm = grads.global_norm();
    if norm > max_norm {
        let scale = T::from_f64(max_norm / (norm + 1e-6));
        for (_, g) in grads.iter_mut() {
            for x in g.data_mut() {
                *x *= scale;
            }
        }
    }
    norm
}
