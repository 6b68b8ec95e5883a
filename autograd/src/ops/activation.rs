//! Element-wise activations: tanh (and the other activation functions of this family).

use crate::{Float, Op, Tensor, Var};

struct TanhOp;

impl<T: Float> Op<T> for TanhOp {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].map(T::tanh)
    }
    // d tanh(x)/dx = 1 − tanh²(x) = 1 − out².
    fn backward<'t>(
        &self,
        _inputs: &[Var<'t, T>],
        out: Var<'t, T>,
        grad_out: Var<'t, T>,
    ) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out * (1.0 - out * out))]
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Hyperbolic tangent, element-wise. The derivative is `1 − tanh²(x)`. PyTorch: `torch.tanh`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// assert_eq!(tape.var(0.0).tanh().item(), 0.0);
    /// ```
    #[track_caller]
    pub fn tanh(self) -> Var<'t, T> {
        self.tape().apply(TanhOp, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{gradcheck, gradgradcheck};
    use crate::Tape;

    #[test]
    fn tanh_grad_at_half_matches_hand_value() {
        let tape = Tape::<f64>::new();
        let x = tape.var(0.5);
        let grads = x.tanh().backward();
        // 1 − tanh²(0.5) = 0.7864477329659274
        assert!((grads[x].item() - 0.786_447_732_965_927_4).abs() < 1e-15);
    }

    #[test]
    fn tanh_grad_matches_finite_diff() {
        gradcheck(|x| x[0].tanh().exp().mean(), &[vec![-1.5, 0.5, 2.0].into()]);
        gradgradcheck(|x| x[0].tanh().exp().mean(), &[vec![-1.5, 0.5, 2.0].into()]);
    }
}
