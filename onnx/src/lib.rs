//! ONNX export of pente models: a forward pass traced on autograd's tape
//! ([`autograd::Tape::trace`]) and written as an ONNX graph (opset 18), with the weights as
//! initializers named by their parameter names and named inputs and outputs.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{Linear, ParamStore};
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let fc = Linear::new(store.scope("fc"), 3, 2);
//! let model = onnx::export(&store, &[("x", Tensor::zeros(&[1, 3]))], &[], |p, x| {
//!     vec![("y".to_string(), fc.forward(p, x[0]).tanh())]
//! })
//! .unwrap();
//! let text = onnx::inspect::describe(&model);
//! assert!(text.contains("x: float [1, 3]") && text.contains("fc.weight"), "{text}");
//! # let dir = tempfile::tempdir().unwrap();
//! onnx::save(&model, &dir.path().join("fc.onnx")).unwrap();
//! ```
//!
//! # The graph
//!
//! The graph is traced at the shapes of the sample inputs: the batch size (and the GPT's
//! sequence length) are fixed in it, as every `reshape` on the tape records its shape. Token
//! ids enter as int64 inputs ([`IdsInput`]). Dropout in evaluation mode is the identity and
//! leaves no node on the tape, so [`export`] traces with the parameters bound by `.eval()`.
//!
//! Every op of `autograd::ops::REGISTRY` that can appear in an inference graph maps to ONNX
//! ops: element-wise arithmetic and functions, `powf`/`powi` (`Pow`), `clamp` (`Clip`),
//! `where`/`masked_fill` (`Where` with a constant bool condition), `maximum`/`minimum`, the
//! reductions (`ReduceSum`, `ReduceMax`, `ReduceLogSumExp`; `mean` is a sum and a scale),
//! `sum_to`, every shape op (`Expand`, `Reshape`, `Transpose`, `Slice`, `Pad`, `Concat`,
//! `Gather`), `matmul` and `matmul_bias`, `softmax`/`log_softmax`, `conv2d` (`Conv`),
//! `max_pool2d` (`MaxPool`), `layer_norm` (`LayerNormalization`), `conv_transpose2d`
//! (`ConvTranspose`), `avg_pool2d` (`AveragePool`) and `adaptive_avg_pool2d` (`GlobalAveragePool`,
//! or `AveragePool` when the sizes divide evenly; other sizes fail). Where ONNX has no single
//! op the export decomposes: `gelu` through `Erf` (ONNX's `Gelu` needs opset 20), `gelu_tanh`
//! through `Tanh`, `softplus` as `max(x, 0) + ln(1 + e^(−|x|))`, and `causal_attention` through
//! `Slice`, `MatMul`, `Where` with a triangular mask and `Softmax`, and `rms_norm` as
//! `x / √(mean(x²) + ε) · w` (ONNX's `RMSNormalization` needs opset 23).
//!
//! These cannot be exported, and the export fails naming them ([`Error::Unsupported`]): the
//! training-only ops `dropout` (in training mode), `cross_entropy`, and the adjoints that only
//! backward makes, `index_add`, `max_pool2d_scatter`, `avg_pool2d_adjoint`, `im2col` and `col2im`, and `checkpoint`
//! (a training-time recomputation whose ops are not on the tape) ([`TRAINING_ONLY`]);
//! and any custom op whose [`autograd::Op::attrs`] returns `None` (the default).
//!
//! # The schema
//!
//! The ONNX messages (`proto.rs`) are generated once by `prost-build` from the ONNX schema
//! vendored in `onnx/proto/onnx.proto` (ONNX 1.23.2, Apache-2.0, its license beside it) and
//! checked in: pente's build then needs only the small `prost` runtime, not `prost-build` and
//! a protobuf compiler (protox) at every build. `cargo run --manifest-path onnx/regen/Cargo.toml`
//! regenerates it.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod export;
mod graph;
pub mod inspect;
mod ops;
/// The ONNX protobuf messages, generated from `onnx/proto/onnx.proto` by prost-build.
#[allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all)]
pub mod proto;

pub use error::Error;
pub use export::{export, from_tape, load, save, GraphSpec, IdsInput, IR_VERSION, OPSET};
pub use ops::TRAINING_ONLY;
pub use proto::ModelProto;
