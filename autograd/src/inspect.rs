//! Looking inside a tape: a per-node summary (op, shape, inputs, source line), Graphviz DOT
//! export, and gradient norms per node.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! let tape = Tape::<f64>::new();
//! let w = tape.var(Tensor::from_vec(vec![0.5, -0.25], &[2]));
//! let loss = (w * w).sum();
//! println!("{}", tape.summary());               // one line per node
//! assert!(tape.to_dot().starts_with("digraph tape {"));
//! let grads = loss.backward();
//! let norms = tape.grad_norms(&grads);
//! assert_eq!(norms[0].name, "var");
//! assert!((norms[0].grad_norm - (1.0f64 + 0.25).sqrt()).abs() < 1e-12); // |2w|
//! ```

use std::fmt::{self, Write as _};
use std::panic::Location;

use crate::{Float, Grads, Shape, Tape};

/// One node as seen by [`Tape::nodes`].
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// Position on the tape.
    pub id: usize,
    /// The op's name (`"var"` and `"const"` for leaves).
    pub name: &'static str,
    /// The value's shape.
    pub shape: Shape,
    /// Ids of the inputs (empty for leaves and for nodes recorded without gradient).
    pub inputs: Vec<usize>,
    /// Whether a gradient can flow into the node.
    pub requires_grad: bool,
    /// The source line that created the node.
    pub location: &'static Location<'static>,
}

/// The gradient norm of one node, as reported by [`Tape::grad_norms`].
#[derive(Clone, Debug)]
pub struct GradNorm {
    /// Position on the tape.
    pub id: usize,
    /// The op's name.
    pub name: &'static str,
    /// The node's shape.
    pub shape: Shape,
    /// Euclidean norm of the gradient.
    pub grad_norm: f64,
    /// The source line that created the node.
    pub location: &'static Location<'static>,
}

/// A readable, one-line-per-node listing of a tape, returned by [`Tape::summary`].
pub struct Summary(Vec<NodeInfo>);

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:>5}  {:<14} {:<18} {:<14} location", "id", "op", "shape", "inputs")?;
        for n in &self.0 {
            let inputs = n.inputs.iter().map(|i| format!("%{i}")).collect::<Vec<_>>().join(",");
            let mark = if n.requires_grad { "" } else { " (no grad)" };
            writeln!(
                f,
                "{:>5}  {:<14} {:<18} {:<14} {}{mark}",
                format!("%{}", n.id),
                n.name,
                format!("{:?}", n.shape.as_slice()),
                inputs,
                n.location
            )?;
        }
        Ok(())
    }
}

impl<T: Float> Tape<T> {
    /// A description of every node, in creation order.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.with_nodes(|nodes| {
            nodes
                .iter()
                .enumerate()
                .map(|(id, n)| NodeInfo {
                    id,
                    name: n.name,
                    shape: Shape::from_slice(n.value.shape()),
                    inputs: n.inputs.to_vec(),
                    requires_grad: n.requires_grad,
                    location: n.location,
                })
                .collect()
        })
    }

    /// A table of every node: id, op, shape, inputs and source line. Print it with `{}`.
    pub fn summary(&self) -> Summary {
        Summary(self.nodes())
    }

    /// The graph in Graphviz DOT: one box per node labelled with op, shape and source line, an
    /// edge per input. Leaves that need a gradient are drawn green; constants grey.
    /// Render with `dot -Tsvg graph.dot > graph.svg`.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph tape {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
        for n in self.nodes() {
            let style = match (n.name, n.requires_grad) {
                ("var", _) => ", style=filled, fillcolor=\"#c8e6c9\"",
                (_, false) => ", style=filled, fillcolor=\"#eeeeee\"",
                _ => "",
            };
            let file = n.location.file().rsplit('/').next().unwrap_or("");
            let _ = writeln!(
                out,
                "  n{} [label=\"%{} {}\\n{:?}\\n{}:{}\"{style}];",
                n.id,
                n.id,
                n.name,
                n.shape.as_slice(),
                file,
                n.location.line()
            );
            for i in &n.inputs {
                let _ = writeln!(out, "  n{i} -> n{};", n.id);
            }
        }
        out.push_str("}\n");
        out
    }

    /// The norm of the gradient of every node that has one, in creation order: a quick way to
    /// spot vanishing or exploding gradients, and where they start.
    pub fn grad_norms(&self, grads: &Grads<T>) -> Vec<GradNorm> {
        self.with_nodes(|nodes| {
            grads
                .iter()
                .filter(|(id, _)| *id < nodes.len())
                .map(|(id, g)| GradNorm {
                    id,
                    name: nodes[id].name,
                    shape: Shape::from_slice(g.shape()),
                    grad_norm: g.norm(),
                    location: nodes[id].location,
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Tape, Tensor};

    #[test]
    fn summary_names_ops_shapes_and_lines() {
        let tape = Tape::<f32>::new();
        let x = tape.var(Tensor::zeros(&[2, 3]));
        let _y = (x * 2.0).sum();
        let text = tape.summary().to_string();
        assert!(text.contains("affine"), "{text}");
        assert!(text.contains("[2, 3]"), "{text}");
        assert!(text.contains("inspect.rs"), "{text}");
        assert_eq!(tape.nodes()[2].inputs, vec![1]);
    }

    #[test]
    fn dot_has_an_edge_per_input() {
        let tape = Tape::<f64>::new();
        let a = tape.var(1.0);
        let b = tape.var(2.0);
        let _ = a * b + a;
        let dot = tape.to_dot();
        assert_eq!(dot.matches("->").count(), 4, "{dot}");
    }
}
