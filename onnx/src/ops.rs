//! How each op of autograd's registry becomes ONNX nodes (opset 18): one node where ONNX has the
//! op, a few where it has not (GELU through `Erf`, softplus through `Exp`/`Log`, causal
//! attention through `MatMul`/`Where`/`Softmax` with a triangular mask).

use autograd::trace::{OpAttrs, TracedNode};
use autograd::Shape;

use crate::graph::{attr_float, attr_int, attr_ints, GraphBuilder};

/// The ops of the registry that cannot be exported, and why: they appear only in training.
pub const TRAINING_ONLY: &[(&str, &str)] = &[
    ("dropout", "dropout in training mode (bind the parameters with `.eval()` to trace an inference graph)"),
    ("cross_entropy", "a training loss with integer targets, not part of an inference graph"),
    ("index_add", "the adjoint of index_select, made by backward"),
    ("max_pool2d_scatter", "the adjoint of max_pool2d, made by backward"),
    ("im2col", "convolution's unfolding, used by its backward (conv2d exports as Conv)"),
    ("col2im", "convolution's folding, used by its backward (conv2d exports as Conv)"),
    ("checkpoint", "a segment recomputed in backward to save memory in training; its ops are not on the tape (trace without checkpointing)"),
    ("avg_pool2d_adjoint", "the adjoint of avg_pool2d and adaptive_avg_pool2d, made by backward"),
    ("batch_norm", "batch normalization with the batch's statistics (training mode); bind with `.eval()` to trace the running statistics as a scale and shift"),
];

/// What the op mapping needs of the node's inputs: their value names and shapes.
pub(crate) struct Inputs<'a> {
    pub names: &'a [String],
    pub shapes: &'a [Shape],
}

/// The name of an int64 graph input holding `ids`, when one was declared with those values
/// (an embedding lookup then reads the input instead of baking the ids in).
pub(crate) type IdsLookup<'a> = &'a dyn Fn(&[usize]) -> Option<String>;

