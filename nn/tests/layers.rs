//! Layers: gradients with respect to every weight against central finite differences, shapes,
//! causality, and bit-identical initialization from a seed.

use autograd::{Tape, Tensor, Var};
use nn::{
    loss, Activation, Bound, CausalSelfAttention, Conv2d, Conv2dConfig, Embedding, Flatten, LayerNorm, Linear,
    LinearConfig, MaxPool2d, Mlp, ParamStore, TransformerBlock, TransformerConfig,
};

/// Checks `d loss / d param` for every element of every parameter of `store` against central
/// differences `(f(p + ε) − f(p − ε)) / 2ε`. The loss is pushed through `.exp().mean()`-like
/// heads by the callers so that incoming gradients are not all ones.
fn check_param_grads<F>(store: &mut ParamStore<f64>, f: F)
where
    F: for<'t> Fn(&Bound<'t, f64>) -> Var<'t, f64>,
{
    let (_, grads) = store.value_and_grad(0, |p| f(p));
    let eps = 1e-6;
    let ids: Vec<_> = store.iter().map(|(id, name, _)| (id, name.to_string())).collect();
    for (id, name) in ids {
        let analytic = grads.get(id).unwrap_or_else(|| panic!("no gradient for {name}")).clone();
        for i in 0..store.get(id).numel() {
            let orig = store.get(id).data()[i];
            store.get_mut(id).data_mut()[i] = orig + eps;
            let plus = store.value_and_grad(0, |p| f(p)).0;
            store.get_mut(id).data_mut()[i] = orig - eps;
            let minus = store.value_and_grad(0, |p| f(p)).0;
            store.get_mut(id).data_mut()[i] = orig;
            let numeric = (plus - minus) / (2.0 * eps);
            let a = analytic.data()[i];
            assert!((a - numeric).abs() <= 1e-6 + 1e-5 * numeric.abs(), "{name}[{i}]: analytic {a}, numeric {numeric}");
        }
    }
}

fn input<'t>(p: &Bound<'t, f64>, shape: &[usize], seed: u64) -> Var<'t, f64> {
    use autograd::SeedableRng;
    let mut rng = autograd::Rng::seed_from_u64(seed);
    p.tape().constant(Tensor::rand_uniform(shape, -1.0, 1.0, &mut rng))
}

#[test]
fn linear_grad_matches_finite_diff_for_rank_3_input() {
    let mut store = ParamStore::<f64>::with_seed(1);
    let fc = Linear::new(store.scope("fc"), 3, 2);
    check_param_grads(&mut store, |p| fc.forward(p, input(p, &[2, 2, 3], 9)).exp().mean());
}

#[test]
fn linear_without_bias_has_one_parameter() {
    let mut store = ParamStore::<f32>::with_seed(1);
    let fc = Linear::with_config(store.scope("fc"), 3, 2, LinearConfig { bias: false, ..Default::default() });
    assert_eq!(store.names().collect::<Vec<_>>(), ["fc.weight"]);
    assert!(fc.bias.is_none());
}

#[test]
fn mlp_grad_matches_finite_diff_for_each_activation() {
    for act in [Activation::Tanh, Activation::Gelu, Activation::GeluTanh, Activation::Sigmoid, Activation::Softplus] {
        let mut store = ParamStore::<f64>::with_seed(2);
        let mlp = Mlp::new(store.scope("mlp"), &[3, 4, 2], act);
        check_param_grads(&mut store, |p| mlp.forward(p, input(p, &[5, 3], 3)).exp().mean());
    }
}

#[test]
fn layer_norm_grad_matches_finite_diff() {
    let mut store = ParamStore::<f64>::with_seed(3);
    let ln = LayerNorm::new(store.scope("ln"), 4);
    // Move γ, β off their ones/zeros start so that the check is not at a special point.
    for (id, v) in [(ln.weight, 0.7), (ln.bias.expect("bias"), 0.2)] {
        store.get_mut(id).data_mut().iter_mut().enumerate().for_each(|(i, x)| *x += v * i as f64);
    }
    check_param_grads(&mut store, |p| ln.forward(p, input(p, &[3, 4], 4)).exp().mean());
}

#[test]
fn embedding_grad_accumulates_repeated_ids() {
    let mut store = ParamStore::<f64>::with_seed(4);
    let emb = Embedding::new(store.scope("wte"), 5, 3);
    check_param_grads(&mut store, |p| emb.forward_shaped(p, &[1, 3, 1, 0], &[2, 2]).exp().mean());
    let (_, g) = store.value_and_grad(0, |p| emb.forward(p, &[1, 1, 2]).sum());
    let g = g.get(emb.weight).expect("grad");
    assert_eq!(&g.data()[3..6], &[2.0; 3]); // row 1 used twice
    assert_eq!(&g.data()[12..15], &[0.0; 3]); // row 4 unused
}

