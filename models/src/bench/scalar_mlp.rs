//! The scalar-mlp workload of `pente bench`: an MLP 2→16→16→1 built from 0-d tensors (one node per scalar
//! operation, as in micrograd), tanh hidden layers, mean squared error over 100 fixed points,
//! full-batch SGD. Points and initial weights come from the 64-bit LCG of
//! `bench/reference/workload_data.py`, drawn in the same order, so the losses match.

use autograd::{Tape, Var};

/// The 64-bit LCG (Knuth's MMIX constants) of the reference scripts: floats in [0, 1).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next float in [0, 1): the top 53 bits of the next state.
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Per layer: (weights, one row of `n_in` per neuron; biases).
pub type Layers = Vec<(Vec<Vec<f64>>, Vec<f64>)>;

/// One layer lifted onto a tape: its weight rows and biases as scalar nodes.
type LiftedLayer<'t> = (Vec<Vec<Var<'t, f64>>>, Vec<Var<'t, f64>>);

/// The 100 points, their ±1 labels, and the initial weights, drawn as the reference does:
/// points from `Lcg(42)`, weights from `Lcg(7)` layer by layer, neuron by neuron, weights then
/// bias, all uniform in [-1, 1).
pub fn problem() -> (Vec<[f64; 2]>, Vec<f64>, Layers) {
    let mut g = Lcg(42);
    let (mut xs, mut ys) = (vec![], vec![]);
    for _ in 0..100 {
        let (x0, x1) = (2.0 * g.next_f64() - 1.0, 2.0 * g.next_f64() - 1.0);
        xs.push([x0, x1]);
        ys.push(if x0 * x1 > 0.0 { 1.0 } else { -1.0 });
    }
    let mut g = Lcg(7);
    let sizes = [2usize, 16, 16, 1];
    let layers = sizes
        .windows(2)
        .map(|w| {
            let (n_in, n_out) = (w[0], w[1]);
            let mut weights = vec![];
            let mut biases = vec![];
            for _ in 0..n_out {
                weights.push((0..n_in).map(|_| 2.0 * g.next_f64() - 1.0).collect());
                biases.push(2.0 * g.next_f64() - 1.0);
            }
            (weights, biases)
        })
        .collect();
    (xs, ys, layers)
}

/// One full-batch SGD step on the scalar graph; returns the loss before the update.
pub fn step(tape: &mut Tape<f64>, xs: &[[f64; 2]], ys: &[f64], params: &mut Layers, lr: f64) -> f64 {
    tape.reset();
    let tape = &*tape;
    let lifted: Vec<LiftedLayer<'_>> = params
        .iter()
        .map(|(w, b)| {
            (
                w.iter().map(|row| row.iter().map(|&v| tape.var(v)).collect()).collect(),
                b.iter().map(|&v| tape.var(v)).collect(),
            )
        })
        .collect();
    let last = lifted.len() - 1;
    let mut loss: Option<Var<'_, f64>> = None;
    for (x, &y) in xs.iter().zip(ys) {
        let mut h: Vec<Var<'_, f64>> = vec![tape.constant(x[0]), tape.constant(x[1])];
        for (li, (w, b)) in lifted.iter().enumerate() {
            h = w
                .iter()
                .zip(b)
                .map(|(row, &bias)| {
                    let pre = row.iter().zip(&h).fold(bias, |acc, (&wi, &hi)| acc + wi * hi);
                    if li < last {
                        pre.tanh()
                    } else {
                        pre
                    }
                })
                .collect();
        }
        let err = (h[0] - y).powi(2);
        loss = Some(match loss {
            None => err,
            Some(l) => l + err,
        });
    }
    let loss = loss.expect("at least one point") * (1.0 / xs.len() as f64);
    let grads = loss.backward();
    for ((w, b), (wv, bv)) in params.iter_mut().zip(&lifted) {
        for (row, rowv) in w.iter_mut().zip(wv) {
            for (p, &v) in row.iter_mut().zip(rowv) {
                *p -= lr * grads[v].item();
            }
        }
        for (p, &v) in b.iter_mut().zip(bv) {
            *p -= lr * grads[v].item();
        }
    }
    loss.item()
}
