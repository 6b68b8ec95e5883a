//! The empty-tensor cases that used to panic, with their PyTorch results: a product over an
//! empty inner dim is zeros, an empty batch broadcast against a batch of 1 stays empty, and a
//! convolution of an empty batch has empty gradients for its input and zero ones for its
//! weight. `tests/gradcheck.rs` draws size-0 dims for every op; these pin the reported cases.

use autograd::{Tape, Tensor};

#[test]
fn product_over_an_empty_inner_dim_is_zeros_and_differentiates() {
    let tape = Tape::<f64>::new();
    let a = tape.var(Tensor::zeros(&[2, 0]));
    let b = tape.var(Tensor::zeros(&[0, 3]));
    let y = a.matmul(b);
    assert_eq!(y.shape().as_slice(), &[2, 3]);
    assert_eq!(y.value().to_vec(), vec![0.0; 6]);
    let grads = y.sum().backward();
    assert_eq!(grads[a].shape(), &[2, 0]);
    assert_eq!(grads[b].shape(), &[0, 3]);
    let g = tape.grad(y.sum(), &[a, b]);
    assert_eq!((g[0].shape().as_slice(), g[1].shape().as_slice()), (&[2usize, 0][..], &[0usize, 3][..]));
}

#[test]
fn empty_batch_broadcast_against_a_matrix_stays_empty() {
    let tape = Tape::<f64>::new();
    let a = tape.var(Tensor::zeros(&[0, 2, 3]));
    let b = tape.var(Tensor::from_vec((0..6).map(f64::from).collect(), &[3, 2]));
    let y = a.matmul(b);
    assert_eq!(y.shape().as_slice(), &[0, 2, 2]);
    let g = tape.grad(y.sum(), &[a, b]);
    assert_eq!(g[0].shape().as_slice(), &[0, 2, 3]);
    assert_eq!(g[1].value().to_vec(), vec![0.0; 6], "an empty sum of products is zero");
}

#[test]
fn conv2d_of_an_empty_batch_has_gradients() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::zeros(&[0, 1, 3, 3]));
    let w = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]));
    let y = x.conv2d(w, 1, 0);
    assert_eq!(y.shape().as_slice(), &[0, 1, 2, 2]);
    let g = tape.grad(y.sum(), &[x, w]);
    assert_eq!(g[0].shape().as_slice(), &[0, 1, 3, 3]);
    assert_eq!(g[1].value().to_vec(), vec![0.0; 4]);
    assert_eq!(y.sum().backward()[w].to_vec(), vec![0.0; 4]);
}

#[test]
#[should_panic(expected = "max: reduced dim 1 of shape [2, 0] has size 0")]
fn maximum_over_an_empty_dim_is_refused_as_in_pytorch() {
    let tape = Tape::<f64>::new();
    tape.var(Tensor::zeros(&[2, 0])).max_axes(&[1], false);
}

#[test]
fn maximum_along_a_non_empty_dim_of_an_empty_tensor_is_empty() {
    let tape = Tape::<f64>::new();
    let y = tape.var(Tensor::zeros(&[2, 0])).max_axes(&[0], false);
    assert_eq!(y.shape().as_slice(), &[0]);
}