#[test]
fn conv_pool_flatten_linear_grad_matches_finite_diff() {
    let mut store = ParamStore::<f64>::with_seed(5);
    let conv =
        Conv2d::new(store.scope("conv"), 2, 3, Conv2dConfig { kernel_size: 3, stride: 1, padding: 1, bias: true });
    let conv2 =
        Conv2d::new(store.scope("conv2"), 3, 2, Conv2dConfig { kernel_size: 2, stride: 2, padding: 0, bias: false });
    let head = Linear::new(store.scope("head"), 2 * 2 * 2, 3);
    check_param_grads(&mut store, |p| {
        let x = input(p, &[2, 2, 5, 5], 6); // (batch 2, channels 2, 5×5)
        let h = conv.forward(p, x).tanh(); // (2, 3, 5, 5)
        let h = MaxPool2d::new(2, 1).forward(p, h); // (2, 3, 4, 4)
        let h = conv2.forward(p, h); // (2, 2, 2, 2)
        head.forward(p, Flatten.forward(p, h)).exp().mean()
    });
}

#[test]
fn conv2d_matches_a_hand_computation() {
    // One 3×3 image, one 2×2 kernel of ones, bias 0.5: each output is the window's sum + 0.5.
    let mut store = ParamStore::<f64>::default();
    let conv = Conv2d::new(store.scope("c"), 1, 1, Conv2dConfig { kernel_size: 2, ..Default::default() });
    store.set(conv.weight, Tensor::ones(&[1, 1, 2, 2]));
    store.set(conv.bias.expect("bias"), Tensor::from(vec![0.5]));
    let tape = Tape::new();
    let x = tape.constant(Tensor::from_vec((1..=9).map(f64::from).collect(), &[1, 1, 3, 3]));
    let y = conv.forward(&store.bind(&tape), x).value();
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_eq!(y.data(), &[12.5, 16.5, 24.5, 28.5]); // 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9
}

#[test]
fn attention_and_transformer_block_grads_match_finite_diff() {
    let mut store = ParamStore::<f64>::with_seed(6);
    let attn = CausalSelfAttention::new(store.scope("attn"), 4, 2, 0.0);
    check_param_grads(&mut store, |p| attn.forward(p, input(p, &[2, 3, 4], 7)).exp().mean());

    let mut store = ParamStore::<f64>::with_seed(7);
    let cfg = TransformerConfig { n_embd: 4, n_head: 2, mlp_ratio: 2, init_std: Some(0.5), ..Default::default() };
    let block = TransformerBlock::new(store.scope("block"), &cfg);
    check_param_grads(&mut store, |p| block.forward(p, input(p, &[1, 3, 4], 8)).exp().mean());
}

#[test]
fn attention_is_causal() {
    // Changing the input at position 2 must not change the outputs at positions 0 and 1.
    let mut store = ParamStore::<f64>::with_seed(8);
    let attn = CausalSelfAttention::new(store.scope("attn"), 6, 3, 0.0);
    let run = |x: Tensor<f64>| {
        let tape = Tape::new();
        attn.forward(&store.bind(&tape), tape.constant(x)).value()
    };
    let mut rng = <autograd::Rng as autograd::SeedableRng>::seed_from_u64(1);
    let x = Tensor::<f64>::rand_normal(&[1, 3, 6], 0.0, 1.0, &mut rng);
    let mut x2 = x.clone();
    x2.data_mut()[12..18].iter_mut().for_each(|v| *v += 1.0);
    let (a, b) = (run(x), run(x2));
    assert_eq!(&a.data()[..12], &b.data()[..12]);
    assert_ne!(&a.data()[12..], &b.data()[12..]);
}

#[test]
fn transformer_block_shapes_and_parameter_names() {
    let mut store = ParamStore::<f32>::with_seed(0);
    let cfg = TransformerConfig { n_embd: 8, n_head: 2, ..Default::default() };
    let blocks: Vec<_> = (0..2).map(|i| TransformerBlock::new(store.scope("blocks").scope(i), &cfg)).collect();
    let names: Vec<_> = store.names().filter(|n| n.starts_with("blocks.1.")).collect();
    assert_eq!(
        names,
        [
            "blocks.1.ln_1.weight",
            "blocks.1.ln_1.bias",
            "blocks.1.attn.qkv.weight",
            "blocks.1.attn.qkv.bias",
            "blocks.1.attn.proj.weight",
            "blocks.1.attn.proj.bias",
            "blocks.1.ln_2.weight",
            "blocks.1.ln_2.bias",
            "blocks.1.mlp.fc.weight",
            "blocks.1.mlp.fc.bias",
            "blocks.1.mlp.proj.weight",
            "blocks.1.mlp.proj.bias",
        ]
    );
    // 2·8 + (8·24 + 24) + (8·8 + 8) + 2·8 + (8·32 + 32) + (32·8 + 8) = 872 per block
    assert_eq!(store.num_params(), 2 * 872);
    let tape = Tape::new();
    let p = store.bind(&tape);
    let y = blocks.iter().fold(tape.constant(Tensor::ones(&[3, 5, 8])), |h, b| b.forward(&p, h));
    assert_eq!(y.shape().as_slice(), &[3, 5, 8]);
}

