//! Looking inside a computation: the graph summary, a Graphviz DOT export, per-node gradient
//! norms, a gradient hook that clips, `detach` and `no_grad`, and anomaly mode catching a NaN
//! at the line of user code that made it.
//!
//! Run: `cargo run --example inspect_gradients`. Expected: a node table, the DOT text's first
//! lines, gradient norms, the clipped gradient 1.0, and the anomaly report naming `ln` and this
//! file's line.

use autograd::{Tape, Tensor};

fn main() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.1, -0.3, 0.7], &[2, 3]));
    let w = tape.var(Tensor::from_vec(vec![0.2, -0.4, 0.6], &[3, 1]));
    let h = x.matmul(w).tanh(); // (2, 1)
    let loss = (h * h).mean();

    println!("== graph summary ==\n{}", tape.summary());
    let dot = tape.to_dot();
    println!("== DOT (first 4 lines of {}) ==", dot.lines().count());
    dot.lines().take(4).for_each(|l| println!("{l}"));

    let grads = loss.backward();
    println!("== gradient norms ==");
    for n in tape.grad_norms(&grads) {
        println!(
            "%{:<3} {:<8} {:<8} |g| = {:.6}  ({})",
            n.id,
            n.name,
            format!("{:?}", n.shape.as_slice()),
            n.grad_norm,
            n.location
        );
    }

    // A hook that clips the gradient flowing through `h` to norm 1, and logs what it saw.
    let tape = Tape::<f64>::new();
    let a = tape.var(3.0);
    let h = a * 10.0;
    h.register_hook(|g| {
        println!("hook saw gradient {g}");
        (g.value().norm() > 1.0).then(|| g / g.abs())
    });
    let grads = (h * h).backward();
    println!("clipped dL/dh = {}, so dL/da = {}", grads[h], grads[a]);

    // detach and no_grad: gradients stop where you say.
    let b = tape.var(2.0);
    let stopped = b.detach() * b; // only the second factor carries a gradient
    println!("d(detach(b)·b)/db = {}", stopped.backward()[b]);
    let frozen = tape.no_grad(|| b * b);
    println!("no_grad result requires grad: {}", frozen.requires_grad());

    // Anomaly mode: the first non-finite value stops the program at the op and line that made it.
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let y = tape.var(Tensor::from_vec(vec![1.0, -1.0], &[2]));
    // (The default panic hook would print the message too; silence it while we catch it.)
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.ln().sum()));
    std::panic::set_hook(default_hook);
    match report {
        Err(e) => println!("anomaly mode caught: {}", e.downcast_ref::<String>().map_or("?", |s| s.as_str())),
        Ok(_) => println!("no anomaly?"),
    }
}
