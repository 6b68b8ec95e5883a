//! The README's training loop: an MLP learns XOR-like quadrants, then is saved.
//! Run: `cargo run --release --example training_loop`. Expected: the loss falls from about 1.0
//! to below 0.01 within 50 steps, and `xor.ckpt` is written to the temporary directory.

use autograd::Tensor;
use nn::{loss, Activation, Adam, AdamConfig, Checkpoint, Mlp, Optimizer, ParamStore};

fn main() -> nn::Result<()> {
    let x = Tensor::from_vec(vec![1.0f32, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0, 1.0], &[4, 2]);
    let y = Tensor::from_vec(vec![1.0f32, 1.0, -1.0, -1.0], &[4, 1]); // sign(x0·x1)

    let mut store = ParamStore::<f32>::with_seed(0);
    let mlp = Mlp::new(store.scope("mlp"), &[2, 16, 1], Activation::Tanh);
    let mut opt = Adam::new(AdamConfig { lr: 0.05, ..Default::default() });

    for step in 0..200 {
        let (loss, grads) = store.value_and_grad(step, |p| {
            let tape = p.tape();
            loss::mse(mlp.forward(p, tape.constant(x.clone())), tape.constant(y.clone()))
        });
        opt.step(&mut store, &grads);
        if step % 50 == 0 || step == 199 {
            println!("step {step:>3}  loss {loss:.4}");
        }
    }
    let path = std::env::temp_dir().join("xor.ckpt");
    Checkpoint::from_store(&store).with_step(200).save(&path)?;
    println!("saved {}", path.display());
    Ok(())
}
