//! `Tape::checkpoint`: the same values and gradients as the uncheckpointed computation, to the
//! bit (dropout included), second order included, with only the inputs and output kept.

use autograd::{Float, Tape, Tensor, Var};

/// Deterministic values in [-1, 1) for a tensor of `shape`.
fn values<T: Float>(shape: &[usize], salt: u64) -> Tensor<T> {
    let n: usize = shape.iter().product();
    let data = (0..n as u64)
        .map(|i| {
            let h = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
            T::from_f64(((h >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0)
        })
        .collect();
    Tensor::from_vec(data, shape)
}

/// One residual layer with dropout: `x + dropout(tanh(x·w + b))·0.5`, `x` used twice.
fn layer<'t, T: Float>(v: &[Var<'t, T>]) -> Var<'t, T> {
    let (x, w, b) = (v[0], v[1], v[2]);
    x + (x.matmul(w) + b).tanh().dropout(0.25, true) * 0.5
}

/// Three layers, the middle ones checkpointed when `checkpointed`, with dropout also outside
/// the segments (so the random stream must continue after a segment as it would without it);
/// returns the loss, the input and the parameters.
#[allow(clippy::type_complexity)]
fn network<T: Float>(tape: &Tape<T>, checkpointed: bool) -> (Var<'_, T>, Var<'_, T>, Vec<Var<'_, T>>) {
    let x = tape.var(values::<T>(&[6, 8], 1));
    let params: Vec<Var<'_, T>> =
        (0..3).flat_map(|l| [tape.var(values::<T>(&[8, 8], 10 + l)), tape.var(values::<T>(&[8], 20 + l))]).collect();
    let mut h = x.dropout(0.1, true);
    for l in 0..3 {
        let inputs = [h, params[2 * l], params[2 * l + 1]];
        h = if checkpointed && l > 0 { tape.checkpoint(&inputs, layer) } else { layer(&inputs) };
    }
    let loss = (h.dropout(0.2, true) * h).sum();
    (loss, x, params)
}

fn assert_bits_equal<T: Float>(a: &Tensor<T>, b: &Tensor<T>, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    for (i, (x, y)) in a.data().iter().zip(b.data()).enumerate() {
        assert!(x.to_f64().to_bits() == y.to_f64().to_bits(), "{what}[{i}]: {x:?} checkpointed vs {y:?} plain");
    }
}

fn gradients_are_bit_identical<T: Float>() {
    let (ckpt_tape, plain_tape) = (Tape::<T>::with_seed(42), Tape::<T>::with_seed(42));
    let (ckpt_loss, cx, cp) = network(&ckpt_tape, true);
    let (plain_loss, px, pp) = network(&plain_tape, false);
    assert_eq!(ckpt_loss.item().to_f64().to_bits(), plain_loss.item().to_f64().to_bits(), "loss");
    let (cg, pg) = (ckpt_loss.backward(), plain_loss.backward());
    assert_bits_equal(&cg[cx], &pg[px], "input gradient");
    for (i, (c, p)) in cp.iter().zip(&pp).enumerate() {
        assert_bits_equal(&cg[*c], &pg[*p], &format!("parameter {i} gradient"));
    }
    // Dropout really dropped something, and the stream after the segments matched: a later
    // draw on both tapes is the same.
    assert!(pg[px].data().iter().any(|g| g.to_f64() == 0.0), "the input's dropout zeroed some gradients");
    let after = |t: &Tape<T>| t.var(Tensor::<T>::ones(&[64])).dropout(0.5, true).value();
    assert_eq!(after(&ckpt_tape), after(&plain_tape));
}

#[test]
fn checkpointed_gradients_are_bit_identical_in_f64() {
    gradients_are_bit_identical::<f64>();
}

#[test]
fn checkpointed_gradients_are_bit_identical_in_f32() {
    gradients_are_bit_identical::<f32>();
}

#[test]
fn second_order_through_a_checkpoint_matches() {
    // d/dθ of ‖∂L/∂x‖²: a gradient of a gradient that flows through both segments.
    let second = |checkpointed: bool| {
        let tape = Tape::<f64>::with_seed(9);
        let (loss, x, params) = network(&tape, checkpointed);
        let gx = tape.grad(loss, &[x])[0];
        let penalty = (gx * gx).sum();
        let mut wrt = vec![x];
        wrt.extend(&params);
        let grads: Vec<Tensor<f64>> = tape.grad(penalty, &wrt).iter().map(|g| g.value()).collect();
        (penalty.item(), grads)
    };
    let (ckpt, plain) = (second(true), second(false));
    assert_eq!(ckpt.0.to_bits(), plain.0.to_bits(), "the first-order gradient");
    // The recomputed nodes sit later on the tape than the originals, so the second sweep sums
    // some contributions in another order: equal up to rounding, not to the bit.
    for (c, p) in ckpt.1.iter().zip(&plain.1) {
        autograd::check::assert_close(c, p, 1e-12, 1e-12);
    }
    assert!(plain.1[1].data().iter().any(|&g| g != 0.0), "the penalty depends on the parameters");
}

