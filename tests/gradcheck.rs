//! Every differentiable op against central finite differences, with proptest drawing shapes
//! (0-d, size-1 and broadcast dims included) and values (kept away from kinks).
//!
//! One row per op (or per op and axis choice) in [`rows`]; `every_registered_op_has_a_row` fails
//! if an op of `autograd::ops::REGISTRY` has none, so coverage cannot silently drop. Smooth ops
//! are checked to second order as well (the gradient of the gradient, through `Tape::grad`).

use autograd::check::{check_gradients, check_jvp, check_second_order, Tolerance};
use autograd::ops::{ELEMENTWISE, REGISTRY};
use autograd::{Tensor, Var};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases per row for the first-order check, and for the second-order check of smooth ops.
const FIRST_ORDER_CASES: u32 = 64;
const SECOND_ORDER_CASES: u32 = 32;
/// Cases per row for the forward-mode tangent check.
const TANGENT_CASES: u32 = 32;

type Inputs = Vec<Tensor<f64>>;
type Build = Box<dyn for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>>;
/// Which inputs an op refuses, and what its panic message must contain.
type Refusal = (fn(&Inputs) -> bool, &'static str);

/// One property: an op applied to random inputs.
struct Row {
    op: &'static str,
    inputs: BoxedStrategy<Inputs>,
    f: Build,
    second_order: bool,
    /// The empty inputs the op refuses, as PyTorch does (the maximum of nothing), and what its
    /// panic message must say.
    refuses: Option<Refusal>,
}

fn row<F>(op: &'static str, inputs: BoxedStrategy<Inputs>, second_order: bool, f: F) -> Row
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64> + 'static,
{
    Row { op, inputs, f: Box::new(f), second_order, refuses: None }
}

impl Row {
    /// Marks the inputs `when` the op must panic, with a message containing `message`.
    fn refusing(mut self, when: fn(&Inputs) -> bool, message: &'static str) -> Row {
        self.refuses = Some((when, message));
        self
    }
}

const SMOOTH: bool = true;
const KINKED: bool = false;

// ---- strategies -------------------------------------------------------------------------------

/// The sizes strategies draw for dims that may be empty: 1 to `hi` for the main properties;
/// with [`Sizes::WITH_EMPTY`], 0 half the time. Dims an op needs non-empty (a pooling window, a
/// class count, a convolution's channels, which PyTorch refuses empty) are drawn from 1 either
/// way.
#[derive(Clone, Copy)]
struct Sizes {
    empty: bool,
}

impl Sizes {
    const NON_EMPTY: Sizes = Sizes { empty: false };
    const WITH_EMPTY: Sizes = Sizes { empty: true };

    /// A dim size: 1 to `hi`, or with empties 0 half the time.
    fn dim(self, hi: usize) -> BoxedStrategy<usize> {
        if self.empty {
            prop_oneof![Just(0usize), 1usize..=hi].boxed()
        } else {
            (1usize..=hi).boxed()
        }
    }

    /// A shape of rank 0 to 3 with dims up to 4.
    fn shape(self) -> BoxedStrategy<Vec<usize>> {
        self.shape_rank(0, 3)
    }

    /// A shape of rank `lo..=hi` with dims up to 4.
    fn shape_rank(self, lo: usize, hi: usize) -> BoxedStrategy<Vec<usize>> {
        prop::collection::vec(self.dim(4), lo..=hi).boxed()
    }

    /// One tensor of any shape.
    fn one(self, lo: f64, hi: f64, kinks: &'static [f64]) -> BoxedStrategy<Inputs> {
        self.shape().prop_flat_map(move |s| values(s, lo, hi, kinks).prop_map(|t| vec![t])).boxed()
    }

    /// One tensor of rank `lo_rank..=hi_rank`.
    fn one_ranked(self, lo_rank: usize, hi_rank: usize, lo: f64, hi: f64) -> BoxedStrategy<Inputs> {
        self.shape_rank(lo_rank, hi_rank).prop_flat_map(move |s| values(s, lo, hi, &[]).prop_map(|t| vec![t])).boxed()
    }

    /// Two tensors whose shapes broadcast together (either side may be the smaller one).
    fn pair(self, lo: f64, hi: f64, rhs_lo: f64, rhs_hi: f64) -> BoxedStrategy<Inputs> {
        (self.shape(), any::<bool>())
            .prop_flat_map(move |(full, swap)| {
                broadcast_of(full.clone()).prop_flat_map(move |small| {
                    let (sa, sb) = if swap { (small.clone(), full.clone()) } else { (full.clone(), small) };
                    (values(sa, lo, hi, &[]), values(sb, rhs_lo, rhs_hi, &[])).prop_map(|(a, b)| vec![a, b])
                })
            })
            .boxed()
    }

    /// Two broadcast-compatible tensors whose values never tie: `a` on odd, `b` on even tenths.
    fn untied_pair(self) -> BoxedStrategy<Inputs> {
        self.pair(-2.0, 2.0, -2.0, 2.0)
            .prop_map(|v| {
                let grid =
                    |t: &Tensor<f64>, odd: bool| t.map(|x| (x * 5.0).round() * 0.2 + if odd { 0.1 } else { 0.0 });
                vec![grid(&v[0], true), grid(&v[1], false)]
            })
            .boxed()
    }

    /// A tensor of any shape, plus a condition tensor broadcastable to it holding 0.25 or 0.75
    /// (read as false/true by thresholding at 0.5, so finite differences never flip it).
    fn with_condition(self, extra: usize) -> BoxedStrategy<Inputs> {
        self.shape()
            .prop_flat_map(move |s| {
                let tensors = prop::collection::vec(values(s.clone(), -2.0, 2.0, &[]), extra);
                let cond = broadcast_of(s).prop_flat_map(|c| {
                    let n = c.iter().product::<usize>();
                    prop::collection::vec(any::<bool>(), n).prop_map(move |b| {
                        Tensor::from_vec(b.iter().map(|&t| if t { 0.75 } else { 0.25 }).collect(), &c)
                    })
                });
                (tensors, cond).prop_map(|(mut t, c)| {
                    t.push(c);
                    t
                })
            })
            .boxed()
    }

    /// Logits (n, c) and n integer targets (stored as `t + 0.5`); `c ≥ 1`.
    fn logits_and_targets(self) -> BoxedStrategy<Inputs> {
        (self.dim(4), 1usize..=5)
            .prop_flat_map(|(n, c)| {
                let targets = prop::collection::vec(0..c, n)
                    .prop_map(move |t| Tensor::from_vec(t.iter().map(|&i| i as f64 + 0.5).collect(), &[n]));
                (values(vec![n, c], -3.0, 3.0, &[]), targets).prop_map(|(l, t)| vec![l, t])
            })
            .boxed()
    }

    /// A table (rows, d) to gather from and up to 6 row ids (`rows ≥ 1`, so that ids exist).
    fn table_and_ids(self) -> BoxedStrategy<Inputs> {
        let picks = if self.empty { 0..=6 } else { 1..=6 };
        (1usize..=4, self.dim(3))
            .prop_flat_map(move |(rows, d)| {
                let picks = prop::collection::vec(0..rows, picks.clone())
                    .prop_map(|p| Tensor::from(p.iter().map(|&i| i as f64 + 0.5).collect::<Vec<_>>()));
                (values(vec![rows, d], -2.0, 2.0, &[]), picks).prop_map(|(t, p)| vec![t, p])
            })
            .boxed()
    }

    /// Matrix-product operands: 2-d, batched 3-d, and every batch broadcast.
    fn matmul_operands(self) -> BoxedStrategy<Inputs> {
        (self.dim(3), self.dim(4), self.dim(4), self.dim(4), 0usize..5)
            .prop_flat_map(|(b, m, k, n, kind)| {
                let (sa, sb) = match kind {
                    0 => (vec![m, k], vec![k, n]),
                    1 => (vec![b, m, k], vec![b, k, n]),
                    2 => (vec![b, m, k], vec![k, n]),
                    3 => (vec![m, k], vec![b, k, n]),
                    _ => (vec![1, m, k], vec![b, k, n]),
                };
                (values(sa, -1.5, 1.5, &[]), values(sb, -1.5, 1.5, &[])).prop_map(|(a, b)| vec![a, b])
            })
            .boxed()
    }

    /// A dense layer's operands: `x (n, in)`, `W (in, out)`, `b (out)`.
    fn linear_operands(self) -> BoxedStrategy<Inputs> {
        (self.dim(4), self.dim(4), self.dim(4))
            .prop_flat_map(|(n, k, m)| {
                let v = |shape| values(shape, -1.5, 1.5, &[]);
                (v(vec![n, k]), v(vec![k, m]), v(vec![m])).prop_map(|(x, w, b)| vec![x, w, b])
            })
            .boxed()
    }

    /// An NCHW image batch and a conv kernel (out, in, kh, kw): batch up to 2 (empty with
    /// empties), `channels` in, `side` × `side` images, 1–2 out channels, `k` × `k` kernels.
    fn conv_inputs(
        self,
        channels: std::ops::RangeInclusive<usize>,
        side: std::ops::RangeInclusive<usize>,
        k: std::ops::RangeInclusive<usize>,
    ) -> BoxedStrategy<Inputs> {
        (self.dim(2), channels, side.clone(), side, 1usize..=2, k)
            .prop_flat_map(|(n, c, h, w, o, k)| {
                (values(vec![n, c, h, w], -1.0, 1.0, &[]), values(vec![o, c, k, k], -1.0, 1.0, &[]))
                    .prop_map(|(x, w)| vec![x, w])
            })
            .boxed()
    }

    /// Small images and kernels of every size from 1×1 to 3×3: the im2col path.
    fn image_and_kernel(self) -> BoxedStrategy<Inputs> {
        self.conv_inputs(1..=2, 3..=5, 1..=3)
    }

    /// 32 channels and a 3×3 kernel: the shape that conv2d computes by Winograd's algorithm
    /// (from 32 input channels) rather than by im2col.
    fn wide_image_and_3x3_kernel(self) -> BoxedStrategy<Inputs> {
        self.conv_inputs(32..=32, 3..=4, 3..=3)
    }

    /// An NCHW batch for pooling (batch up to 2, empty with empties), with distinct values so
    /// the argmax is unambiguous.
    fn pool_input(self) -> BoxedStrategy<Inputs> {
        (self.dim(2), 1usize..=2, 2usize..=5, 2usize..=5)
            .prop_flat_map(|(n, c, h, w)| {
                let count = n * c * h * w;
                Just((0..count).collect::<Vec<_>>()).prop_shuffle().prop_map(move |order| {
                    let v = order.iter().map(|&i| i as f64 * 0.1 - 1.0).collect();
                    vec![Tensor::from_vec(v, &[n, c, h, w])]
                })
            })
            .boxed()
    }

    /// A (rows, d) input for layer norm with its weight and bias (`d ≥ 2`).
    fn layer_norm_inputs(self) -> BoxedStrategy<Inputs> {
        (self.shape_rank(0, 2), 2usize..=5)
            .prop_flat_map(|(lead, d)| {
                let mut s = lead;
                s.push(d);
                (values(s, -2.0, 2.0, &[]), values(vec![d], 0.5, 1.5, &[]), values(vec![d], -0.5, 0.5, &[]))
                    .prop_map(|(x, w, b)| vec![x, w, b])
            })
            .boxed()
    }

    /// A (rows, d) input for RMS norm with its weight (`d ≥ 2`).
    fn rms_norm_inputs(self) -> BoxedStrategy<Inputs> {
        self.layer_norm_inputs()
            .prop_map(|mut v| {
                v.truncate(2);
                v
            })
            .boxed()
    }

    /// A `(batch, channels, length)` input for group norm in 2 groups, with its per-channel
    /// weight and bias (`channels` even, `channels / 2 · length ≥ 2`).
    fn group_norm_inputs(self) -> BoxedStrategy<Inputs> {
        (self.dim(3), 1usize..=2, 1usize..=3)
            .prop_flat_map(|(n, half, len)| {
                let c = 2 * half;
                let len = if half * len < 2 { 2 } else { len };
                (
                    values(vec![n, c, len], -2.0, 2.0, &[]),
                    values(vec![c], 0.5, 1.5, &[]),
                    values(vec![c], -0.5, 0.5, &[]),
                )
                    .prop_map(|(x, w, b)| vec![x, w, b])
            })
            .boxed()
    }

    /// Batch norm's `[x (N, C, …), weight (C), bias (C)]`, with `N ≥ 2` and image `n` offset by
    /// `n` so that every channel's variance is well away from 0 (where `1/√(σ² + ε)` bends
    /// sharply enough to defeat finite differences).
    fn batch_norm_inputs(self) -> BoxedStrategy<Inputs> {
        (2usize..=3, 1usize..=3, self.shape_rank(0, 2))
            .prop_flat_map(|(n, c, rest)| {
                let mut s = vec![n, c];
                s.extend(rest);
                (values(s, -0.3, 0.3, &[]), values(vec![c], 0.5, 1.5, &[]), values(vec![c], -0.5, 0.5, &[])).prop_map(
                    |(x, w, b)| {
                        let per_image = x.numel() / x.shape()[0].max(1);
                        let spread: Vec<f64> =
                            x.data().iter().enumerate().map(|(i, &v)| v + (i / per_image.max(1)) as f64).collect();
                        vec![Tensor::from_vec(spread, x.shape()), w, b]
                    },
                )
            })
            .boxed()
    }

    /// A packed `[q | k | v]` projection `(batch, seq, 3·heads·d)` for causal attention.
    fn packed_qkv(self, heads: usize) -> BoxedStrategy<Inputs> {
        (self.dim(2), self.dim(4), 1usize..=2)
            .prop_flat_map(move |(b, t, d)| values(vec![b, t, 3 * heads * d], -1.5, 1.5, &[]).prop_map(|x| vec![x]))
            .boxed()
    }

    /// Parts to concatenate along `axis` (0 or last) and their shared shape.
    fn concat_parts(self, n: usize) -> BoxedStrategy<Inputs> {
        self.shape_rank(1, 3)
            .prop_flat_map(move |s| prop::collection::vec(values(s.clone(), -2.0, 2.0, &[]), n))
            .boxed()
    }
}

/// Moves a value that lies within `gap` of a kink out of that neighbourhood.
fn nudge(v: f64, kinks: &[f64], gap: f64) -> f64 {
    kinks.iter().fold(v, |v, &k| if (v - k).abs() < gap { k + gap * if v >= k { 1.5 } else { -1.5 } } else { v })
}

/// A tensor of the given shape with values in `[lo, hi)`, at least `gap` away from `kinks`.
fn values(shape: Vec<usize>, lo: f64, hi: f64, kinks: &'static [f64]) -> impl Strategy<Value = Tensor<f64>> {
    let n = shape.iter().product::<usize>();
    prop::collection::vec(lo..hi, n)
        .prop_map(move |v| Tensor::from_vec(v.into_iter().map(|x| nudge(x, kinks, 0.05)).collect(), &shape))
}

/// A shape that broadcasts to `full`: some leading dims dropped, some dims set to 1.
fn broadcast_of(full: Vec<usize>) -> impl Strategy<Value = Vec<usize>> {
    let rank = full.len();
    (0..=rank, prop::collection::vec(any::<bool>(), rank)).prop_map(move |(drop, ones)| {
        full[drop..].iter().zip(&ones[drop..]).map(|(&d, &one)| if one { 1 } else { d }).collect()
    })
}

/// Reads a condition input (0.25/0.75) as a 0/1 mask.
fn mask(v: Var<'_, f64>) -> Tensor<f64> {
    v.value().map(|x| if x > 0.5 { 1.0 } else { 0.0 })
}

/// Reads an index input (stored as `i + 0.5`) as integers.
fn ids(v: Var<'_, f64>) -> Vec<usize> {
    v.value().data().iter().map(|&x| x.floor() as usize).collect()
}

/// conv2d with a bias, stride 1, padding 1: the kernel's first row of weights serves as the
/// bias values.
fn conv_with_bias<'t>(x: &[Var<'t, f64>]) -> Var<'t, f64> {
    let o = x[1].shape()[0];
    let bias = x[1].reshape(&[o, x[1].numel() / o]).narrow(1, 0, 1).reshape(&[o]);
    x[0].conv2d_with_bias(x[1], bias, 1, 1)
}

