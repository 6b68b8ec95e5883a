//! Dropout: zeroes random elements during training and rescales the rest (inverted dropout).

use rand::Rng as _;

use crate::{Float, Op, Tensor, Var};

/// `x ⊙ mask`, where the mask (0 or `1/(1 − p)` per element) was drawn when the op was created.
struct DropoutOp<T> {
    mask: Tensor<T>,
}

impl<T: Float> Op<T> for DropoutOp<T> {
    fn name(&self) -> &'static str {
        "dropout"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].zip_map(&self.mask, "dropout", |x, m| x * m)
    }
    // ∂(x ⊙ mask)/∂x = mask, a constant.
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out * grad_out.tape().constant(self.mask.clone()))]
    }
    // The same mask: dout = dx ⊙ mask.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t * t.tape().constant(self.mask.clone()))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Inverted dropout: when `train` and `p > 0`, each element is kept with probability
    /// `1 − p` and scaled by `1/(1 − p)`, or set to 0, so the expected value is unchanged;
    /// otherwise the identity (no node recorded). The derivative is the same mask: `1/(1 − p)`
    /// for kept elements, 0 for dropped ones; there are no kinks. The draws come from the tape's
    /// seeded generator ([`Tape::with_seed`](crate::Tape::with_seed)), so a run is reproducible.
    /// PyTorch: `torch.nn.functional.dropout(x, p, training=train)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::with_seed(7);
    /// let x = tape.var(Tensor::ones(&[1000]));
    /// assert_eq!(x.dropout(0.5, false).value(), x.value()); // evaluation: identity
    /// let y = x.dropout(0.5, true).value();
    /// assert!(y.data().iter().all(|&v| v == 0.0 || v == 2.0));
    /// let kept = y.data().iter().filter(|&&v| v == 2.0).count();
    /// assert!((400..600).contains(&kept));
    /// ```
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`.
    #[track_caller]
    pub fn dropout(self, p: f64, train: bool) -> Var<'t, T> {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout: probability p = {p} is not in [0, 1) (called at {})",
            std::panic::Location::caller()
        );
        if !train || p == 0.0 {
            return self;
        }
        let shape = self.shape();
        let n = self.numel();
        let scale = T::from_f64(1.0 / (1.0 - p));
        // Drop when a uniform u32 falls below p·2³²: one draw per element, the words taken from
        // the generator in blocks (the same words, in the same order, as one `next_u32` each,
        // without a call and a bounds check per element), then compared in a loop that
        // vectorizes.
        let threshold = (p * 4_294_967_296.0) as u64;
        let mut words = vec![0u32; n];
        self.tape().with_rng(|rng| rng.fill(&mut words[..]));
        let mask: Vec<T> = words.iter().map(|&u| if u64::from(u) < threshold { T::ZERO } else { scale }).collect();
        let mask = Tensor::from_vec(mask, &shape);
        self.tape().apply(DropoutOp { mask }, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    #[test]
    fn dropout_grad_is_its_mask() {
        let tape = Tape::<f64>::with_seed(3);
        let x = tape.var(Tensor::from(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]));
        let y = x.dropout(0.75, true);
        let grads = (y * 2.0).sum().backward();
        // y = x ⊙ m with m ∈ {0, 4}: ∂Σ2y/∂x = 2m = 2y/x.
        for ((&g, &y), &x) in grads[x].data().iter().zip(y.value().data()).zip(x.value().data()) {
            assert_eq!(g, 2.0 * y / x);
            assert!(g == 0.0 || g == 8.0);
        }
    }

    #[test]
    fn dropout_is_seeded_and_identity_when_off() {
        let draw = |seed| {
            let tape = Tape::<f32>::with_seed(seed);
            tape.var(Tensor::ones(&[64])).dropout(0.3, true).value()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        let tape = Tape::<f32>::new();
        let x = tape.var(Tensor::ones(&[4]));
        assert_eq!(x.dropout(0.0, true).id(), x.id());
        assert_eq!(x.dropout(0.9, false).id(), x.id());
    }

    #[test]
    fn dropout_mask_is_one_u32_draw_per_element_in_order() {
        // The mask is defined by the generator's stream: element i is dropped when the i-th
        // u32 drawn falls below p·2³² (a run of the same seed keeps its masks across versions).
        use rand::{RngCore, SeedableRng};
        let tape = Tape::<f32>::with_seed(5);
        let y = tape.var(Tensor::ones(&[1003])).dropout(0.3, true).value();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let threshold = (0.3 * 4_294_967_296.0) as u64;
        for &v in y.data() {
            let dropped = u64::from(rng.next_u32()) < threshold;
            assert_eq!(v == 0.0, dropped);
        }
    }

    #[test]
    #[should_panic(expected = "dropout: probability p = 1 is not in [0, 1)")]
    fn dropout_rejects_p_of_one() {
        let tape = Tape::<f64>::new();
        tape.var(1.0).dropout(1.0, true);
    }

    #[test]
    fn dropout_grads_match_finite_diff() {
        // The same seed on every fresh tape of the checker gives the same mask each time.
        let x: Tensor<f64> = Tensor::from(vec![0.5, -1.0, 2.0, 0.1, 1.3, -0.7]);
        gradcheck(|v| v[0].dropout(0.4, true).exp().mean(), std::slice::from_ref(&x));
        gradgradcheck(|v| v[0].dropout(0.4, true).exp().mean(), &[x]);
    }
}
