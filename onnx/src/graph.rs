//! Building an ONNX graph: fresh value names, nodes with their attributes, and initializers
//! (float32, int64 and bool tensors, stored as little-endian raw data).

use crate::proto::{attribute_proto, tensor_proto, AttributeProto, NodeProto, TensorProto};

/// The nodes and initializers of a graph under construction.
#[derive(Default)]
pub(crate) struct GraphBuilder {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    counter: usize,
}

impl GraphBuilder {
    /// A value name not used before, from `hint`.
    pub fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// Appends a node of `op` with one output, named from `hint`, and returns that name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>, hint: &str) -> String {
        let out = self.fresh(hint);
        self.node_into(op, inputs, attributes, &out);
        out
    }

    /// Appends a node of `op` whose one output is `out`.
    pub fn node_into(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>, out: &str) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.to_string()],
            name: Some(format!("{op}_{}", self.nodes.len())),
            op_type: Some(op.to_string()),
            attribute: attributes,
            ..Default::default()
        });
    }

    /// Adds a float32 initializer named `name`.
    pub fn initializer_f32(&mut self, name: &str, data: &[f32], dims: &[usize]) {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(tensor(name, tensor_proto::DataType::Float, dims, raw));
    }

    /// A float32 constant (a fresh initializer) and its name.
    pub fn const_f32(&mut self, hint: &str, data: &[f32], dims: &[usize]) -> String {
        let name = self.fresh(hint);
        self.initializer_f32(&name, data, dims);
        name
    }

    /// A float32 scalar constant.
    pub fn scalar(&mut self, hint: &str, v: f32) -> String {
        self.const_f32(hint, &[v], &[])
    }

    /// A 1-d int64 constant (shapes, axes, indices) and its name.
    pub fn const_i64(&mut self, hint: &str, data: &[i64]) -> String {
        let name = self.fresh(hint);
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(tensor(&name, tensor_proto::DataType::Int64, &[data.len()], raw));
        name
    }

    /// A bool constant of shape `dims` and its name.
    pub fn const_bool(&mut self, hint: &str, data: &[bool], dims: &[usize]) -> String {
        let name = self.fresh(hint);
        let raw = data.iter().map(|&b| u8::from(b)).collect();
        self.initializers.push(tensor(&name, tensor_proto::DataType::Bool, dims, raw));
        name
    }
}

fn tensor(name: &str, ty: tensor_proto::DataType, dims: &[usize], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(ty as i32),
        name: Some(name.to_string()),
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// An integer attribute.
pub(crate) fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(attribute_proto::AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

/// A list-of-integers attribute.
pub(crate) fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(attribute_proto::AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// A float attribute.
pub(crate) fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(attribute_proto::AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}