/// Whether the only input is empty: the maximum of nothing, which PyTorch refuses.
fn input_is_empty(x: &Inputs) -> bool {
    x[0].numel() == 0
}

/// Whether the first input's dim 0 (the reduced one) is empty.
fn first_dim_is_empty(x: &Inputs) -> bool {
    x[0].shape()[0] == 0
}

// ---- the table --------------------------------------------------------------------------------

/// The table, with dims drawn by `s`.
fn rows(s: Sizes) -> Vec<Row> {
    let any = || s.one(-2.0, 2.0, &[]);
    let positive = || s.one(0.2, 3.0, &[]);
    vec![
        // arith
        row("add", s.pair(-2.0, 2.0, -2.0, 2.0), SMOOTH, |x| x[0] + x[1]),
        row("sub", s.pair(-2.0, 2.0, -2.0, 2.0), SMOOTH, |x| x[0] - x[1]),
        row("mul", s.pair(-2.0, 2.0, -2.0, 2.0), SMOOTH, |x| x[0] * x[1]),
        row("div", s.pair(-2.0, 2.0, 0.5, 2.0), SMOOTH, |x| x[0] / x[1]),
        row("neg", any(), SMOOTH, |x| -x[0]),
        row("recip", s.one(0.3, 2.0, &[]), SMOOTH, |x| x[0].recip()),
        row("affine", any(), SMOOTH, |x| 1.5 - x[0] * 3.0 / 4.0),
        // unary
        row("exp", any(), SMOOTH, |x| x[0].exp()),
        row("ln", positive(), SMOOTH, |x| x[0].ln()),
        row("sqrt", positive(), SMOOTH, |x| x[0].sqrt()),
        row("abs", s.one(-2.0, 2.0, &[0.0]), KINKED, |x| x[0].abs()),
        row("powf", positive(), SMOOTH, |x| x[0].powf(2.7)),
        row("powi", any(), SMOOTH, |x| x[0].powi(3)),
        row("powi", s.one(0.3, 2.0, &[]), SMOOTH, |x| x[0].powi(-2)),
        row("erf", any(), SMOOTH, |x| x[0].erf()),
        // activation
        row("tanh", any(), SMOOTH, |x| x[0].tanh()),
        row("sigmoid", s.one(-6.0, 6.0, &[]), SMOOTH, |x| x[0].sigmoid()),
        row("relu", s.one(-2.0, 2.0, &[0.0]), KINKED, |x| x[0].relu()),
        row("gelu", s.one(-3.0, 3.0, &[]), SMOOTH, |x| x[0].gelu()),
        row("gelu_tanh", s.one(-3.0, 3.0, &[]), SMOOTH, |x| x[0].gelu_tanh()),
        row("softplus", s.one(-6.0, 6.0, &[]), SMOOTH, |x| x[0].softplus()),
        // compare
        row("maximum", s.untied_pair(), KINKED, |x| x[0].maximum(x[1])),
        row("minimum", s.untied_pair(), KINKED, |x| x[0].minimum(x[1])),
        row("clamp", s.one(-2.0, 2.0, &[-0.5, 0.7]), KINKED, |x| x[0].clamp(-0.5, 0.7)),
        row("where", s.with_condition(2), SMOOTH, |x| x[0].where_cond(&mask(x[2]), x[1])),
        row("masked_fill", s.with_condition(1), SMOOTH, |x| x[0].masked_fill(&mask(x[1]), -1.5) * x[0]),
        // reduce
        row("sum", any(), SMOOTH, |x| x[0].sum()),
        row("sum", s.one_ranked(1, 3, -2.0, 2.0), SMOOTH, |x| x[0].sum_axes(&[0], false)),
        row("sum", s.one_ranked(2, 3, -2.0, 2.0), SMOOTH, |x| x[0].sum_axes(&[-1, 0], true)),
        row("mean", any(), SMOOTH, |x| x[0].mean()),
        row("mean", s.one_ranked(1, 3, -2.0, 2.0), SMOOTH, |x| x[0].mean_axes(&[-1], true)),
        row("max", any(), KINKED, |x| x[0].max()).refusing(input_is_empty, "empty"),
        row("max", s.one_ranked(1, 3, -2.0, 2.0), KINKED, |x| x[0].max_axes(&[0], false))
            .refusing(first_dim_is_empty, "empty"),
        row("logsumexp", any(), SMOOTH, |x| x[0].logsumexp()),
        row("logsumexp", s.one_ranked(1, 3, -2.0, 2.0), SMOOTH, |x| x[0].logsumexp_axes(&[-1], true)),
        row("sum_to", s.pair(-2.0, 2.0, -2.0, 2.0), SMOOTH, |x| {
            let full = (x[0] + x[1]).shape();
            (x[0] * x[0]).broadcast_to(&full).sum_to(&x[1].shape()) * x[1]
        }),
        // shape
        row("broadcast_to", s.pair(-2.0, 2.0, -2.0, 2.0), SMOOTH, |x| {
            let full = (x[0] + x[1]).shape();
            x[0].broadcast_to(&full) * x[0].broadcast_to(&full)
        }),
        row("reshape", any(), SMOOTH, |x| x[0].reshape(&[usize::MAX]).powi(2)),
        row("transpose", s.one_ranked(2, 3, -2.0, 2.0), SMOOTH, |x| x[0].transpose(0, -1).powi(2)),
        row("transpose", s.one_ranked(2, 3, -2.0, 2.0), SMOOTH, |x| x[0].t() * 1.5),
        row("permute", s.one_ranked(3, 3, -2.0, 2.0), SMOOTH, |x| x[0].permute(&[2, 0, 1]).powi(2)),
        row("narrow", s.one_ranked(1, 3, -2.0, 2.0), SMOOTH, |x| {
            let n = x[0].shape()[0];
            x[0].narrow(0, n / 2, n - n / 2).powi(2)
        }),
        row("pad", s.one_ranked(1, 3, -2.0, 2.0), SMOOTH, |x| {
            // pad is narrow's backward: reach it through a gradient.
            let n = x[0].shape()[0];
            let tape = x[0].tape();
            let g = tape.grad(x[0].narrow(0, n / 2, n - n / 2).powi(3).sum(), &[x[0]])[0];
            g * x[0]
        }),
        row("concat", s.concat_parts(2), SMOOTH, |x| Var::concat(&[x[0], x[1].powi(2)], 0)),
        row("concat", s.concat_parts(3), SMOOTH, |x| Var::concat(&[x[0], x[1], x[2] * x[0]], -1)),
        row("stack", s.concat_parts(2), SMOOTH, |x| Var::stack(&[x[0], x[1].powi(2)], 0)),
        row("stack", s.concat_parts(2), SMOOTH, |x| Var::stack(&[x[0] * x[1], x[1]], -1)),
        row("index_select", s.table_and_ids(), SMOOTH, |x| x[0].index_select(&ids(x[1])).powi(2)),
        row("index_add", s.table_and_ids(), SMOOTH, |x| {
            // index_add is index_select's backward: reach it through a gradient.
            let tape = x[0].tape();
            let g = tape.grad(x[0].index_select(&ids(x[1])).powi(3).sum(), &[x[0]])[0];
            g * x[0]
        }),
        // matmul
        row("matmul", s.matmul_operands(), SMOOTH, |x| x[0].matmul(x[1])),
        row("matmul_bias", s.linear_operands(), SMOOTH, |x| x[0].matmul_bias(x[1], x[2])),
        // softmax
        row("softmax", s.one_ranked(1, 3, -3.0, 3.0), SMOOTH, |x| x[0].softmax(-1)),
        row("softmax", s.one_ranked(2, 3, -3.0, 3.0), SMOOTH, |x| x[0].softmax(0)),
        row("log_softmax", s.one_ranked(1, 3, -3.0, 3.0), SMOOTH, |x| x[0].log_softmax(-1)),
        row("log_softmax", s.one_ranked(2, 3, -3.0, 3.0), SMOOTH, |x| x[0].log_softmax(0)),
        row("cross_entropy", s.logits_and_targets(), SMOOTH, |x| x[0].cross_entropy(&ids(x[1]))),
        // attention
        row("causal_attention", s.packed_qkv(1), SMOOTH, |x| x[0].causal_attention(1)),
        row("causal_attention", s.packed_qkv(2), SMOOTH, |x| x[0].causal_attention(2)),
        // conv
        // Stride 2 and padding 1 exercise the index arithmetic.
        row("im2col", s.image_and_kernel(), SMOOTH, |x| x[0].im2col((2, 2), 2, 1)),
        row("col2im", s.image_and_kernel(), SMOOTH, |x| {
            // Columns that depend on x non-linearly, folded back with the same geometry.
            let s = x[0].shape();
            let cols = x[0].im2col((2, 2), 2, 1);
            (cols * cols).col2im((s[2], s[3]), (2, 2), 2, 1)
        }),
        row("conv2d", s.image_and_kernel(), SMOOTH, |x| x[0].conv2d(x[1], 1, 0)),
        row("conv2d", s.image_and_kernel(), SMOOTH, |x| x[0].conv2d(x[1], 2, 1)),
        row("conv2d", s.image_and_kernel(), SMOOTH, conv_with_bias),
        // Winograd's path, first order only: its second derivatives are those of the im2col
        // composition, which the rows above check.
        row("conv2d", s.wide_image_and_3x3_kernel(), false, |x| x[0].conv2d(x[1], 1, 0)),
        row("conv2d", s.wide_image_and_3x3_kernel(), false, conv_with_bias),
        // pool
        row("max_pool2d", s.pool_input(), KINKED, |x| x[0].max_pool2d(2, 2)),
        row("max_pool2d", s.pool_input(), KINKED, |x| x[0].max_pool2d(2, 1)),
        row("max_pool2d_scatter", s.pool_input(), KINKED, |x| {
            // The scatter is max_pool2d's backward: reach it through a gradient.
            let tape = x[0].tape();
            let g = tape.grad(x[0].max_pool2d(2, 1).powi(2).sum(), &[x[0]])[0];
            g * x[0]
        }),
        // dropout: a fixed seeded mask, so the function is smooth in x
        row("dropout", any(), SMOOTH, |x| x[0].dropout(0.3, true)),
        // norm
        row("layer_norm", s.layer_norm_inputs(), SMOOTH, |x| x[0].layer_norm(x[1], x[2], 1e-5)),
        row("rms_norm", s.rms_norm_inputs(), SMOOTH, |x| x[0].rms_norm(x[1], 1e-5)),
        // group_norm: layer_norm over (batch, groups, rest) and a per-channel affine map
        row("layer_norm", s.group_norm_inputs(), SMOOTH, |x| x[0].group_norm(2, x[1], x[2], 1e-5)),
        // checkpoint: a segment using an input twice, with dropout replayed in backward
        row("checkpoint", s.pair(-2.0, 2.0, -2.0, 2.0), SMOOTH, |x| {
            x[0].tape().checkpoint(&[x[0], x[1]], |v| (v[0] * v[1]).tanh() * v[0] + v[1].dropout(0.3, true))
        }),
        // conv_transpose: the (O, C, k, k) kernel transposed to the (C_in, C_out, k, k) layout;
        // stride 2 with padding and output padding exercises the index arithmetic.
        row("conv_transpose2d", s.image_and_kernel(), SMOOTH, |x| x[0].conv_transpose2d(x[1].transpose(0, 1), 1, 0, 0)),
        row("conv_transpose2d", s.image_and_kernel(), SMOOTH, conv_transpose_with_bias),
        // pool (average): fixed windows with padding, adaptive windows of unequal sizes, and the
        // adjoint reached through a gradient.
        row("avg_pool2d", s.pool_input(), SMOOTH, |x| x[0].avg_pool2d(2, 1, 1)),
        row("avg_pool2d", s.pool_input(), SMOOTH, |x| x[0].avg_pool2d(3, 2, 1)),
        row("adaptive_avg_pool2d", s.pool_input(), SMOOTH, |x| x[0].adaptive_avg_pool2d((2, 3))),
        row("avg_pool2d_adjoint", s.pool_input(), SMOOTH, |x| {
            let tape = x[0].tape();
            let g = tape.grad(x[0].avg_pool2d(2, 1, 1).powi(2).sum(), &[x[0]])[0];
            g * x[0]
        }),
        row("batch_norm", s.batch_norm_inputs(), SMOOTH, |x| x[0].batch_norm(x[1], x[2], 1e-5))
            .refusing(|x| x[0].numel() == 0, "training mode needs at least 2"),
    ]
}

