//! Autocast: the bf16 products of `matmul`, `matmul_bias` and `conv2d`, forward and backward,
//! against f64 within bf16's error bound; the precision an op records at creation; and what
//! stays f32 (f64 tapes, Winograd's convolutions).

use autograd::kernels::bf16::{level, Bf16Level};
use autograd::precision::Precision;
use autograd::{Float, Tape, Tensor, Var};

/// bf16's unit roundoff: 8 significant bits, so rounding to nearest errs by at most 2⁻⁹
/// relatively; the product of two rounded operands by at most 2·2⁻⁹ + 2⁻¹⁸.
const BF16_PRODUCT: f64 = 2.0 / 512.0 + 1.0 / 262_144.0;
/// f32's unit roundoff.
const F32_U: f64 = 1.0 / 16_777_216.0;

/// The ops under test, each bilinear in its first two inputs (affine with a bias).
#[derive(Clone, Copy, Debug)]
enum Case {
    MatMul,
    MatMulBatched,
    MatMulBroadcast,
    MatMulBias,
    Conv,
    ConvBias,
    ConvStrided,
}

impl Case {
    /// The input shapes, and the longest inner dim of any product forward or backward.
    fn shapes(self) -> (Vec<Vec<usize>>, usize) {
        match self {
            Case::MatMul => (vec![vec![37, 129], vec![129, 45]], 129),
            Case::MatMulBatched => (vec![vec![3, 17, 70], vec![3, 70, 33]], 70),
            Case::MatMulBroadcast => (vec![vec![4, 19, 65], vec![65, 23]], 4 * 19),
            Case::MatMulBias => (vec![vec![61, 97], vec![97, 31], vec![31]], 97),
            Case::Conv => (vec![vec![2, 5, 9, 11], vec![7, 5, 3, 3]], 2 * 9 * 11),
            Case::ConvBias => (vec![vec![3, 4, 8, 8], vec![6, 4, 3, 3], vec![6]], 3 * 8 * 8),
            Case::ConvStrided => (vec![vec![2, 3, 12, 10], vec![5, 3, 4, 4]], 2 * 5 * 4),
        }
    }

    fn apply<'t, T: Float>(self, v: &[Var<'t, T>]) -> Var<'t, T> {
        match self {
            Case::MatMul | Case::MatMulBatched | Case::MatMulBroadcast => v[0].matmul(v[1]),
            Case::MatMulBias => v[0].matmul_bias(v[1], v[2]),
            Case::Conv => v[0].conv2d(v[1], 1, 1),
            Case::ConvBias => v[0].conv2d_with_bias(v[1], v[2], 1, 0),
            Case::ConvStrided => v[0].conv2d(v[1], 2, 1),
        }
    }
}

/// `n` values in [−2, 2) that f32 holds exactly, with full mantissas (so bf16 rounds them).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            f64::from((state >> 40) as f32 / (1u64 << 22) as f32 - 2.0)
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::from_vec(values(shape.iter().product(), seed), shape)
}

/// The output and the gradients of `Σ out ⊙ weights` with respect to every input, on a tape of
/// `T` at `precision`.
fn run<T: Float>(case: Case, inputs: &[Tensor<f64>], weights: &Tensor<f64>, precision: Precision) -> Vec<Tensor<f64>> {
    let tape = Tape::<T>::new();
    tape.mixed_precision(precision);
    let vars: Vec<Var<'_, T>> = inputs.iter().map(|x| tape.var(x.cast::<T>())).collect();
    let out = case.apply(&vars);
    let grads = (out * tape.constant(weights.cast::<T>())).sum().backward();
    let mut all = vec![out.value().cast::<f64>()];
    all.extend(vars.iter().map(|v| grads[*v].cast::<f64>()));
    all
}

/// The output's shape, from an f64 run.
fn out_shape(case: Case, inputs: &[Tensor<f64>]) -> Vec<usize> {
    let tape = Tape::<f64>::new();
    let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.constant(x.clone())).collect();
    case.apply(&vars).shape().to_vec()
}

fn abs(t: &Tensor<f64>) -> Tensor<f64> {
    t.map(f64::abs)
}

