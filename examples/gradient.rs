//! The README's first example: a gradient, and the gradient of a gradient.
//! Run: `cargo run --example gradient`. Expected output: `2 15` then `12 12`.

use autograd::Tape;

fn main() {
    let tape = Tape::<f64>::new();
    let a = tape.var(3.0);
    let b = tape.var(2.0);
    let g = (a * b + b.powf(3.0)).relu(); // 3·2 + 2³ = 14
    let grads = g.backward();
    println!("{} {}", grads[a], grads[b]); // prints "2 15": dg/da = b, dg/db = a + 3b²

    // Gradients are themselves recorded, so they can be differentiated again:
    let x = tape.var(2.0);
    let dy = tape.grad(x.powi(3), &[x])[0]; // 3x² = 12
    let d2y = tape.grad(dy, &[x])[0]; // 6x  = 12
    println!("{} {}", dy, d2y); // prints "12 12"
}