/// conv_transpose2d with a bias, stride 2, padding 1, output padding 1: the kernel's first
/// weights serve as the bias values.
fn conv_transpose_with_bias<'t>(x: &[Var<'t, f64>]) -> Var<'t, f64> {
    let w = x[1].transpose(0, 1); // (C_in, C_out, k, k)
    let o = w.shape()[1];
    let bias = x[1].reshape(&[o, x[1].numel() / o]).narrow(1, 0, 1).reshape(&[o]);
    x[0].conv_transpose2d_with_bias(w, bias, 2, 1, 1)
}

/// Runs `property` on `cases` random inputs (dims drawn by [`Sizes::NON_EMPTY`]) of every row
/// that `select` keeps; fails listing every row whose property failed. Returns the number of
/// cases run.
fn check_rows(
    cases: u32,
    select: impl Fn(&Row) -> bool,
    property: impl Fn(&Build, Inputs) -> Result<(), TestCaseError>,
) -> u32 {
    let mut failures = vec![];
    let mut total = 0;
    for row in rows(Sizes::NON_EMPTY).iter().filter(|r| select(r)) {
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        match runner.run(&row.inputs, |inputs| property(&row.f, inputs)) {
            Ok(()) => total += cases,
            Err(e) => failures.push(format!("`{}`: {e}", row.op)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    total
}

#[test]
fn every_op_gradient_matches_finite_differences() {
    let cases = check_rows(
        FIRST_ORDER_CASES,
        |_| true,
        |f, inputs| {
            check_gradients(|x| f(x), &inputs, Tolerance::default())
                .map_err(|e| TestCaseError::fail(format!("{e} for inputs {inputs:?}")))
        },
    );
    println!("first-order gradient cases: {cases}");
}

#[test]
fn smooth_op_second_derivatives_match_finite_differences() {
    let cases = check_rows(
        SECOND_ORDER_CASES,
        |r| r.second_order,
        |f, inputs| {
            check_second_order(|x| f(x), &inputs, Tolerance::default())
                .map_err(|e| TestCaseError::fail(format!("{e} for inputs {inputs:?}")))
        },
    );
    println!("second-order gradient cases: {cases}");
}

/// Every row with size-0 dims and empty batches: an op either refuses the inputs as PyTorch does
/// (a panic naming the op and saying what is empty) or gives results of the right shape whose
/// gradients, plain and differentiable, match finite differences (zeros where a sum is empty),
/// to second order for smooth ops. Fails if a row never drew an empty input.
#[test]
fn every_op_handles_empty_tensors() {
    let mut failures = vec![];
    let mut total = 0;
    for row in rows(Sizes::WITH_EMPTY) {
        let empties = std::cell::Cell::new(0);
        let mut runner = TestRunner::new(Config { cases: 48, failure_persistence: None, ..Config::default() });
        let result = runner.run(&row.inputs, |inputs| {
            if inputs.iter().any(|t| t.numel() == 0) {
                empties.set(empties.get() + 1);
            }
            if let Some((_, message)) = row.refuses.filter(|(when, _)| when(&inputs)) {
                return refuses(&row, &inputs, message);
            }
            handles_empty(&row, &inputs).map_err(|e| TestCaseError::fail(format!("{e} for inputs {inputs:?}")))
        });
        match result {
            Ok(()) if empties.get() == 0 => failures.push(format!("`{}`: no empty input was drawn", row.op)),
            Ok(()) => total += empties.get(),
            Err(e) => failures.push(format!("`{}`: {e}", row.op)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("cases with an empty input: {total}");
}

/// Checks that `row`'s op panics on `inputs` with a message naming the op and containing
/// `message`.
fn refuses(row: &Row, inputs: &Inputs, message: &str) -> Result<(), TestCaseError> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let tape = autograd::Tape::<f64>::new();
        let xs: Vec<_> = inputs.iter().map(|t| tape.var(t.clone())).collect();
        (row.f)(&xs).shape()
    }));
    let Err(panic) = outcome else {
        return Err(TestCaseError::fail(format!("accepted inputs PyTorch refuses: {inputs:?}")));
    };
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    prop_assert!(text.contains(row.op) && text.contains(message), "unclear refusal: {text:?}");
    Ok(())
}

/// Gradients of `row`'s op at possibly empty `inputs`: finite differences, both backward paths
/// and every gradient's shape, and second order for smooth ops.
fn handles_empty(row: &Row, inputs: &Inputs) -> Result<(), String> {
    check_gradients(|x| (row.f)(x), inputs, Tolerance::default()).map_err(|e| e.to_string())?;
    if row.second_order {
        check_second_order(|x| (row.f)(x), inputs, Tolerance::default()).map_err(|e| e.to_string())?;
    }
    let tape = autograd::Tape::<f64>::new();
    let xs: Vec<_> = inputs.iter().map(|t| tape.var(t.clone())).collect();
    let y = (row.f)(&xs).sum();
    let plain = y.backward();
    let recorded = tape.grad(y, &xs);
    for (i, (x, r)) in xs.iter().zip(&recorded).enumerate() {
        let p = plain.get(*x).cloned().unwrap_or_else(|| Tensor::zeros(&x.shape()));
        let r = r.value();
        if p.shape() != x.shape().as_slice() || r.shape() != x.shape().as_slice() {
            return Err(format!(
                "input {i} of shape {:?}: gradients of shapes {:?} and {:?}",
                x.shape(),
                p.shape(),
                r.shape()
            ));
        }
        if p.data().iter().zip(r.data()).any(|(a, b)| (a - b).abs() > 1e-10 * (1.0 + b.abs())) {
            return Err(format!("input {i}: plain {p:?} vs recorded {r:?}"));
        }
    }
    Ok(())
}

#[test]
fn every_registered_op_has_a_row() {
    let rows = rows(Sizes::NON_EMPTY);
    let missing: Vec<_> = REGISTRY.iter().filter(|name| !rows.iter().any(|r| r.op == **name)).collect();
    assert!(missing.is_empty(), "ops without a gradient property test: {missing:?}");
    let unknown: Vec<_> = rows.iter().filter(|r| !REGISTRY.contains(&r.op)).map(|r| r.op).collect();
    assert!(unknown.is_empty(), "rows for ops not in the registry: {unknown:?}");
}

/// Structural properties of every op's backward, on a few random inputs per row: running it
/// twice gives bit-identical gradients, a zero upstream gradient gives zero gradients, and every
/// gradient has its input's shape.
#[test]
fn backward_is_deterministic_shape_preserving_and_linear_in_the_seed() {
    check_rows(
        8,
        |_| true,
        |f, inputs| {
            let tape = autograd::Tape::<f64>::new();
            let xs: Vec<_> = inputs.iter().map(|t| tape.var(t.clone())).collect();
            let y = f(&xs);
            let seed = Tensor::from_vec((0..y.numel()).map(|i| 0.5 + i as f64 * 0.25).collect(), &y.shape());
            let first = y.backward_with(seed.clone());
            let second = y.backward_with(seed);
            let zero = y.backward_with(Tensor::zeros(&y.shape()));
            for (i, x) in xs.iter().enumerate() {
                let (a, b) = (first.get(*x), second.get(*x));
                prop_assert!(a.map(|t| t.to_vec()) == b.map(|t| t.to_vec()), "input {i}: backward twice differs");
                if let Some(g) = a {
                    prop_assert!(g.shape() == x.shape().as_slice(), "input {i}: gradient shape {:?}", g.shape());
                }
                if let Some(z) = zero.get(*x) {
                    prop_assert!(z.data().iter().all(|&v| v == 0.0), "input {i}: zero seed gave {z:?}");
                }
            }
            Ok(())
        },
    );
}

/// Ops with a kernel of their own compute a plain backward directly on tensors
/// (`Op::backward_values`, or a fused kernel when the tape is not recording) and a
/// differentiable one with `Var` ops: both must give the same gradient. (The element-wise ops
/// run one derivative rule on both paths; `autograd::derivative` tests that numbers and `Var`s
/// compute the same functions.)
#[test]
fn plain_and_differentiable_backward_agree() {
    check_rows(
        8,
        |r| !ELEMENTWISE.contains(&r.op),
        |f, inputs| {
            let tape = autograd::Tape::<f64>::new();
            let xs: Vec<_> = inputs.iter().map(|t| tape.var(t.clone())).collect();
            let y = f(&xs).sum();
            let plain = y.backward();
            let recorded = tape.grad(y, &xs);
            for (i, (x, r)) in xs.iter().zip(&recorded).enumerate() {
                let p = plain.get(*x).cloned().unwrap_or_else(|| Tensor::zeros(&x.shape()));
                let r = r.value();
                let close = p.data().iter().zip(r.data()).all(|(a, b)| (a - b).abs() <= 1e-10 * (1.0 + b.abs()));
                prop_assert!(close, "input {i}: plain {p:?} vs recorded {r:?}");
            }
            Ok(())
        },
    );
}

/// Forward mode: every row's tangent (each op's `Op::jvp`, through `Tape::dual`) against central
/// differences along a random direction, and computed by the op's own tangent rule: the
/// double-vjp fallback of ops without one must not run, so a new op without a tangent rule
/// fails here.
#[test]
fn every_op_tangent_matches_finite_differences_by_its_own_rule() {
    let cases = check_rows(
        TANGENT_CASES,
        |_| true,
        |f, inputs| {
            let before = autograd::op::double_vjp_calls();
            check_jvp(|x| f(x), &inputs, Tolerance::default())
                .map_err(|e| TestCaseError::fail(format!("{e} for inputs {inputs:?}")))?;
            let fallbacks = autograd::op::double_vjp_calls() - before;
            prop_assert!(fallbacks == 0, "{fallbacks} tangents came from the double-vjp fallback, not a rule");
            Ok(())
        },
    );
    println!("tangent cases: {cases}");
}
