//! From a traced forward pass to an ONNX model: which nodes are inputs, parameters and
//! outputs, the walk from the outputs back to them, and the model's header (opset, names).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use autograd::trace::TracedNode;
use autograd::{Tape, Tensor, Var};
use nn::{Bound, ParamStore};
use prost::Message;

use crate::graph::GraphBuilder;
use crate::ops::{self, Inputs};
use crate::proto::{
    tensor_proto, tensor_shape_proto, type_proto, GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::Error;

/// The ONNX operator set the graphs use (`LayerNormalization` needs 17, axes as inputs of
/// every `Reduce*` op 18).
pub const OPSET: i64 = 18;
/// The ONNX IR version written (the one that goes with opset 18).
pub const IR_VERSION: i64 = 8;

/// An int64 input of token ids: an embedding lookup (`index_select`) whose ids are exactly
/// `ids` reads them from this input instead of baking them into the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct IdsInput {
    /// The input's name in the graph.
    pub name: String,
    /// Its shape, e.g. `(batch, seq_len)`.
    pub shape: Vec<usize>,
    /// The ids the forward pass was traced with, row-major.
    pub ids: Vec<usize>,
}

/// Which nodes of a tape are the graph's inputs, parameters and outputs, for [`from_tape`].
#[derive(Clone, Debug, Default)]
pub struct GraphSpec {
    /// Float inputs: name and node id (trace them as [`Tape::var`]s, so that every node
    /// depending on them is recorded).
    pub inputs: Vec<(String, usize)>,
    /// Token-id inputs.
    pub ids: Vec<IdsInput>,
    /// Parameters: node id and name, written as initializers under that name.
    pub params: Vec<(usize, String)>,
    /// Outputs: name and node id.
    pub outputs: Vec<(String, usize)>,
    /// Key-value metadata of the model (e.g. an input normalization).
    pub metadata: Vec<(String, String)>,
}

/// Traces `forward` on a fresh tape in evaluation mode and exports it: `inputs` are the float
/// inputs (name and a sample value, whose shape fixes the graph's), `ids` the token-id inputs;
/// `forward` gets the bound parameters and the inputs as `Var`s (in order) and returns the
/// named outputs. Every parameter the outputs depend on becomes an initializer named as in the
/// store.
///
/// ```
/// use autograd::Tensor;
/// use nn::{Activation, Mlp, ParamStore};
/// let mut store = ParamStore::<f32>::with_seed(0);
/// let mlp = Mlp::new(store.scope("mlp"), &[2, 8, 3], Activation::Relu);
/// let model = onnx::export(&store, &[("x", Tensor::zeros(&[4, 2]))], &[], |p, x| {
///     vec![("logits".to_string(), mlp.forward(p, x[0]))]
/// })
/// .unwrap();
/// let graph = model.graph.as_ref().unwrap();
/// assert_eq!(graph.initializer.iter().filter(|t| t.name().starts_with("mlp.")).count(), 4);
/// ```
///
/// # Errors
/// [`Error::Unsupported`] naming the first op without an ONNX form, [`Error::NonFinite`] for a
/// non-finite weight, [`Error::Graph`] for outputs that are not on the tape.
pub fn export<F>(
    store: &ParamStore<f32>,
    inputs: &[(&str, Tensor<f32>)],
    ids: &[IdsInput],
    forward: F,
) -> Result<ModelProto, Error>
where
    F: for<'t> FnOnce(&Bound<'t, f32>, &[Var<'t, f32>]) -> Vec<(String, Var<'t, f32>)>,
{
    let tape = Tape::<f32>::new();
    let p = store.bind(&tape).eval();
    let xs: Vec<Var<'_, f32>> = inputs.iter().map(|(_, t)| tape.var(t.clone())).collect();
    let outs = forward(&p, &xs);
    let spec = GraphSpec {
        inputs: inputs.iter().zip(&xs).map(|((n, _), v)| (n.to_string(), v.id())).collect(),
        ids: ids.to_vec(),
        // Lifting a parameter the forward did not use adds a node nothing depends on.
        params: store.iter().map(|(id, name, _)| (p.get(id).id(), name.to_string())).collect(),
        outputs: outs.iter().map(|(n, v)| (n.clone(), v.id())).collect(),
        metadata: Vec::new(),
    };
    from_tape(&tape, &spec)
}

