//! The built-in ops, one family per file. Each file holds its ops' forward, backward, `Var`
//! methods and tests; composite ops (built from others, with no backward of their own) sit
//! beside the primitives they use.
//!
//! | file | ops |
//! | --- | --- |
//! | [`arith`] | add, sub, mul, div, neg, recip, affine (`x * 2.0`, `1.0 - x`) |
//! | [`unary`] | exp, ln, sqrt, abs, powf, powi, erf |
//! | [`activation`] | tanh, sigmoid, relu, gelu, gelu_tanh, softplus |
//! | [`compare`] | maximum, minimum, clamp, where, masked_fill |
//! | [`reduce`] | sum, mean, max, logsumexp (all or given axes), sum_to |
//! | [`shape`] | broadcast_to, reshape, transpose, permute, narrow, concat, stack, index_select |
//! | [`matmul`] | matmul (2-d, batched 3-d with broadcasting) |
//! | [`linear`] | matmul_bias (`x·W + b` fused, a dense layer's map) |
//! | [`softmax`] | softmax, log_softmax, cross_entropy (fused, integer targets) |
//! | [`attention`] | causal_attention (fused multi-head, from a packed q-k-v projection) |
//! | [`conv`] | conv2d (NCHW, stride, padding, fused per image; Winograd for 3×3 over ≥ 32 channels), im2col, col2im |
//! | [`pool`] | max_pool2d (with its scatter and gather adjoints), avg_pool2d, adaptive_avg_pool2d (with their adjoint) |
//! | [`dropout`] | dropout |
//! | [`norm`] | layer_norm, rms_norm (fused); group_norm (composed) |
//! | [`conv_transpose`] | conv_transpose2d (conv2d's input gradient as a layer) |
//! | [`batch_norm`] | batch_norm (fused, training mode: the batch's statistics per channel) |

pub mod activation;
pub mod arith;
pub mod attention;
pub mod batch_norm;
pub mod compare;
pub mod conv;
pub mod conv_transpose;
pub mod dropout;
pub mod linear;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod unary;

/// Every differentiable op pente provides, by the name it records on the tape (composite ops by
/// their method name). `tests/gradcheck.rs` fails if one of them has no gradient property test.
pub const REGISTRY: &[&str] = &[
    // arith
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "recip",
    "affine",
    // unary
    "exp",
    "ln",
    "sqrt",
    "abs",
    "powf",
    "powi",
    "erf",
    // activation
    "tanh",
    "sigmoid",
    "relu",
    "gelu",
    "gelu_tanh",
    "softplus",
    // compare
    "maximum",
    "minimum",
    "clamp",
    "where",
    "masked_fill",
    // reduce
    "sum",
    "mean",
    "max",
    "logsumexp",
    "sum_to",
    // shape
    "broadcast_to",
    "reshape",
    "transpose",
    "permute",
    "narrow",
    "pad",
    "concat",
    "stack",
    "index_select",
    "index_add",
    // matmul
    "matmul",
    // linear
    "matmul_bias",
    // softmax
    "softmax",
    "log_softmax",
    "cross_entropy",
    // attention
    "causal_attention",
    // conv
    "im2col",
    "col2im",
    "conv2d",
    // pool
    "max_pool2d",
    "max_pool2d_scatter",
    // dropout
    "dropout",
    // norm
    "layer_norm",
    "rms_norm",
    // checkpoint (Tape::checkpoint, in tape/checkpoint.rs)
    "checkpoint",
    // conv_transpose
    "conv_transpose2d",
    // pool (average)
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "avg_pool2d_adjoint",
    // batch_norm
    "batch_norm",
];

/// The ops of [`REGISTRY`] that are element-wise [`derivative`](crate::derivative) rules: their
/// plain and differentiable backwards are one rule (run on numbers and on `Var`s), so
/// `tests/gradcheck.rs` compares the two paths only for the other ops. An element-wise op left
/// out of this list is compared too, which costs time but checks nothing new.
pub const ELEMENTWISE: &[&str] = &[
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "recip",
    "affine",
    "exp",
    "ln",
    "sqrt",
    "abs",
    "powf",
    "powi",
    "erf",
    "tanh",
    "sigmoid",
    "relu",
    "gelu",
    "gelu_tanh",
    "softplus",
];

#[cfg(test)]
mod tests {
    use super::{ELEMENTWISE, REGISTRY};
    use crate::{Tape, Tensor};

    /// Each name in [`ELEMENTWISE`] is a registered op that some `Var` method records under
    /// that name.
    #[test]
    fn elementwise_ops_are_registered_and_derived() {
        for name in ELEMENTWISE {
            assert!(REGISTRY.contains(name), "{name} is not in the registry");
        }
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from(vec![0.5, 1.5]));
        let y = tape.var(Tensor::from(vec![2.0, 0.25]));
        let ops = [
            x + y,
            x - y,
            x * y,
            x / y,
            -x,
            x.recip(),
            x * 3.0 + 1.0,
            x.exp(),
            x.ln(),
            x.sqrt(),
            x.abs(),
            x.powf(1.5),
            x.powi(3),
            x.erf(),
            x.tanh(),
            x.sigmoid(),
            x.relu(),
            x.gelu(),
            x.gelu_tanh(),
            x.softplus(),
        ];
        let names: Vec<_> = ops.iter().map(|v| v.op_name()).collect();
        assert_eq!(names, ELEMENTWISE, "one op per name, in order");
    }
}