#[test]
fn bf16_products_stay_within_bf16_error_bound_of_f64() {
    for (i, case) in [
        Case::MatMul,
        Case::MatMulBatched,
        Case::MatMulBroadcast,
        Case::MatMulBias,
        Case::Conv,
        Case::ConvBias,
        Case::ConvStrided,
    ]
    .into_iter()
    .enumerate()
    {
        let (shapes, k) = case.shapes();
        let inputs: Vec<Tensor<f64>> =
            shapes.iter().enumerate().map(|(j, s)| tensor(s, 10 * i as u64 + j as u64)).collect();
        let weights = tensor(&out_shape(case, &inputs), 100 + i as u64);
        let exact = run::<f64>(case, &inputs, &weights, Precision::F32);
        // Every result is a sum of products, so Σ|a|·|b| (the same computation on the absolute
        // values) scales its error.
        let scale = run::<f64>(case, &inputs.iter().map(abs).collect::<Vec<_>>(), &abs(&weights), Precision::F32);
        let bf16 = run::<f32>(case, &inputs, &weights, Precision::Bf16);
        let f32 = run::<f32>(case, &inputs, &weights, Precision::F32);
        let bound = BF16_PRODUCT + (k as f64 + 2.0) * F32_U;
        let names = ["output", "grad 0", "grad 1", "grad 2"];
        for (n, ((b, e), s)) in bf16.iter().zip(&exact).zip(&scale).enumerate() {
            for (j, ((&b, &e), &s)) in b.data().iter().zip(e.data()).zip(s.data()).enumerate() {
                assert!(
                    (b - e).abs() <= bound * s + 1e-30,
                    "{case:?} {}[{j}]: bf16 {b}, exact {e}, bound {}",
                    names[n],
                    bound * s
                );
            }
        }
        // The bf16 kernel ran (its rounding shows) unless the CPU has no bf16 level, where
        // the f32 products ran instead, bit for bit.
        let same = bf16.iter().zip(&f32).all(|(a, b)| a.data() == b.data());
        assert_eq!(same, level() == Bf16Level::None, "{case:?}: bf16 equal to f32: {same}, level {:?}", level());
    }
}

#[test]
fn an_op_keeps_the_precision_it_was_created_with_in_backward() {
    let case = Case::MatMulBias;
    let (shapes, _) = case.shapes();
    let inputs: Vec<Tensor<f32>> = shapes.iter().enumerate().map(|(j, s)| tensor(s, 40 + j as u64).cast()).collect();
    let grads_of = |forward: Precision, backward: Precision| {
        let tape = Tape::<f32>::new();
        tape.mixed_precision(forward);
        let vars: Vec<Var<'_, f32>> = inputs.iter().map(|x| tape.var(x.clone())).collect();
        let y = case.apply(&vars);
        tape.mixed_precision(backward);
        let grads = y.tanh().sum().backward();
        vars.iter().map(|v| grads[*v].clone()).collect::<Vec<_>>()
    };
    assert_eq!(grads_of(Precision::Bf16, Precision::F32), grads_of(Precision::Bf16, Precision::Bf16));
    assert_eq!(grads_of(Precision::F32, Precision::Bf16), grads_of(Precision::F32, Precision::F32));
    if level() != Bf16Level::None {
        assert_ne!(grads_of(Precision::Bf16, Precision::F32), grads_of(Precision::F32, Precision::F32));
    }
}

#[test]
fn f64_tapes_ignore_the_precision() {
    for case in [Case::MatMulBatched, Case::MatMulBias, Case::ConvBias] {
        let (shapes, _) = case.shapes();
        let inputs: Vec<Tensor<f64>> = shapes.iter().enumerate().map(|(j, s)| tensor(s, 60 + j as u64)).collect();
        let weights = tensor(&out_shape(case, &inputs), 70);
        assert_eq!(
            run::<f64>(case, &inputs, &weights, Precision::Bf16),
            run::<f64>(case, &inputs, &weights, Precision::F32),
            "{case:?}"
        );
    }
}

#[test]
fn winograd_convolutions_and_attention_stay_f32() {
    // 3×3, stride 1, 32 input channels: Winograd's path, which keeps f32 products.
    let x = tensor(&[2, 32, 6, 6], 80).cast::<f32>();
    let w = tensor(&[4, 32, 3, 3], 81).cast::<f32>();
    let qkv = tensor(&[2, 5, 24], 82).cast::<f32>();
    let outputs = |precision: Precision| {
        let tape = Tape::<f32>::new();
        tape.mixed_precision(precision);
        let (xv, wv, qv) = (tape.var(x.clone()), tape.var(w.clone()), tape.var(qkv.clone()));
        let (conv, attention) = (xv.conv2d(wv, 1, 1), qv.causal_attention(2));
        let grads = (conv.tanh().sum() + attention.tanh().sum()).backward();
        [conv.value(), attention.value(), grads[xv].clone(), grads[wv].clone(), grads[qv].clone()]
    };
    assert_eq!(outputs(Precision::Bf16), outputs(Precision::F32));
}

#[test]
fn precision_parses_its_names_and_rejects_others() {
    assert_eq!("bf16".parse::<Precision>(), Ok(Precision::Bf16));
    assert_eq!("f32".parse::<Precision>(), Ok(Precision::F32));
    let err = "fp16".parse::<Precision>().expect_err("not a precision");
    assert!(err.contains("\"fp16\"") && err.contains("bf16"), "{err}");
    assert_eq!(Precision::Bf16.to_string(), "bf16");
    assert_eq!(Tape::<f32>::new().precision(), Precision::F32);
}