/// Exports the part of `tape` that computes `spec.outputs` from `spec.inputs` and
/// `spec.params`. A node computed from constants alone (a mask, a constant leaf) becomes an
/// initializer holding its value.
///
/// # Errors
/// As [`export`].
pub fn from_tape(tape: &Tape<f32>, spec: &GraphSpec) -> Result<ModelProto, Error> {
    let trace = tape.trace();
    let check_id = |id: usize, what: &str| {
        if id < trace.len() {
            Ok(())
        } else {
            Err(Error::Graph(format!("{what} is node %{id}, but the tape has {} nodes", trace.len())))
        }
    };
    let mut names: HashMap<usize, String> = HashMap::new();
    let mut taken: BTreeMap<String, &str> = BTreeMap::new();
    let mut claim = |name: &str, what: &'static str| match taken.insert(name.to_string(), what) {
        Some(before) => Err(Error::Graph(format!("the name {name:?} is given to {before} and to {what}"))),
        None => Ok(()),
    };
    for (name, id) in &spec.inputs {
        check_id(*id, &format!("input {name:?}"))?;
        claim(name, "an input")?;
        names.insert(*id, name.clone());
    }
    for ids in &spec.ids {
        claim(&ids.name, "an ids input")?;
        if ids.shape.iter().product::<usize>() != ids.ids.len() {
            return Err(Error::Graph(format!(
                "ids input {:?} of shape {:?} holds {} ids",
                ids.name,
                ids.shape,
                ids.ids.len()
            )));
        }
    }
    let mut is_param = HashMap::new();
    for (id, name) in &spec.params {
        check_id(*id, &format!("parameter {name:?}"))?;
        if !names.contains_key(id) {
            claim(name, "a parameter")?;
            names.insert(*id, name.clone());
            is_param.insert(*id, name.clone());
        }
    }
    for (name, id) in &spec.outputs {
        check_id(*id, &format!("output {name:?}"))?;
        claim(name, "an output")?;
    }
    if spec.outputs.is_empty() {
        return Err(Error::Graph("no output to export".into()));
    }

    // The nodes the outputs need, found by walking back from them.
    let mut needed = vec![false; trace.len()];
    let mut stack: Vec<usize> = spec.outputs.iter().map(|(_, id)| *id).collect();
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut needed[id], true) || names.contains_key(&id) {
            continue;
        }
        stack.extend(&trace[id].inputs);
    }

    let mut b = GraphBuilder::default();
    // An ids input is flattened once, as index_select's ids are.
    let mut flat_ids: Vec<(IdsInput, String)> = Vec::new();
    for ids in &spec.ids {
        let shape = b.const_i64("ids_shape", &[ids.ids.len() as i64]);
        let flat = b.node("Reshape", &[&ids.name, &shape], vec![], "ids");
        flat_ids.push((ids.clone(), flat));
    }
    let lookup = |want: &[usize]| flat_ids.iter().find(|(i, _)| i.ids == want).map(|(_, n)| n.clone());
    let mut used_params = Vec::new();
    for node in trace.iter().filter(|n| needed[n.id]) {
        if let Some(name) = is_param.get(&node.id) {
            check_finite(node, &format!("parameter {name:?}"))?;
            b.initializer_f32(name, node.value.data(), node.value.shape());
            used_params.push(name.clone());
            continue;
        }
        if names.contains_key(&node.id) {
            continue; // a graph input
        }
        let out = format!("n{}", node.id);
        if !node.recorded {
            if node.name == "var" {
                return Err(Error::Graph(format!(
                    "node %{} (a var made at {}) is neither an input nor a parameter",
                    node.id, node.location
                )));
            }
            // A constant, or a value computed from constants alone.
            check_finite(
                node,
                &format!("the constant node %{} (`{}`, made at {})", node.id, node.name, node.location),
            )?;
            b.initializer_f32(&out, node.value.data(), node.value.shape());
        } else {
            let in_names: Vec<String> = node.inputs.iter().map(|i| value_name(&names, *i)).collect();
            let in_shapes: Vec<_> = node.inputs.iter().map(|&i| trace[i].shape.clone()).collect();
            ops::emit(&mut b, node, &Inputs { names: &in_names, shapes: &in_shapes }, &lookup, &out).map_err(
                |reason| Error::Unsupported {
                    op: node.name.to_string(),
                    id: node.id,
                    location: node.location.to_string(),
                    reason,
                },
            )?;
        }
        names.insert(node.id, out);
    }
    for (name, id) in &spec.outputs {
        let from = value_name(&names, *id);
        b.node_into("Identity", &[&from], vec![], name);
    }

    let float = tensor_proto::DataType::Float as i32;
    let graph = GraphProto {
        name: Some("pente".into()),
        node: b.nodes,
        initializer: b.initializers,
        input: spec
            .inputs
            .iter()
            .map(|(n, id)| value_info(n, float, trace[*id].shape.as_slice()))
            .chain(spec.ids.iter().map(|i| value_info(&i.name, tensor_proto::DataType::Int64 as i32, &i.shape)))
            .collect(),
        output: spec.outputs.iter().map(|(n, id)| value_info(n, float, trace[*id].shape.as_slice())).collect(),
        ..Default::default()
    };
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        producer_name: Some("pente".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        metadata_props: spec
            .metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: Some(k.clone()), value: Some(v.clone()) })
            .collect(),
        ..Default::default()
    })
}

/// The name of node `id`'s value: its input or parameter name, or `n{id}`.
fn value_name(names: &HashMap<usize, String>, id: usize) -> String {
    names.get(&id).cloned().unwrap_or_else(|| format!("n{id}"))
}

fn check_finite(node: &TracedNode<f32>, what: &str) -> Result<(), Error> {
    if node.value.data().iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Error::NonFinite { what: what.to_string() })
    }
}

/// A float or int64 tensor's type, with a fixed shape.
fn value_info(name: &str, elem_type: i32, shape: &[usize]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d as i64)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Writes `model` to `path` through [`nn::checkpoint::atomic`]: the old file, if any, stays
/// whole until the new one is complete.
///
/// # Errors
/// [`Error::Save`] naming the path.
pub fn save(model: &ModelProto, path: &Path) -> Result<(), Error> {
    nn::checkpoint::atomic::write_atomic(path, &model.encode_to_vec())?;
    Ok(())
}

/// Reads an ONNX model from `path`.
///
/// # Errors
/// [`Error::Read`] if the file cannot be read, [`Error::Decode`] if it is not an ONNX model.
pub fn load(path: &Path) -> Result<ModelProto, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
    let model = ModelProto::decode(bytes.as_slice())
        .map_err(|e| Error::Decode { path: path.to_path_buf(), reason: e.to_string() })?;
    if model.graph.is_none() {
        return Err(Error::Decode { path: path.to_path_buf(), reason: "it has no graph".into() });
    }
    Ok(model)
}