/// A small GPT-like model, built twice from each seed.
fn gpt(seed: u64) -> ParamStore<f32> {
    let mut store = ParamStore::with_seed(seed);
    Embedding::new(store.scope("wte"), 11, 8);
    let cfg = TransformerConfig { n_embd: 8, n_head: 2, ..Default::default() };
    for i in 0..2 {
        TransformerBlock::new(store.scope("blocks").scope(i), &cfg);
    }
    Conv2d::new(store.scope("conv"), 1, 2, Conv2dConfig::default());
    Mlp::new(store.scope("mlp"), &[8, 16, 4], Activation::Relu);
    store
}

#[test]
fn same_seed_gives_bit_identical_parameters() {
    let (a, b, c) = (gpt(5), gpt(5), gpt(6));
    assert_eq!(a.len(), b.len());
    for ((_, n, x), (_, _, y)) in a.iter().zip(b.iter()) {
        let same = x.data().iter().zip(y.data()).all(|(u, v)| u.to_bits() == v.to_bits());
        assert!(same, "{n} differs");
    }
    let differs = a.iter().zip(c.iter()).any(|((_, _, x), (_, _, y))| x != y);
    assert!(differs, "seed 6 gave the same parameters as seed 5");
}

#[test]
fn dropout_in_a_model_is_identity_in_eval_and_seeded_in_train() {
    let mut store = ParamStore::<f32>::with_seed(0);
    let cfg = TransformerConfig { n_embd: 8, n_head: 2, dropout: 0.5, ..Default::default() };
    let block = TransformerBlock::new(store.scope("b"), &cfg);
    let run = |seed: u64, train: bool| {
        let tape = Tape::with_seed(seed);
        let p = store.bind(&tape).train(train);
        let x = Tensor::from_vec((0..32).map(|i| (i as f32 * 0.37).sin()).collect(), &[1, 4, 8]);
        block.forward(&p, tape.constant(x)).value()
    };
    assert_eq!(run(1, false), run(2, false));
    assert_eq!(run(1, true), run(1, true));
    assert_ne!(run(1, true), run(2, true));
}

#[test]
fn label_smoothing_matches_its_definition_and_zero_is_the_fused_loss() {
    let logits = Tensor::from_vec(vec![2.0, -1.0, 0.5, 0.1, 0.2, 3.0], &[2, 3]);
    let targets = [0, 2];
    let tape = Tape::<f64>::new();
    let x = tape.var(logits.clone());
    let fused = loss::cross_entropy(x, &targets).item();
    assert_eq!(loss::cross_entropy_smoothed(x, &targets, 0.0).item(), fused);
    // By hand: q = (1 − ε)·onehot + ε/C, loss = −Σ q·log p averaged over rows.
    let eps = 0.1;
    let mut want = 0.0;
    for (r, &t) in targets.iter().enumerate() {
        let row = &logits.data()[r * 3..r * 3 + 3];
        let lse = row.iter().map(|v: &f64| v.exp()).sum::<f64>().ln();
        for (c, v) in row.iter().enumerate() {
            let q = if c == t { 1.0 - eps } else { 0.0 } + eps / 3.0;
            want -= q * (v - lse);
        }
    }
    want /= 2.0;
    let got = loss::cross_entropy_smoothed(x, &targets, eps);
    assert!((got.item() - want).abs() < 1e-12, "{} vs {want}", got.item());
    autograd::check::gradcheck(|v| loss::cross_entropy_smoothed(v[0], &[0, 2], 0.1), &[logits]);
}

#[test]
fn cross_entropy_accepts_sequence_logits() {
    let tape = Tape::<f32>::new();
    let logits = tape.var(Tensor::zeros(&[2, 3, 5])); // (batch, seq_len, vocab_size)
    let l = loss::cross_entropy(logits, &[0, 1, 2, 3, 4, 0]);
    assert!((l.item() - 5f32.ln()).abs() < 1e-6);
}

#[test]
fn linear_and_loss_nodes_are_located_at_the_callers_line() {
    let mut store = ParamStore::<f64>::with_seed(0);
    let lin = Linear::new(store.scope("fc"), 3, 2);
    let tape = Tape::new();
    let p = store.bind(&tape);
    let x = tape.constant(Tensor::zeros(&[4, 3]));
    let line = line!() + 1;
    let y = lin.forward(&p, x);
    assert_eq!((y.location().file(), y.location().line()), (file!(), line), "the fused product's node");
    let x3 = tape.constant(Tensor::zeros(&[2, 2, 3]));
    let line = line!() + 1;
    let y3 = lin.forward(&p, x3);
    assert_eq!((y3.location().file(), y3.location().line()), (file!(), line), "the reshaped output's node");
    let target = tape.constant(Tensor::zeros(&[4, 2]));
    let line = line!() + 1;
    let l = loss::mse(y, target);
    assert_eq!((l.location().file(), l.location().line()), (file!(), line), "the loss's node");
}