/// Emits the nodes computing `node` from its inputs, the last one writing `out`; returns why
/// the op cannot be exported otherwise.
pub(crate) fn emit(
    b: &mut GraphBuilder,
    node: &TracedNode<f32>,
    inputs: &Inputs<'_>,
    ids_input: IdsLookup<'_>,
    out: &str,
) -> Result<(), String> {
    let name = node.name;
    let attrs = match &node.attrs {
        Some(a) => a,
        None => {
            return Err(match TRAINING_ONLY.iter().find(|(n, _)| *n == name) {
                Some((_, why)) => format!("it is training-only: {why}"),
                None => "the op does not describe its attributes (Op::attrs returns None), as custom ops do not \
                         unless they implement it"
                    .to_string(),
            })
        }
    };
    let x: Vec<&str> = inputs.names.iter().map(String::as_str).collect();
    let rank = |i: usize| inputs.shapes[i].len() as i64;
    let unary = |b: &mut GraphBuilder, op: &str| b.node_into(op, &[x[0]], vec![], out);
    match (name, attrs) {
        ("add", OpAttrs::Plain) => b.node_into("Add", &x, vec![], out),
        ("sub", OpAttrs::Plain) => b.node_into("Sub", &x, vec![], out),
        ("mul", OpAttrs::Plain) => b.node_into("Mul", &x, vec![], out),
        ("div", OpAttrs::Plain) => b.node_into("Div", &x, vec![], out),
        ("maximum", OpAttrs::Plain) => b.node_into("Max", &x, vec![], out),
        ("minimum", OpAttrs::Plain) => b.node_into("Min", &x, vec![], out),
        ("neg", OpAttrs::Plain) => unary(b, "Neg"),
        ("recip", OpAttrs::Plain) => unary(b, "Reciprocal"),
        ("exp", OpAttrs::Plain) => unary(b, "Exp"),
        ("ln", OpAttrs::Plain) => unary(b, "Log"),
        ("sqrt", OpAttrs::Plain) => unary(b, "Sqrt"),
        ("abs", OpAttrs::Plain) => unary(b, "Abs"),
        ("erf", OpAttrs::Plain) => unary(b, "Erf"),
        ("tanh", OpAttrs::Plain) => unary(b, "Tanh"),
        ("sigmoid", OpAttrs::Plain) => unary(b, "Sigmoid"),
        ("relu", OpAttrs::Plain) => unary(b, "Relu"),
        ("gelu", OpAttrs::Plain) => gelu(b, x[0], out),
        ("gelu_tanh", OpAttrs::Plain) => gelu_tanh(b, x[0], out),
        ("softplus", OpAttrs::Plain) => softplus(b, x[0], out),
        ("affine", &OpAttrs::Affine { scale, shift }) => {
            // As pente computes it: x·scale, x + shift, or x·scale + shift (never fused).
            if shift == 0.0 {
                let s = b.scalar("scale", scale as f32);
                b.node_into("Mul", &[x[0], &s], vec![], out);
            } else if scale == 1.0 {
                let c = b.scalar("shift", shift as f32);
                b.node_into("Add", &[x[0], &c], vec![], out);
            } else {
                let s = b.scalar("scale", scale as f32);
                let scaled = b.node("Mul", &[x[0], &s], vec![], "scaled");
                let c = b.scalar("shift", shift as f32);
                b.node_into("Add", &[&scaled, &c], vec![], out);
            }
        }
        ("powf", &OpAttrs::Powf(p)) => {
            let e = b.scalar("exponent", p as f32);
            b.node_into("Pow", &[x[0], &e], vec![], out);
        }
        ("powi", &OpAttrs::Powi(n)) => {
            let e = b.scalar("exponent", n as f32);
            b.node_into("Pow", &[x[0], &e], vec![], out);
        }
        ("clamp", &OpAttrs::Clamp { min, max }) => {
            let (lo, hi) = (b.scalar("min", min as f32), b.scalar("max", max as f32));
            b.node_into("Clip", &[x[0], &lo, &hi], vec![], out);
        }
        ("where", OpAttrs::Where { cond, shape }) => {
            let c = b.const_bool("cond", cond, shape);
            b.node_into("Where", &[&c, x[0], x[1]], vec![], out);
        }
        ("sum" | "max" | "logsumexp", OpAttrs::Reduce { axes, keepdim }) => {
            let op = match name {
                "sum" => "ReduceSum",
                "max" => "ReduceMax",
                _ => "ReduceLogSumExp",
            };
            if axes.is_empty() {
                // A reduction over no axis (a 0-d input) is the identity.
                unary(b, "Identity");
            } else {
                let a = b.const_i64("axes", &axes.iter().map(|&d| d as i64).collect::<Vec<_>>());
                b.node_into(op, &[x[0], &a], vec![attr_int("keepdims", i64::from(*keepdim))], out);
            }
        }
        ("sum_to", OpAttrs::SumTo { shape }) => {
            let from = &inputs.shapes[0];
            let lead = from.len() - shape.len();
            let axes: Vec<i64> = (0..from.len())
                .filter(|&d| d < lead || (shape[d - lead] == 1 && from[d] != 1))
                .map(|d| d as i64)
                .collect();
            let summed = if axes.is_empty() {
                x[0].to_string()
            } else {
                let a = b.const_i64("axes", &axes);
                b.node("ReduceSum", &[x[0], &a], vec![attr_int("keepdims", 1)], "summed")
            };
            let s = b.const_i64("shape", &dims(shape));
            b.node_into("Reshape", &[&summed, &s], vec![], out);
        }
        ("broadcast_to", OpAttrs::BroadcastTo { shape }) => {
            let s = b.const_i64("shape", &dims(shape));
            b.node_into("Expand", &[x[0], &s], vec![], out);
        }
        ("reshape", OpAttrs::Reshape { shape }) => {
            let s = b.const_i64("shape", &dims(shape));
            b.node_into("Reshape", &[x[0], &s], vec![], out);
        }
        ("transpose", &OpAttrs::Transpose { a, b: c }) => {
            let mut perm: Vec<i64> = (0..rank(0)).collect();
            perm.swap(a, c);
            b.node_into("Transpose", &[x[0]], vec![attr_ints("perm", &perm)], out);
        }
        ("permute", OpAttrs::Permute { perm }) => {
            b.node_into("Transpose", &[x[0]], vec![attr_ints("perm", &dims(perm))], out);
        }
        ("narrow", &OpAttrs::Narrow { axis, start, len }) => {
            let starts = b.const_i64("starts", &[start as i64]);
            let ends = b.const_i64("ends", &[(start + len) as i64]);
            let axes = b.const_i64("axes", &[axis as i64]);
            b.node_into("Slice", &[x[0], &starts, &ends, &axes], vec![], out);
        }
        ("pad", &OpAttrs::Pad { axis, before, after }) => {
            let r = rank(0) as usize;
            let mut pads = vec![0i64; 2 * r];
            pads[axis] = before as i64;
            pads[r + axis] = after as i64;
            let p = b.const_i64("pads", &pads);
            b.node_into("Pad", &[x[0], &p], vec![], out);
        }
        ("concat", &OpAttrs::Concat { axis }) => b.node_into("Concat", &x, vec![attr_int("axis", axis as i64)], out),
        ("index_select", OpAttrs::IndexSelect { ids }) => {
            let idx = match ids_input(ids) {
                Some(input) => input,
                None => b.const_i64("ids", &ids.iter().map(|&i| i as i64).collect::<Vec<_>>()),
            };
            b.node_into("Gather", &[x[0], &idx], vec![attr_int("axis", 0)], out);
        }
        ("matmul", &OpAttrs::MatMul { trans_lhs, trans_rhs }) => {
            let lhs = if trans_lhs { swap_last(b, x[0], rank(0)) } else { x[0].to_string() };
            let rhs = if trans_rhs { swap_last(b, x[1], rank(1)) } else { x[1].to_string() };
            b.node_into("MatMul", &[&lhs, &rhs], vec![], out);
        }
        ("matmul_bias", OpAttrs::Plain) => {
            let prod = b.node("MatMul", &[x[0], x[1]], vec![], "xw");
            b.node_into("Add", &[&prod, x[2]], vec![], out);
        }
        ("softmax", &OpAttrs::Softmax { axis }) => {
            b.node_into("Softmax", &[x[0]], vec![attr_int("axis", axis as i64)], out)
        }
        ("log_softmax", &OpAttrs::LogSoftmax { axis }) => {
            b.node_into("LogSoftmax", &[x[0]], vec![attr_int("axis", axis as i64)], out)
        }
        ("causal_attention", &OpAttrs::CausalAttention { n_head }) => {
            causal_attention(b, x[0], &inputs.shapes[0], n_head, out)
        }
        ("conv2d", &OpAttrs::Conv2d { stride, padding }) => {
            let w = &inputs.shapes[1];
            let (s, p) = (stride as i64, padding as i64);
            let attributes = vec![
                attr_ints("kernel_shape", &[w[2] as i64, w[3] as i64]),
                attr_ints("strides", &[s, s]),
                attr_ints("pads", &[p, p, p, p]),
            ];
            b.node_into("Conv", &x, attributes, out);
        }
        ("max_pool2d", &OpAttrs::MaxPool2d { kernel, stride }) => {
            let (k, s) = (kernel as i64, stride as i64);
            b.node_into(
                "MaxPool",
                &[x[0]],
                vec![attr_ints("kernel_shape", &[k, k]), attr_ints("strides", &[s, s])],
                out,
            );
        }
        ("layer_norm", &OpAttrs::LayerNorm { eps }) => {
            b.node_into("LayerNormalization", &x, vec![attr_int("axis", -1), attr_float("epsilon", eps as f32)], out)
        }
        ("conv_transpose2d", &OpAttrs::ConvTranspose2d { stride, padding, output_padding }) => {
            let w = &inputs.shapes[1];
            let (s, p, op) = (stride as i64, padding as i64, output_padding as i64);
            let attributes = vec![
                attr_ints("kernel_shape", &[w[2] as i64, w[3] as i64]),
                attr_ints("strides", &[s, s]),
                attr_ints("pads", &[p, p, p, p]),
                attr_ints("output_padding", &[op, op]),
            ];
            b.node_into("ConvTranspose", &x, attributes, out);
        }
        ("avg_pool2d", &OpAttrs::AvgPool2d { kernel, stride, padding }) => {
            let (k, s, p) = (kernel as i64, stride as i64, padding as i64);
            let attributes = vec![
                attr_ints("kernel_shape", &[k, k]),
                attr_ints("strides", &[s, s]),
                attr_ints("pads", &[p, p, p, p]),
                attr_int("count_include_pad", 1),
            ];
            b.node_into("AveragePool", &[x[0]], attributes, out);
        }
        ("adaptive_avg_pool2d", &OpAttrs::AdaptiveAvgPool2d { input: (h, w), output: (oh, ow) }) => {
            // ONNX has no adaptive pooling: sizes that divide evenly are an AveragePool of
            // equal windows (one window: GlobalAveragePool); others have windows of varying
            // sizes, which no ONNX pooling describes.
            if (oh, ow) == (1, 1) {
                b.node_into("GlobalAveragePool", &[x[0]], vec![], out);
            } else if h % oh == 0 && w % ow == 0 {
                let (kh, kw) = ((h / oh) as i64, (w / ow) as i64);
                let attributes = vec![attr_ints("kernel_shape", &[kh, kw]), attr_ints("strides", &[kh, kw])];
                b.node_into("AveragePool", &[x[0]], attributes, out);
            } else {
                return Err(format!(
                    "adaptive average pooling from {h}×{w} to {oh}×{ow} has windows of unequal sizes, which no ONNX \
                     pooling describes (export sizes that divide evenly)"
                ));
            }
        }
        ("rms_norm", &OpAttrs::RmsNorm { eps }) => rms_norm(b, x[0], x[1], eps, out),
        _ => return Err(format!("no ONNX mapping for this op with attributes {attrs:?}")),
    }
    Ok(())
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// `v` with its last two axes swapped.
fn swap_last(b: &mut GraphBuilder, v: &str, rank: i64) -> String {
    let mut perm: Vec<i64> = (0..rank).collect();
    perm.swap(rank as usize - 2, rank as usize - 1);
    b.node("Transpose", &[v], vec![attr_ints("perm", &perm)], "transposed")
}

/// `x·Φ(x) = x · ½(1 + erf(x/√2))` (ONNX's `Gelu` needs opset 20).
fn gelu(b: &mut GraphBuilder, x: &str, out: &str) {
    let sqrt2 = b.scalar("sqrt2", std::f32::consts::SQRT_2);
    let scaled = b.node("Div", &[x, &sqrt2], vec![], "gelu");
    let erf = b.node("Erf", &[&scaled], vec![], "gelu");
    let one = b.scalar("one", 1.0);
    let cdf2 = b.node("Add", &[&erf, &one], vec![], "gelu");
    let half = b.scalar("half", 0.5);
    let cdf = b.node("Mul", &[&cdf2, &half], vec![], "gelu");
    b.node_into("Mul", &[x, &cdf], vec![], out);
}

/// `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
fn gelu_tanh(b: &mut GraphBuilder, x: &str, out: &str) {
    let three = b.scalar("three", 3.0);
    let cube = b.node("Pow", &[x, &three], vec![], "gelu");
    let a = b.scalar("cubic", 0.044_715);
    let ax3 = b.node("Mul", &[&cube, &a], vec![], "gelu");
    let inner = b.node("Add", &[x, &ax3], vec![], "gelu");
    let k = b.scalar("k", 0.797_884_6);
    let arg = b.node("Mul", &[&inner, &k], vec![], "gelu");
    let t = b.node("Tanh", &[&arg], vec![], "gelu");
    let one = b.scalar("one", 1.0);
    let t1 = b.node("Add", &[&t, &one], vec![], "gelu");
    let half = b.scalar("half", 0.5);
    let hx = b.node("Mul", &[x, &half], vec![], "gelu");
    b.node_into("Mul", &[&hx, &t1], vec![], out);
}

/// `max(x, 0) + ln(1 + e^(−|x|))`, pente's overflow-free form.
fn softplus(b: &mut GraphBuilder, x: &str, out: &str) {
    let relu = b.node("Relu", &[x], vec![], "softplus");
    let abs = b.node("Abs", &[x], vec![], "softplus");
    let neg = b.node("Neg", &[&abs], vec![], "softplus");
    let e = b.node("Exp", &[&neg], vec![], "softplus");
    let one = b.scalar("one", 1.0);
    let e1 = b.node("Add", &[&e, &one], vec![], "softplus");
    let l = b.node("Log", &[&e1], vec![], "softplus");
    b.node_into("Add", &[&relu, &l], vec![], out);
}

/// Causal multi-head attention of a packed `qkv (b, t, 3c)`, as pente composes it: per head,
/// `softmax(mask(q·kᵀ/√d))·v` with the future masked to −10³⁰, heads merged back to `(b, t, c)`.
fn causal_attention(b: &mut GraphBuilder, qkv: &str, shape: &[usize], n_head: usize, out: &str) {
    let (bs, t, c) = (shape[0] as i64, shape[1] as i64, shape[2] as i64 / 3);
    let (h, d) = (n_head as i64, shape[2] as i64 / 3 / n_head as i64);
    let axes = b.const_i64("axes", &[2]);
    let heads = b.const_i64("heads_shape", &[bs, t, h, d]);
    let part = |b: &mut GraphBuilder, k: i64, perm: &[i64], hint: &str| {
        let starts = b.const_i64("starts", &[k * c]);
        let ends = b.const_i64("ends", &[(k + 1) * c]);
        let slice = b.node("Slice", &[qkv, &starts, &ends, &axes], vec![], hint);
        let split = b.node("Reshape", &[&slice, &heads], vec![], hint);
        b.node("Transpose", &[&split], vec![attr_ints("perm", perm)], hint)
    };
    let q = part(b, 0, &[0, 2, 1, 3], "q"); // (b, h, t, d)
    let k_t = part(b, 1, &[0, 2, 3, 1], "k"); // (b, h, d, t)
    let v = part(b, 2, &[0, 2, 1, 3], "v"); // (b, h, t, d)
    let scores = b.node("MatMul", &[&q, &k_t], vec![], "scores"); // (b, h, t, t)
    let scale = b.scalar("scale", (1.0 / (d as f64).sqrt()) as f32);
    let scaled = b.node("Mul", &[&scores, &scale], vec![], "scores");
    let t = t as usize;
    let future: Vec<bool> = (0..t * t).map(|i| i % t > i / t).collect();
    let mask = b.const_bool("causal_mask", &future, &[t, t]);
    let neg = b.scalar("masked", -1e30);
    let masked = b.node("Where", &[&mask, &neg, &scaled], vec![], "scores");
    let probs = b.node("Softmax", &[&masked], vec![attr_int("axis", -1)], "probs");
    let y = b.node("MatMul", &[&probs, &v], vec![], "attended"); // (b, h, t, d)
    let merged = b.node("Transpose", &[&y], vec![attr_ints("perm", &[0, 2, 1, 3])], "attended");
    let shape = b.const_i64("merged_shape", &[bs, t as i64, c]);
    b.node_into("Reshape", &[&merged, &shape], vec![], out);
}

/// `x / √(mean(x²) + eps) · w` over the last axis (ONNX's `RMSNormalization` needs opset 23).
fn rms_norm(b: &mut GraphBuilder, x: &str, w: &str, eps: f64, out: &str) {
    let sq = b.node("Mul", &[x, x], vec![], "rms_norm");
    let axes = b.const_i64("axes", &[-1]);
    let ms = b.node("ReduceMean", &[&sq, &axes], vec![attr_int("keepdims", 1)], "rms_norm");
    let e = b.scalar("epsilon", eps as f32);
    let shifted = b.node("Add", &[&ms, &e], vec![], "rms_norm");
    let rms = b.node("Sqrt", &[&shifted], vec![], "rms_norm");
    let normed = b.node("Div", &[x, &rms], vec![], "rms_norm");
    b.node_into("Mul", &[&normed, w], vec![], out);
}
