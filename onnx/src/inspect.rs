//! A readable summary of an ONNX model: its inputs and outputs with their types and shapes,
//! the ops with their counts, and the initializers with their shapes (what `pente inspect
//! model.onnx` prints).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::proto::{tensor_proto, tensor_shape_proto::dimension, type_proto, ModelProto, ValueInfoProto};

/// The summary of `model`, one section per part, ending in a newline.
pub fn describe(model: &ModelProto) -> String {
    let mut out = String::new();
    let opsets: Vec<String> = model
        .opset_import
        .iter()
        .map(|o| format!("{}{}", if o.domain().is_empty() { "ai.onnx" } else { o.domain() }, o.version()))
        .map(|s| s.replacen("ai.onnx", "opset ", 1))
        .collect();
    let _ = writeln!(
        out,
        "ONNX model: IR version {}, {}, produced by {} {}",
        model.ir_version(),
        opsets.join(", "),
        model.producer_name(),
        model.producer_version()
    );
    for p in &model.metadata_props {
        let _ = writeln!(out, "  metadata {} = {}", p.key(), p.value());
    }
    let Some(graph) = &model.graph else {
        out.push_str("no graph\n");
        return out;
    };
    let _ = writeln!(out, "inputs:");
    for v in &graph.input {
        let _ = writeln!(out, "  {}", value(v));
    }
    let _ = writeln!(out, "outputs:");
    for v in &graph.output {
        let _ = writeln!(out, "  {}", value(v));
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &graph.node {
        *counts.entry(n.op_type()).or_default() += 1;
    }
    let _ = writeln!(out, "ops ({} nodes):", graph.node.len());
    for (op, n) in &counts {
        let _ = writeln!(out, "  {op:<20} {n}");
    }
    let total: i64 = graph.initializer.iter().map(|t| t.dims.iter().product::<i64>()).sum();
    let _ = writeln!(out, "initializers ({}, {total} values):", graph.initializer.len());
    for t in &graph.initializer {
        let ty = tensor_proto::DataType::try_from(t.data_type()).map_or("?", |d| d.as_str_name());
        let _ = writeln!(out, "  {:<28} {:<8} {:?}", t.name(), ty.to_lowercase(), t.dims);
    }
    out
}

/// `name: float [2, 3]`.
fn value(v: &ValueInfoProto) -> String {
    let ty = v.r#type.as_ref().and_then(|t| t.value.as_ref());
    match ty {
        Some(type_proto::Value::TensorType(t)) => {
            let elem = tensor_proto::DataType::try_from(t.elem_type()).map_or("?", |d| d.as_str_name());
            let dims: Vec<String> = t
                .shape
                .iter()
                .flat_map(|s| &s.dim)
                .map(|d| match &d.value {
                    Some(dimension::Value::DimValue(n)) => n.to_string(),
                    Some(dimension::Value::DimParam(p)) => p.clone(),
                    None => "?".into(),
                })
                .collect();
            format!("{}: {} [{}]", v.name(), elem.to_lowercase(), dims.join(", "))
        }
        _ => format!("{}: (not a tensor)", v.name()),
    }
}
