//! Loss functions, each reducing to a 0-d mean, and the [`accuracy`] metric.
//!
//! | function | definition (mean over samples) | PyTorch |
//! | --- | --- | --- |
//! | [`mse`] | `(pred − target)²` | `F.mse_loss` |
//! | [`cross_entropy`] | `−log softmax(logits)[target]` (fused, stable) | `F.cross_entropy` |
//! | [`cross_entropy_smoothed`] | `(1 − ε)·CE + ε·mean_c(−log softmax(logits)_c)` | `F.cross_entropy(label_smoothing=ε)` |
//! | [`nll`] | `−log_probs[target]` | `F.nll_loss` |
//! | [`binary_cross_entropy_with_logits`] | `max(x, 0) − x·z + ln(1 + e^−|x|)` | `F.binary_cross_entropy_with_logits` |
//!
//! ```
//! use autograd::{Tape, Tensor};
//! let tape = Tape::<f64>::new();
//! let logits = tape.var(Tensor::from_vec(vec![0.0, 0.0, 0.0, 0.0], &[2, 2]));
//! let loss = nn::loss::cross_entropy(logits, &[0, 1]);
//! assert!((loss.item() - 2f64.ln()).abs() < 1e-12); // uniform over 2 classes: ln 2
//! ```

use autograd::{shape_panic, Float, Tensor, Var};

/// Panics, naming the loss, both shapes and the caller's line, unless `a` and `b` have the same
/// shape: a loss that broadcast `(n, 1)` predictions against `(n)` targets would average an
/// `(n, n)` matrix of every pair and return a number that looks right and is not (PyTorch
/// raises for this). Broadcast explicitly (`target.reshape(..)`) where it is meant.
#[track_caller]
fn same_shape<T: Float>(op: &str, (a_name, a): (&str, Var<'_, T>), (b_name, b): (&str, Var<'_, T>)) {
    let (sa, sb) = (a.shape(), b.shape());
    if sa != sb {
        shape_panic(
            op,
            &format!(
                "{a_name} of shape {:?} and {b_name} of shape {:?} differ; losses do not broadcast \
                 (reshape one of them to the other's shape if that is what you mean)",
                sa.as_slice(),
                sb.as_slice()
            ),
        );
    }
}

/// Mean squared error, `mean((pred − target)²)`.
///
/// # Panics
/// If `pred` and `target` differ in shape (no broadcasting: see [`binary_cross_entropy_with_logits`]).
#[track_caller]
pub fn mse<'t, T: Float>(pred: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
    same_shape("mse", ("pred", pred), ("target", target));
    let d = pred - target;
    (d * d).mean()
}

/// Flattens `(…, classes)` logits to `(n, classes)` and checks the targets.
#[track_caller]
fn rows<'t, T: Float>(op: &str, logits: Var<'t, T>, targets: &[usize]) -> (Var<'t, T>, usize) {
    let shape = logits.shape();
    if shape.is_empty() {
        shape_panic(op, "logits are a scalar; expected (n, classes)");
    }
    let classes = shape[shape.len() - 1];
    let n: usize = shape[..shape.len() - 1].iter().product();
    if n != targets.len() {
        shape_panic(
            op,
            &format!("logits of shape {:?} hold {n} rows but {} targets were given", shape.as_slice(), targets.len()),
        );
    }
    if let Some(t) = targets.iter().find(|&&t| t >= classes) {
        shape_panic(op, &format!("target {t} out of range for {classes} classes"));
    }
    let logits = if shape.len() == 2 { logits } else { logits.reshape(&[n, classes]) };
    (logits, classes)
}

/// Cross-entropy of logits `(n, classes)` (or `(…, classes)`, flattened) against integer
/// targets, averaged over rows. Uses the tape's fused op: `log_softmax` and the gather in one
/// stable pass, with gradient `softmax(logits) − onehot(target)` per row.
///
/// # Panics
/// If the number of rows differs from `targets.len()` or a target is out of range.
#[track_caller]
pub fn cross_entropy<'t, T: Float>(logits: Var<'t, T>, targets: &[usize]) -> Var<'t, T> {
    let (logits, _) = rows("cross_entropy", logits, targets);
    logits.cross_entropy(targets)
}

