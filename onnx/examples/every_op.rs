//! A graph that uses every op of autograd's registry that can appear in an inference graph,
//! each result a named output (`out_OP`), exported to `DIR/every_op.onnx` with its sample
//! inputs and pente's outputs in `DIR/every_op.test.safetensors`, for `scripts/onnx_check.py`
//! to run in onnxruntime:
//!
//! ```text
//! cargo run --release -p pente-onnx --example every_op -- DIR
//! ```
//!
//! `tests/registry.rs` includes this file and checks that the graph covers the registry.

use std::collections::BTreeMap;
use std::path::PathBuf;

use autograd::{Tape, Tensor, Var};
use nn::ParamStore;
use onnx::GraphSpec;

/// The sample inputs: name and value.
pub fn inputs() -> Vec<(&'static str, Tensor<f32>)> {
    let ramp = |n: usize, scale: f32, shift: f32| (0..n).map(|i| (i as f32 * 0.37).sin() * scale + shift).collect();
    vec![
        ("a", Tensor::from_vec(ramp(6, 1.5, 0.1), &[2, 3])),
        ("b", Tensor::from_vec(ramp(6, 0.4, 1.0), &[2, 3])), // positive: ln, sqrt, powf, div
        ("image", Tensor::from_vec(ramp(50, 1.0, 0.0), &[1, 2, 5, 5])),
        ("qkv", Tensor::from_vec(ramp(48, 0.8, 0.0), &[1, 4, 12])),
        ("w", Tensor::from_vec(ramp(54, 0.3, 0.0), &[3, 2, 3, 3])),
        ("bias", Tensor::from_vec(ramp(3, 0.2, 0.0), &[3])),
    ]
}

/// Every exportable op applied to the inputs (in the order of [`inputs`]), each result named
/// `out_` and the op's registry name.
pub fn every_op<'t>(v: &[Var<'t, f32>]) -> Vec<(String, Var<'t, f32>)> {
    let (a, b, image, qkv, w, bias) = (v[0], v[1], v[2], v[3], v[4], v[5]);
    let tape = a.tape();
    let g = tape.constant(Tensor::from_vec(vec![1.0, 0.5, 2.0], &[3]));
    let mask = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3]);
    let conv = image.conv2d_with_bias(w, bias, 1, 1); // (1, 3, 5, 5)
    let outs = [
        ("add", a + b),
        ("sub", a - b),
        ("mul", a * b),
        ("div", a / b),
        ("neg", -a),
        ("recip", b.recip()),
        ("affine", a.affine(1.5, -0.25)),
        ("exp", a.exp()),
        ("ln", b.ln()),
        ("sqrt", b.sqrt()),
        ("abs", a.abs()),
        ("powf", b.powf(1.7)),
        ("powi", a.powi(3)),
        ("erf", a.erf()),
        ("tanh", a.tanh()),
        ("sigmoid", a.sigmoid()),
        ("relu", a.relu()),
        ("gelu", a.gelu()),
        ("gelu_tanh", a.gelu_tanh()),
        ("softplus", (a * 4.0).softplus()),
        ("maximum", a.maximum(b)),
        ("minimum", a.minimum(b)),
        ("clamp", a.clamp(-0.5, 0.75)),
        ("where", a.where_cond(&mask, b)),
        ("masked_fill", a.masked_fill(&mask, -2.0)),
        ("sum", a.sum_axes(&[0], false)),
        ("mean", a.mean_axes(&[-1], true)),
        ("max", a.max()),
        ("logsumexp", a.logsumexp_axes(&[1], false)),
        ("sum_to", a.broadcast_to(&[4, 2, 3]).sum_to(&[2, 1])),
        ("broadcast_to", bias.broadcast_to(&[2, 3])),
        ("reshape", a.reshape(&[3, 2])),
        ("transpose", a.transpose(0, 1)),
        ("permute", image.permute(&[0, 2, 3, 1])),
        ("narrow", a.narrow(1, 1, 2)),
        ("pad", a.pad(1, 2, 1)),
        ("concat", Var::concat(&[a, b], 0)),
        ("stack", Var::stack(&[a, b], 1)),
        ("index_select", a.index_select(&[1, 0, 1, 1])),
        ("matmul", a.matmul(b.t())),
        ("matmul_bias", a.matmul_bias(b.t(), g.narrow(0, 0, 2))),
        ("softmax", a.softmax(0)),
        ("log_softmax", a.log_softmax(-1)),
        ("causal_attention", qkv.causal_attention(2)),
        ("conv2d", conv),
        ("max_pool2d", conv.max_pool2d(2, 2)),
        ("layer_norm", a.layer_norm(g, bias, 1e-5)),
        ("conv_transpose2d", conv.conv_transpose2d(w, 2, 1, 1)),
        ("avg_pool2d", conv.avg_pool2d(3, 2, 1)),
        ("adaptive_avg_pool2d", conv.adaptive_avg_pool2d((1, 1))),
        ("rms_norm", a.rms_norm(g, 1e-5)),
    ];
    outs.into_iter().map(|(op, v)| (format!("out_{op}"), v)).collect()
}

/// Traces [`every_op`] and describes its graph: every input a graph input.
pub fn trace(tape: &Tape<f32>) -> (GraphSpec, Vec<Tensor<f32>>) {
    let inputs = inputs();
    let vars: Vec<Var<'_, f32>> = inputs.iter().map(|(_, t)| tape.var(t.clone())).collect();
    let outs = every_op(&vars);
    let values = outs.iter().map(|(_, v)| v.value()).collect();
    let spec = GraphSpec {
        inputs: inputs.iter().zip(&vars).map(|((n, _), v)| (n.to_string(), v.id())).collect(),
        outputs: outs.iter().map(|(n, v)| (n.clone(), v.id())).collect(),
        ..Default::default()
    };
    (spec, values)
}

#[allow(dead_code)] // tests/registry.rs includes this file for the functions above
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: every_op DIR")?);
    std::fs::create_dir_all(&dir)?;
    let tape = Tape::<f32>::new();
    let (spec, values) = trace(&tape);
    let model = onnx::from_tape(&tape, &spec)?;
    onnx::save(&model, &dir.join("every_op.onnx"))?;
    let mut samples = ParamStore::<f32>::default();
    for ((name, _), t) in spec.inputs.iter().zip(inputs()) {
        samples.add(format!("input.{name}"), t.1);
    }
    for ((name, _), t) in spec.outputs.iter().zip(values) {
        samples.add(format!("output.{name}"), t);
    }
    nn::safetensors::export(&samples, dir.join("every_op.test.safetensors"), &BTreeMap::new())?;
    println!("wrote {} ({} outputs)", dir.join("every_op.onnx").display(), spec.outputs.len());
    Ok(())
}
