//! A read-only view of a recorded graph, for exporters: each node's op name, inputs, shape,
//! value and the op's attributes ([`OpAttrs`]: a transpose's axes, a reshape's shape, a
//! convolution's stride and padding, …).
//!
//! A tape records a node's op and inputs only when a gradient can flow through it, so trace a
//! forward pass whose inputs and parameters are [`Tape::var`]s: every node that depends on them
//! is then recorded with its op. A node computed from constants alone has no op in the trace
//! ([`TracedNode::attrs`] is `None` and [`TracedNode::recorded`] false): it is a constant whose
//! [`TracedNode::value`] is all an exporter needs.
//!
//! autograd knows nothing of file formats: this module only describes the graph; an ONNX writer
//! lives in its own crate.
//!
//! ```
//! use autograd::trace::OpAttrs;
//! use autograd::{Tape, Tensor};
//! let tape = Tape::<f32>::new();
//! let x = tape.var(Tensor::zeros(&[2, 3]));
//! let y = x.transpose(0, 1).relu();
//! let graph = tape.trace();
//! assert_eq!(graph[y.id()].name, "relu");
//! assert_eq!(graph[y.id()].attrs, Some(OpAttrs::Plain));
//! assert_eq!(graph[1].attrs, Some(OpAttrs::Transpose { a: 0, b: 1 }));
//! assert_eq!(graph[1].inputs, vec![x.id()]);
//! ```

use crate::{Float, Shape, Tape, Tensor};

/// What an exporter needs to know of an op besides its name, its inputs and its output's shape:
/// returned by [`Op::attrs`](crate::Op::attrs). Axes are non-negative (already normalized).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum OpAttrs {
    /// Name and inputs say everything (`add`, `relu`, `matmul_bias`, `maximum`, …).
    Plain,
    /// `scale · x + shift`.
    Affine {
        /// The factor.
        scale: f64,
        /// The offset.
        shift: f64,
    },
    /// `xᵖ` for a real constant `p`.
    Powf(f64),
    /// `xⁿ` for an integer constant `n`.
    Powi(i32),
    /// `min(max(x, min), max)`.
    Clamp {
        /// The lower bound.
        min: f64,
        /// The upper bound.
        max: f64,
    },
    /// `cond ? a : b` for a condition that is data, not an input.
    Where {
        /// The condition, row-major.
        cond: Vec<bool>,
        /// Its shape (it broadcasts against the inputs).
        shape: Shape,
    },
    /// A reduction (`sum`, `max`, `logsumexp`) over `axes`.
    Reduce {
        /// The reduced axes of the input, in increasing order.
        axes: Vec<usize>,
        /// Whether the reduced axes stay as size 1.
        keepdim: bool,
    },
    /// Summed down to `shape` (the adjoint of broadcasting).
    SumTo {
        /// The output's shape.
        shape: Shape,
    },
    /// Broadcast to `shape`.
    BroadcastTo {
        /// The output's shape.
        shape: Shape,
    },
    /// Reshaped to `shape`.
    Reshape {
        /// The output's shape.
        shape: Shape,
    },
    /// Axes `a` and `b` swapped.
    Transpose {
        /// One axis.
        a: usize,
        /// The other.
        b: usize,
    },
    /// Output axis `d` is input axis `perm[d]`.
    Permute {
        /// The permutation.
        perm: Shape,
    },
    /// `len` entries of `axis` from `start`.
    Narrow {
        /// The axis.
        axis: usize,
        /// The first entry kept.
        start: usize,
        /// How many are kept.
        len: usize,
    },
    /// Zeros added before and after `axis`.
    Pad {
        /// The axis.
        axis: usize,
        /// Zeros before.
        before: usize,
        /// Zeros after.
        after: usize,
    },
    /// The inputs joined along `axis`.
    Concat {
        /// The axis.
        axis: usize,
    },
    /// Rows of axis 0 gathered by `ids` (an embedding lookup).
    IndexSelect {
        /// The row ids, in output order.
        ids: Vec<usize>,
    },
    /// A (batched) matrix product of the inputs, each transposed in its last two axes when its
    /// flag is set.
    MatMul {
        /// Whether the left operand is transposed.
        trans_lhs: bool,
        /// Whether the right operand is transposed.
        trans_rhs: bool,
    },
    /// Softmax along `axis`.
    Softmax {
        /// The axis.
        axis: usize,
    },
    /// Log-softmax along `axis`.
    LogSoftmax {
        /// The axis.
        axis: usize,
    },
    /// Causal multi-head self-attention of a packed `(batch, seq_len, 3·n_embd)` projection.
    CausalAttention {
        /// The number of heads.
        n_head: usize,
    },
    /// A 2-d convolution, NCHW, square stride and zero padding (inputs: x, weight, optional bias).
    Conv2d {
        /// The stride on both axes.
        stride: usize,
        /// Zeros on each side of both axes.
        padding: usize,
    },
    /// 2-d max pooling, NCHW, square window.
    MaxPool2d {
        /// The window's side.
        kernel: usize,
        /// The stride on both axes.
        stride: usize,
    },
    /// Layer normalization over the last axis (inputs: x, weight, bias).
    LayerNorm {
        /// Added to the variance.
        eps: f64,
    },
    /// A transposed 2-d convolution, NCHW, square stride and zero padding (inputs: x, weight
    /// (C_in, C_out, kh, kw), optional bias).
    ConvTranspose2d {
        /// The stride on both axes.
        stride: usize,
        /// Zeros removed from each side of both output axes.
        padding: usize,
        /// Rows and columns added at the bottom and right of the output.
        output_padding: usize,
    },
    /// 2-d average pooling, NCHW, square window, zeros counted in the average.
    AvgPool2d {
        /// The window's side.
        kernel: usize,
        /// The stride on both axes.
        stride: usize,
        /// Zeros on each side of both axes.
        padding: usize,
    },
    /// 2-d adaptive average pooling, NCHW: `output` rows and columns from `input` ones.
    AdaptiveAvgPool2d {
        /// The input's (H, W).
        input: (usize, usize),
        /// The output's (H, W).
        output: (usize, usize),
    },
    /// RMS normalization over the last axis (inputs: x, weight).
    RmsNorm {
        /// Added to the mean square.
        eps: f64,
    },
}