/// Cross-entropy with label smoothing `eps` in `[0, 1]`: the target distribution puts `1 − eps`
/// on the target and spreads `eps` uniformly over all classes (PyTorch's definition). With
/// `eps = 0` this is [`cross_entropy`] (the fused op). A logit of −∞ gives +∞ (its class's
/// `−log p` enters the uniform part), as in PyTorch.
///
/// # Panics
/// As [`cross_entropy`], or if `eps` is outside `[0, 1]`.
#[track_caller]
pub fn cross_entropy_smoothed<'t, T: Float>(logits: Var<'t, T>, targets: &[usize], eps: f64) -> Var<'t, T> {
    assert!((0.0..=1.0).contains(&eps), "cross_entropy_smoothed: eps must be in [0, 1], got {eps}");
    if eps == 0.0 {
        return cross_entropy(logits, targets);
    }
    let (logits, classes) = rows("cross_entropy", logits, targets);
    let logp = logits.log_softmax(-1); // (n, classes)
    let hard = nll_rows(logp, targets, classes);
    let uniform = -logp.mean(); // mean over rows and classes of −log p
    hard * (1.0 - eps) + uniform * eps
}

/// Negative log-likelihood of `log_probs (n, classes)` (already log-softmaxed) against integer
/// targets, averaged over rows.
///
/// # Panics
/// If the number of rows differs from `targets.len()` or a target is out of range.
#[track_caller]
pub fn nll<'t, T: Float>(log_probs: Var<'t, T>, targets: &[usize]) -> Var<'t, T> {
    let (log_probs, classes) = rows("nll", log_probs, targets);
    nll_rows(log_probs, targets, classes)
}

#[track_caller]
fn nll_rows<'t, T: Float>(log_probs: Var<'t, T>, targets: &[usize], classes: usize) -> Var<'t, T> {
    // The target entries gathered (row i's at flat index i·classes + tᵢ), not picked by a
    // product with a one-hot matrix: that multiplied the other entries by 0, and 0·(−∞) is NaN
    // where a class has probability 0. The gradient scatters −1/n back to the gathered entries.
    let n = targets.len();
    let flat: Vec<usize> = targets.iter().enumerate().map(|(i, &t)| i * classes + t).collect();
    let picked = log_probs.reshape(&[n * classes, 1]).index_select(&flat);
    picked.sum() * (-1.0 / n.max(1) as f64)
}

/// Binary cross-entropy between `sigmoid(logits)` and targets `z` in `[0, 1]` of the same
/// shape, averaged, computed stably from the logits as `max(x, 0) − x·z + ln(1 + e^−|x|)`
/// (no overflow for any `x`).
///
/// # Panics
/// If `logits` and `targets` differ in shape. Losses never broadcast: `(4, 1)` logits against
/// `(4)` targets would otherwise average all 16 pairs (PyTorch raises for this too).
///
/// ```should_panic
/// use autograd::{Tape, Tensor};
/// let tape = Tape::<f64>::new();
/// let logits = tape.var(Tensor::from_vec(vec![5.0, -5.0, 5.0, -5.0], &[4, 1]));
/// let targets = tape.constant(Tensor::from(vec![1.0, 0.0, 1.0, 0.0]));
/// nn::loss::binary_cross_entropy_with_logits(logits, targets); // shapes [4, 1] and [4]
/// ```
#[track_caller]
pub fn binary_cross_entropy_with_logits<'t, T: Float>(logits: Var<'t, T>, targets: Var<'t, T>) -> Var<'t, T> {
    same_shape("binary_cross_entropy_with_logits", ("logits", logits), ("targets", targets));
    let x = logits;
    let abs = x.abs();
    let relu = (x + abs) * 0.5; // max(x, 0), written with abs to stay on the basic ops
    (relu - x * targets + ((-abs).exp() + 1.0).ln()).mean()
}

/// The fraction of rows of `logits (n, classes)` whose largest entry (the first, on ties) is
/// at the target index.
///
/// # Panics
/// If `logits` is not 2-d with `targets.len()` rows.
#[track_caller]
pub fn accuracy<T: Float>(logits: &Tensor<T>, targets: &[usize]) -> f64 {
    let shape = logits.shape();
    assert!(
        shape.len() == 2 && shape[0] == targets.len(),
        "accuracy: logits of shape {shape:?} for {} targets",
        targets.len()
    );
    if targets.is_empty() {
        return 0.0;
    }
    let classes = shape[1];
    let correct = logits.data().chunks(classes.max(1)).zip(targets).filter(|(row, &t)| argmax(row) == Some(t)).count();
    correct as f64 / targets.len() as f64
}

