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
//! | [`pool`] | max_pool2d (with its scatter and gather adjoints) |
//! | [`dropout`] | dropout |
//! | [`norm`] | layer_norm (fused) |

pub mod activation;
pub mod arith;
pub mod attention;
pub mod compare;
pub mod conv;
pub mod dropout;
pub mod linear;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod softmax;
mod tile;
pub mod unary;
mod winograd;

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
];