/// One node of a [`Tape::trace`].
#[derive(Clone, Debug)]
pub struct TracedNode<T: Float> {
    /// Position on the tape.
    pub id: usize,
    /// The op's name (`"var"` and `"const"` for leaves).
    pub name: &'static str,
    /// Ids of the inputs, in the op's order (empty for leaves and for nodes that were not
    /// recorded).
    pub inputs: Vec<usize>,
    /// The output's shape.
    pub shape: Shape,
    /// The forward value (shares its data with the tape's).
    pub value: Tensor<T>,
    /// Whether the op was recorded (the node depends on a `var`); leaves and nodes computed
    /// from constants alone are not.
    pub recorded: bool,
    /// The op's attributes, `None` for leaves, for nodes that were not recorded and for ops
    /// that do not describe themselves (training-only ops, custom ops).
    pub attrs: Option<OpAttrs>,
    /// The source line that created the node.
    pub location: &'static std::panic::Location<'static>,
}

impl<T: Float> Tape<T> {
    /// Every node with its op's name, inputs, shape, value and attributes, in creation order
    /// (a topological order); see the [module docs](crate::trace).
    pub fn trace(&self) -> Vec<TracedNode<T>> {
        self.with_nodes(|nodes| {
            nodes
                .iter()
                .enumerate()
                .map(|(id, n)| TracedNode {
                    id,
                    name: n.name,
                    inputs: n.inputs.to_vec(),
                    shape: Shape::from_slice(n.value.shape()),
                    value: n.value.clone(),
                    recorded: n.op.is_some(),
                    attrs: n.op.as_ref().and_then(|op| op.attrs()),
                    location: n.location,
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OpAttrs;
    use crate::{Shape, Tape, Tensor};

    fn attrs_of(f: impl for<'t> Fn(crate::Var<'t, f32>) -> crate::Var<'t, f32>, shape: &[usize]) -> Option<OpAttrs> {
        let tape = Tape::<f32>::new();
        let x =
            tape.var(Tensor::from_vec((0..shape.iter().product::<usize>()).map(|i| i as f32 + 1.0).collect(), shape));
        let y = f(x);
        tape.trace()[y.id()].attrs.clone()
    }

    #[test]
    fn shape_ops_describe_their_axes_and_shapes() {
        assert_eq!(
            attrs_of(|x| x.reshape(&[3, 2]), &[2, 3]),
            Some(OpAttrs::Reshape { shape: Shape::from_slice(&[3, 2]) })
        );
        assert_eq!(attrs_of(|x| x.transpose(-1, 0), &[2, 3]), Some(OpAttrs::Transpose { a: 0, b: 1 }));
        assert_eq!(
            attrs_of(|x| x.permute(&[2, 0, 1]), &[2, 3, 4]),
            Some(OpAttrs::Permute { perm: Shape::from_slice(&[2, 0, 1]) })
        );
        assert_eq!(attrs_of(|x| x.narrow(-1, 1, 2), &[2, 3]), Some(OpAttrs::Narrow { axis: 1, start: 1, len: 2 }));
        assert_eq!(attrs_of(|x| x.pad(0, 1, 2), &[2, 3]), Some(OpAttrs::Pad { axis: 0, before: 1, after: 2 }));
        assert_eq!(
            attrs_of(|x| x.index_select(&[1, 0, 1]), &[2, 3]),
            Some(OpAttrs::IndexSelect { ids: vec![1, 0, 1] })
        );
        assert_eq!(
            attrs_of(|x| x.broadcast_to(&[4, 2, 3]), &[2, 3]),
            Some(OpAttrs::BroadcastTo { shape: Shape::from_slice(&[4, 2, 3]) })
        );
    }

    #[test]
    fn numeric_attributes_are_the_ones_given() {
        assert_eq!(attrs_of(|x| x.affine(2.0, 1.0), &[2]), Some(OpAttrs::Affine { scale: 2.0, shift: 1.0 }));
        assert_eq!(attrs_of(|x| x.powf(1.5), &[2]), Some(OpAttrs::Powf(1.5)));
        assert_eq!(attrs_of(|x| x.powi(3), &[2]), Some(OpAttrs::Powi(3)));
        assert_eq!(attrs_of(|x| x.clamp(-1.0, 0.5), &[2]), Some(OpAttrs::Clamp { min: -1.0, max: 0.5 }));
        assert_eq!(attrs_of(|x| x.softmax(-1), &[2, 3]), Some(OpAttrs::Softmax { axis: 1 }));
        assert_eq!(attrs_of(|x| x.log_softmax(0), &[2, 3]), Some(OpAttrs::LogSoftmax { axis: 0 }));
        assert_eq!(
            attrs_of(|x| x.sum_axes(&[-1], true), &[2, 3]),
            Some(OpAttrs::Reduce { axes: vec![1], keepdim: true })
        );
        assert_eq!(attrs_of(|x| x.max_pool2d(2, 2), &[1, 1, 4, 4]), Some(OpAttrs::MaxPool2d { kernel: 2, stride: 2 }));
        assert_eq!(attrs_of(|x| x.causal_attention(2), &[1, 3, 12]), Some(OpAttrs::CausalAttention { n_head: 2 }));
        let mask = Tensor::from_vec(vec![1.0, 0.0], &[2]);
        assert_eq!(
            attrs_of(move |x| x.where_cond(&mask, x * 2.0), &[2]),
            Some(OpAttrs::Where { cond: vec![true, false], shape: Shape::from_slice(&[2]) })
        );
    }

    #[test]
    fn layers_ops_describe_themselves() {
        let tape = Tape::<f32>::new();
        let x = tape.var(Tensor::zeros(&[1, 1, 4, 4]));
        let w = tape.var(Tensor::zeros(&[2, 1, 3, 3]));
        let b = tape.var(Tensor::zeros(&[2]));
        let conv = x.conv2d_with_bias(w, b, 1, 1);
        let rows = tape.var(Tensor::zeros(&[2, 3]));
        let (g, beta) = (tape.var(Tensor::ones(&[3])), tape.var(Tensor::zeros(&[3])));
        let ln = rows.layer_norm(g, beta, 1e-5);
        let mm = rows.matmul(g.reshape(&[3, 1]));
        let graph = tape.trace();
        assert_eq!(graph[conv.id()].attrs, Some(OpAttrs::Conv2d { stride: 1, padding: 1 }));
        assert_eq!(graph[conv.id()].inputs, vec![x.id(), w.id(), b.id()]);
        assert_eq!(graph[ln.id()].attrs, Some(OpAttrs::LayerNorm { eps: 1e-5 }));
        assert_eq!(graph[mm.id()].attrs, Some(OpAttrs::MatMul { trans_lhs: false, trans_rhs: false }));
    }

    #[test]
    fn training_only_ops_and_unrecorded_nodes_have_no_attributes() {
        let tape = Tape::<f32>::new();
        let x = tape.var(Tensor::ones(&[2, 3]));
        let dropped = x.dropout(0.5, true);
        let loss = x.cross_entropy(&[0, 2]);
        let c = tape.constant(Tensor::ones(&[2])).exp(); // constants only: not recorded
        let graph = tape.trace();
        assert_eq!(graph[dropped.id()].attrs, None);
        assert_eq!(graph[loss.id()].attrs, None);
        assert!(graph[loss.id()].recorded);
        assert!(!graph[c.id()].recorded && graph[c.id()].inputs.is_empty());
        assert_eq!(graph[c.id()].value.data(), &[std::f32::consts::E; 2]);
    }
}