fn argmax<T: Float>(row: &[T]) -> Option<usize> {
    let mut best: Option<(usize, T)> = None;
    for (i, &v) in row.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::Tape;

    #[test]
    fn bce_with_logits_matches_the_naive_formula_and_survives_huge_logits() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from(vec![-2.0, 0.5, 3.0]));
        let z = tape.constant(Tensor::from(vec![0.0, 1.0, 1.0]));
        let naive: f64 = [(-2.0f64, 0.0f64), (0.5, 1.0), (3.0, 1.0)]
            .iter()
            .map(|&(x, z)| {
                let s = 1.0 / (1.0 + (-x).exp());
                -(z * s.ln() + (1.0 - z) * (1.0 - s).ln())
            })
            .sum::<f64>()
            / 3.0;
        assert!((binary_cross_entropy_with_logits(x, z).item() - naive).abs() < 1e-12);
        // The gradient is (sigmoid(x) − z) / n.
        let g = binary_cross_entropy_with_logits(x, z).backward();
        let s = 1.0 / (1.0 + 2f64.exp());
        assert!((g[x].data()[0] - s / 3.0).abs() < 1e-12);

        let big = tape.var(Tensor::from(vec![1000.0, -1000.0]));
        let zz = tape.constant(Tensor::from(vec![0.0, 1.0]));
        let l = binary_cross_entropy_with_logits(big, zz).item();
        assert!((l - 1000.0).abs() < 1e-9, "{l}"); // each term ≈ 1000
    }

    #[test]
    fn nll_picks_the_target_entries() {
        let tape = Tape::<f64>::new();
        let lp = tape.var(Tensor::from_vec(vec![-1.0, -2.0, -3.0, -4.0], &[2, 2]));
        let l = nll(lp, &[1, 0]); // (2 + 3) / 2
        assert_eq!(l.item(), 2.5);
        let g = l.backward();
        assert_eq!(g[lp].to_vec(), vec![0.0, -0.5, -0.5, 0.0]);
    }

    #[test]
    fn accuracy_counts_argmax_hits() {
        let logits = Tensor::from_vec(vec![1.0f32, 2.0, 5.0, 0.0, 3.0, 3.0], &[3, 2]);
        assert_eq!(accuracy(&logits, &[1, 0, 1]), 2.0 / 3.0); // tie → first index → miss
    }

    #[test]
    fn nll_and_smoothed_cross_entropy_survive_an_impossible_class() {
        // PyTorch: F.nll_loss(tensor([[-inf, 0.]]), tensor([1])) = 0 (grad [0, -1]);
        // F.cross_entropy(tensor([[-inf, 0.]]), tensor([1]), label_smoothing=0.1) = inf.
        let tape = Tape::<f64>::new();
        let lp = tape.var(Tensor::from_vec(vec![f64::NEG_INFINITY, 0.0], &[1, 2]));
        let l = nll(lp, &[1]);
        assert_eq!(l.item(), 0.0);
        assert_eq!(l.backward()[lp].to_vec(), vec![0.0, -1.0]);
        let logits = tape.var(Tensor::from_vec(vec![f64::NEG_INFINITY, 0.0], &[1, 2]));
        assert_eq!(cross_entropy_smoothed(logits, &[1], 0.1).item(), f64::INFINITY);
    }

    #[test]
    #[should_panic(expected = "mse: pred of shape [4, 1] and target of shape [4] differ")]
    fn mse_refuses_to_broadcast() {
        let tape = Tape::<f64>::new();
        let a = tape.var(Tensor::zeros(&[4, 1]));
        let b = tape.constant(Tensor::zeros(&[4]));
        mse(a, b);
    }

    #[test]
    fn a_loss_shape_error_names_the_callers_line() {
        let tape = Tape::<f64>::new();
        let a = tape.var(Tensor::zeros(&[4, 1]));
        let b = tape.constant(Tensor::zeros(&[4]));
        let line = line!() + 1;
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| binary_cross_entropy_with_logits(a, b)));
        let msg = *err.expect_err("shapes differ").downcast::<String>().unwrap();
        assert!(msg.contains(&format!("nn/src/loss.rs:{line}")), "{msg}");
    }

    #[test]
    fn mse_is_the_mean_square() {
        let tape = Tape::<f64>::new();
        let a = tape.var(Tensor::from(vec![1.0, 2.0]));
        let b = tape.constant(Tensor::from(vec![0.0, 4.0]));
        assert_eq!(mse(a, b).item(), 2.5); // (1 + 4) / 2
    }
}
