//! Every op of autograd's registry either exports (the graph of `examples/every_op.rs`, which
//! `scripts/onnx_check.py` runs in onnxruntime, records it) or is one of the training-only ops
//! that the export refuses by name.

#[path = "../examples/every_op.rs"]
mod every_op;

use std::collections::BTreeSet;

use autograd::ops::REGISTRY;
use autograd::Tape;

/// Registry names that are `Var` methods built from other ops (no node of their own).
const COMPOSITE: &[&str] = &["mean", "masked_fill", "stack"];

#[test]
fn every_registered_op_exports_or_is_refused_as_training_only() {
    let tape = Tape::<f32>::new();
    let (spec, _) = every_op::trace(&tape);
    let model = onnx::from_tape(&tape, &spec).expect("every op of the graph exports");
    assert_eq!(model.graph.as_ref().unwrap().output.len(), spec.outputs.len());
    let recorded: BTreeSet<&str> = tape.trace().iter().map(|n| n.name).collect();
    let named: BTreeSet<&str> = spec.outputs.iter().map(|(n, _)| n.strip_prefix("out_").unwrap()).collect();
    let training: BTreeSet<&str> = onnx::TRAINING_ONLY.iter().map(|(n, _)| *n).collect();
    for op in REGISTRY {
        let exported = recorded.contains(op) || (COMPOSITE.contains(op) && named.contains(op));
        assert!(
            exported != training.contains(op),
            "{op}: exported {exported}, training-only {}",
            training.contains(op)
        );
    }
    for op in &training {
        assert!(REGISTRY.contains(op), "{op} is not a registered op");
    }
}