#[test]
fn a_checkpoint_keeps_only_its_inputs_and_output() {
    let tape = Tape::<f32>::new();
    let (x, w, b) =
        (tape.var(values::<f32>(&[4, 8], 1)), tape.var(values::<f32>(&[8, 8], 2)), tape.var(values::<f32>(&[8], 3)));
    let before = tape.len();
    let y = tape.checkpoint(&[x, w, b], layer);
    assert_eq!(tape.len(), before + 1, "one node for the whole segment");
    assert_eq!(y.op_name(), "checkpoint");
    let loss = y.sum();
    let grads = loss.backward();
    assert_eq!(tape.len(), before + 2, "the recomputation left nothing on the tape");
    assert!(grads.get(w).is_some() && grads.get(b).is_some());
}

#[test]
fn a_constant_input_gets_no_gradient_and_no_grad_records_no_op() {
    let tape = Tape::<f64>::new();
    let x = tape.var(values::<f64>(&[3, 8], 1));
    let w = tape.constant(values::<f64>(&[8, 8], 2));
    let b = tape.var(values::<f64>(&[8], 3));
    let grads = tape.checkpoint(&[x, w, b], layer).sum().backward();
    assert!(grads.get(w).is_none());
    assert!(grads.get(x).is_some());
    let y = tape.no_grad(|| tape.checkpoint(&[x, w, b], layer));
    assert!(!y.requires_grad());
}

#[test]
fn an_input_given_twice_gets_its_whole_gradient_once() {
    // f(a, b) = a·b with a = b = x: d/dx x² = 2x.
    for differentiable in [false, true] {
        let tape = Tape::<f64>::new();
        let x = tape.var(3.0);
        let y = tape.checkpoint(&[x, x], |v| v[0] * v[1]);
        let g = if differentiable { tape.grad(y, &[x])[0].item() } else { y.backward()[x].item() };
        assert_eq!(g, 6.0);
    }
}

#[test]
#[should_panic(expected = "checkpoint: the segment has no inputs; pass the Vars it depends on")]
fn a_segment_without_inputs_is_refused() {
    let tape = Tape::<f64>::new();
    tape.checkpoint(&[], |v| v[0]);
}

#[test]
#[should_panic(
    expected = "checkpoint: the segment gave an output of shape [2] when run again in backward, [1] the first time"
)]
fn a_segment_whose_shape_changes_on_recomputation_is_an_error() {
    // A segment that depends on something other than its inputs (here a counter) cannot be
    // recomputed: its gradient would be wrong, so backward refuses it.
    let runs = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from(vec![1.0, 2.0, 3.0]));
    let counter = runs.clone();
    let y = tape.checkpoint(&[x], move |v| {
        counter.set(counter.get() + 1);
        v[0].narrow(0, 0, counter.get())
    });
    y.sum().backward();
}

/// [`network`] with its input carrying a tangent (forward mode): the loss and every tangent,
/// of the loss and of the gradients (forward over reverse), through the checkpointed segments.
fn tangents_of(checkpointed: bool) -> (Tensor<f64>, Tensor<f64>, Vec<Tensor<f64>>) {
    let tape = Tape::<f64>::with_seed(42);
    let x = tape.dual(values::<f64>(&[6, 8], 1), values::<f64>(&[6, 8], 2));
    let params: Vec<Var<'_, f64>> = (0..3)
        .flat_map(|l| [tape.var(values::<f64>(&[8, 8], 10 + l)), tape.var(values::<f64>(&[8], 20 + l))])
        .collect();
    let mut h = x.dropout(0.1, true);
    for l in 0..3 {
        let inputs = [h, params[2 * l], params[2 * l + 1]];
        h = if checkpointed && l > 0 { tape.checkpoint(&inputs, layer) } else { layer(&inputs) };
    }
    let loss = (h.dropout(0.2, true) * h).sum();
    let tangent = loss.tangent().expect("the loss carries a tangent").value();
    let grads = tape.grad(loss, &params);
    let hvps = grads.iter().map(|g| g.tangent().expect("a gradient carries a tangent").value()).collect();
    (loss.value(), tangent, hvps)
}

#[test]
fn forward_mode_through_a_checkpoint_gives_the_same_tangents_to_the_bit() {
    let (ckpt_loss, ckpt_tangent, ckpt_hvps) = tangents_of(true);
    let (plain_loss, plain_tangent, plain_hvps) = tangents_of(false);
    assert_bits_equal(&ckpt_loss, &plain_loss, "loss");
    assert_bits_equal(&ckpt_tangent, &plain_tangent, "the loss's tangent");
    assert!(plain_tangent.item() != 0.0, "the tangent is not trivially zero");
    for (i, (c, p)) in ckpt_hvps.iter().zip(&plain_hvps).enumerate() {
        // Forward over reverse through a recomputation on the tape: the same rules, but the
        // recomputed nodes sit later on the tape, so sums may round in another order.
        for (k, (a, b)) in c.data().iter().zip(p.data()).enumerate() {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "parameter {i}'s gradient tangent [{k}]: {a} vs {b}");
        }
    }
}
