//! RmsNorm, GroupNorm, Embedding with a padding index and the dropout variants against values
//! PyTorch computed (`nn/tests/fixtures/torch/norm_layers.json`, written by
//! `bench/reference/norm_layers_torch.py`): forward values and the gradients of `(y ⊙ g).sum()`
//! with respect to the input and each parameter. The dropout variants draw from pente's
//! generator, not PyTorch's, so their masks are checked exactly against the mask pente drew and
//! their rates statistically; AlphaDropout's constants are checked against PyTorch's.

use autograd::check::assert_close;
use autograd::{Float, Tape, Tensor};
use nn::{AlphaDropout, Dropout1d, Dropout2d, Embedding, EmbeddingConfig, GroupNorm, ParamStore, RmsNorm};
use serde_json::Value;

fn fixtures() -> Value {
    serde_json::from_str(include_str!("fixtures/torch/norm_layers.json")).expect("the fixture is JSON")
}

/// The numbers of `case[key]`.
fn nums<T: Float>(case: &Value, key: &str) -> Vec<T> {
    case[key]
        .as_array()
        .unwrap_or_else(|| panic!("fixture has no `{key}`"))
        .iter()
        .map(|v| T::from_f64(v.as_f64().expect("a number")))
        .collect()
}

fn shape(case: &Value) -> Vec<usize> {
    case["shape"].as_array().expect("a shape").iter().map(|v| v.as_u64().expect("a dim") as usize).collect()
}

/// Runs `layer` on the fixture's `x` with its parameters set to the fixture's, and compares the
/// output and the gradients of `(y ⊙ g).sum()` (w.r.t. `x` and the named parameters).
fn check_against_torch<T: Float>(
    case: &Value,
    store: &mut ParamStore<T>,
    params: &[(&str, nn::ParamId)],
    forward: impl for<'t> Fn(&nn::Bound<'t, T>, autograd::Var<'t, T>) -> autograd::Var<'t, T>,
    (atol, rtol): (f64, f64),
) {
    for &(name, id) in params {
        let shape = store.get(id).shape().to_vec();
        store.set(id, Tensor::from_vec(nums(case, name), &shape));
    }
    let shape = shape(case);
    let tape = Tape::new();
    let p = store.bind(&tape);
    let x = tape.var(Tensor::from_vec(nums(case, "x"), &shape));
    let y = forward(&p, x);
    let g = tape.constant(Tensor::from_vec(nums(case, "g"), &y.shape()));
    assert_close(&y.value(), &Tensor::from_vec(nums(case, "y"), &y.shape()), atol, rtol);
    let grads = (y * g).sum().backward();
    assert_close(&grads[x], &Tensor::from_vec(nums(case, "grad_x"), &shape), atol, rtol);
    for &(name, id) in params {
        let want = Tensor::from_vec(nums(case, &format!("grad_{name}")), store.get(id).shape());
        assert_close(&grads[p.get(id)], &want, atol, rtol);
    }
}

#[test]
fn rms_norm_matches_torch_in_f64_with_the_default_eps() {
    let case = &fixtures()["rms_norm_f64"];
    let mut store = ParamStore::<f64>::with_seed(0);
    let norm = RmsNorm::new(store.scope("norm"), 5);
    assert_eq!(norm.eps_for::<f64>(), f64::EPSILON);
    let w = norm.weight.expect("a weight");
    check_against_torch(case, &mut store, &[("weight", w)], |p, x| norm.forward(p, x), (1e-13, 1e-12));
}

#[test]
fn rms_norm_matches_torch_in_f32_with_the_default_eps() {
    let case = &fixtures()["rms_norm_f32"];
    let mut store = ParamStore::<f32>::with_seed(0);
    let norm = RmsNorm::new(store.scope("norm"), 5);
    assert_eq!(norm.eps_for::<f32>(), f64::from(f32::EPSILON));
    let w = norm.weight.expect("a weight");
    check_against_torch(case, &mut store, &[("weight", w)], |p, x| norm.forward(p, x), (1e-5, 1e-5));
}

#[test]
fn rms_norm_without_weight_matches_torch_with_eps() {
    let case = &fixtures()["rms_norm_eps_no_affine"];
    let mut store = ParamStore::<f64>::with_seed(0);
    let norm = RmsNorm::with_options(store.scope("norm"), 4, false, Some(1e-2));
    assert!(norm.weight.is_none() && store.is_empty());
    check_against_torch(case, &mut store, &[], |p, x| norm.forward(p, x), (1e-13, 1e-12));
}

#[test]
fn group_norm_matches_torch() {
    let case = &fixtures()["group_norm"];
    let mut store = ParamStore::<f64>::with_seed(0);
    let gn = GroupNorm::new(store.scope("gn"), 3, 6);
    let params = [("weight", gn.weight.expect("affine")), ("bias", gn.bias.expect("affine"))];
    check_against_torch(case, &mut store, &params, |p, x| gn.forward(p, x), (1e-13, 1e-12));
}

#[test]
fn group_norm_without_affine_matches_torch() {
    let case = &fixtures()["group_norm_no_affine"];
    let mut store = ParamStore::<f64>::with_seed(0);
    let gn = GroupNorm::with_options(store.scope("gn"), 2, 4, false, 1e-5);
    assert!(store.is_empty());
    check_against_torch(case, &mut store, &[], |p, x| gn.forward(p, x), (1e-13, 1e-12));
}

#[test]
#[should_panic(expected = "GroupNorm: num_groups = 4 does not divide num_channels = 6")]
fn group_norm_refuses_groups_that_do_not_divide_the_channels() {
    let mut store = ParamStore::<f64>::with_seed(0);
    GroupNorm::new(store.scope("gn"), 4, 6);
}

#[test]
#[should_panic(expected = "GroupNorm: input of shape [2, 5, 3] is not (batch, num_channels = 6, …)")]
fn group_norm_names_a_wrong_channel_count() {
    let mut store = ParamStore::<f64>::with_seed(0);
    let gn = GroupNorm::new(store.scope("gn"), 3, 6);
    let tape = Tape::new();
    gn.forward(&store.bind(&tape), tape.var(Tensor::zeros(&[2, 5, 3])));
}

#[test]
fn embedding_with_padding_idx_matches_torch() {
    let case = &fixtures()["embedding_padding"];
    let mut store = ParamStore::<f64>::with_seed(0);
    let config = EmbeddingConfig { padding_idx: Some(2), ..EmbeddingConfig::new(6, 4) };
    let emb = Embedding::with_config(store.scope("emb"), config);
    // Initialized as PyTorch's: the padding row is zeros, the others are not.
    assert!(store.get(emb.weight).data()[8..12].iter().all(|&v| v == 0.0));
    assert!(store.get(emb.weight).data()[4..8].iter().all(|&v| v != 0.0));
    store.set(emb.weight, Tensor::from_vec(nums(case, "weight"), &[6, 4]));
    let ids: Vec<usize> = nums::<f64>(case, "ids").iter().map(|&i| i as usize).collect();
    let tape = Tape::new();
    let p = store.bind(&tape);
    let y = emb.forward_shaped(&p, &ids, &[2, 3]);
    assert_eq!(y.value(), Tensor::from_vec(nums(case, "y"), &[2, 3, 4]));
    let g = tape.constant(Tensor::from_vec(nums(case, "g"), &[2, 3, 4]));
    let grads = p.backward((y * g).sum());
    let grad = grads.get(emb.weight).expect("a gradient");
    assert_close(grad, &Tensor::from_vec(nums(case, "grad_weight"), &[6, 4]), 1e-15, 1e-15);
    assert!(grad.data()[8..12].iter().all(|&v| v == 0.0));
}

#[test]
fn embedding_padding_row_loaded_non_zero_is_looked_up_but_gets_no_gradient() {
    let mut store = ParamStore::<f64>::with_seed(0);
    let emb = Embedding::with_config(
        store.scope("emb"),
        EmbeddingConfig { padding_idx: Some(0), ..EmbeddingConfig::new(3, 2) },
    );
    store.set(emb.weight, Tensor::from_vec(vec![5.0, 6.0, 1.0, 2.0, 3.0, 4.0], &[3, 2]));
    let tape = Tape::new();
    let p = store.bind(&tape);
    let y = emb.forward(&p, &[0, 1, 0]);
    assert_eq!(y.value().data(), &[5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
    let grads = p.backward(y.exp().sum());
    // d Σ exp(y) / d row 1 = exp(row 1); row 0 pads: zero.
    let want = [0.0, 0.0, 1f64.exp(), 2f64.exp(), 0.0, 0.0];
    assert_eq!(grads.get(emb.weight).expect("a gradient").data(), &want);
}

#[test]
#[should_panic(expected = "Embedding: padding_idx 3 out of range for vocab_size 3")]
fn embedding_refuses_a_padding_idx_out_of_range() {
    let mut store = ParamStore::<f64>::with_seed(0);
    Embedding::with_config(store.scope("emb"), EmbeddingConfig { padding_idx: Some(3), ..EmbeddingConfig::new(3, 2) });
}

/// A 4σ interval for the count of successes of `n` draws with probability `p`.
fn binomial_range(n: usize, p: f64) -> std::ops::RangeInclusive<usize> {
    let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
    ((mean - 4.0 * sd).max(0.0) as usize)..=((mean + 4.0 * sd) as usize)
}

#[test]
fn dropout2d_zeroes_whole_channels_with_its_mask_and_rate() {
    let store = ParamStore::<f64>::default();
    let tape = Tape::with_seed(11);
    let (n, c, hw) = (40, 25, 6);
    let data: Vec<f64> = (0..n * c * hw).map(|i| 0.5 + (i % 7) as f64).collect();
    let x = tape.var(Tensor::from_vec(data.clone(), &[n, c, 2, 3]));
    let (y, mask) = Dropout2d::new(0.3).forward_with_mask(&store.bind(&tape), x);
    let mask = mask.expect("training mode draws a mask");
    assert_eq!(mask.shape(), &[n, c, 1, 1]);
    let scale = 1.0 / 0.7;
    assert!(mask.data().iter().all(|&m| m == 0.0 || m == scale));
    // Exactly x ⊙ mask, broadcast over each channel's pixels, and the gradient is the mask.
    let grads = (y * 3.0).sum().backward();
    for (i, ((&yv, &xv), &gv)) in y.value().data().iter().zip(&data).zip(grads[x].data()).enumerate() {
        let m = mask.data()[i / hw];
        assert_eq!(yv, xv * m);
        assert_eq!(gv, 3.0 * m);
    }
    let dropped = mask.data().iter().filter(|&&m| m == 0.0).count();
    assert!(binomial_range(n * c, 0.3).contains(&dropped), "{dropped} of {} channels dropped", n * c);
    // Evaluation mode: the identity.
    let eval = Dropout2d::new(0.3).forward(&store.bind(&tape).eval(), x);
    assert_eq!(eval.id(), x.id());
}

#[test]
fn dropout1d_zeroes_whole_channels_of_batched_and_unbatched_input() {
    let store = ParamStore::<f32>::default();
    let tape = Tape::with_seed(5);
    for shape in [vec![30, 20, 4], vec![600, 4]] {
        let x = tape.var(Tensor::ones(&shape));
        let (y, mask) = Dropout1d::new(0.5).forward_with_mask(&store.bind(&tape), x);
        let mask = mask.expect("a mask");
        let mut mask_shape = shape.clone();
        *mask_shape.last_mut().expect("a length axis") = 1;
        assert_eq!(mask.shape(), mask_shape.as_slice());
        for (channel, &m) in y.value().data().chunks(4).zip(mask.data()) {
            assert!(channel.iter().all(|&v| v == m) && (m == 0.0 || m == 2.0));
        }
        let dropped = mask.data().iter().filter(|&&m| m == 0.0).count();
        assert!(binomial_range(600, 0.5).contains(&dropped), "{dropped} of 600 channels dropped");
    }
}

#[test]
#[should_panic(expected = "Dropout2d: input of shape [3, 4, 5] is not (batch, channels, height, width)")]
fn dropout2d_names_an_input_that_is_not_4d() {
    let store = ParamStore::<f32>::default();
    let tape = Tape::with_seed(5);
    Dropout2d::new(0.5).forward(&store.bind(&tape), tape.var(Tensor::ones(&[3, 4, 5])));
}

#[test]
fn alpha_dropout_constants_match_torch() {
    let case = &fixtures()["alpha_dropout"];
    assert_eq!(case["kept_slopes_agree"], Value::Bool(true));
    let p = case["p"].as_f64().expect("p");
    let (a, b) = AlphaDropout::affine(p);
    let num = |k: &str| case[k].as_f64().expect("a number");
    assert!((a - num("a")).abs() < 1e-14, "a = {a}, PyTorch {}", num("a"));
    assert!((b - num("kept_shift")).abs() < 1e-14, "b = {b}, PyTorch {}", num("kept_shift"));
    let dropped = a * -1.758_099_340_847_376_6 + b;
    assert!((dropped - num("dropped_value")).abs() < 1e-14, "dropped {dropped}, PyTorch {}", num("dropped_value"));
}

#[test]
fn alpha_dropout_follows_its_mask_and_keeps_zero_mean_unit_variance() {
    use autograd::SeedableRng;
    let store = ParamStore::<f64>::default();
    let tape = Tape::with_seed(9);
    let n = 200_000;
    let mut rng = autograd::Rng::seed_from_u64(1);
    let x = tape.var(Tensor::rand_normal(&[n], 0.0, 1.0, &mut rng));
    let (y, keep) = AlphaDropout::new(0.2).forward_with_mask(&store.bind(&tape), x);
    let keep = keep.expect("a mask");
    let (a, b) = AlphaDropout::affine(0.2);
    let dropped_value = a * -1.758_099_340_847_376_6 + b;
    let grads = (y * 2.0).sum().backward();
    let (yv, xv) = (y.value(), x.value());
    for i in 0..n {
        let (k, yi, xi) = (keep.data()[i], yv.data()[i], xv.data()[i]);
        assert!(k == 0.0 || k == 1.0);
        let want = if k == 1.0 { a * xi + b } else { dropped_value };
        assert!((yi - want).abs() < 1e-12, "element {i}: {yi} vs {want}");
        assert_eq!(grads[x].data()[i], if k == 1.0 { 2.0 * a } else { 0.0 });
    }
    let dropped = keep.data().iter().filter(|&&k| k == 0.0).count();
    assert!(binomial_range(n, 0.2).contains(&dropped), "{dropped} of {n} dropped");
    // Self-normalizing: N(0, 1) in, mean 0 and variance 1 out (to sampling error, ~0.01).
    let mean = yv.data().iter().sum::<f64>() / n as f64;
    let var = yv.data().iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.03, "mean {mean}, variance {var}");
    let eval = AlphaDropout::new(0.2).forward(&store.bind(&tape).eval(), x);
    assert_eq!(eval.id(), x.id());
}

#[test]
fn state_dict_names_follow_torch() {
    let mut store = ParamStore::<f32>::with_seed(0);
    let rms = RmsNorm::new(store.scope("norm"), 4);
    let gn = GroupNorm::new(store.scope("gn"), 2, 4);
    let bare = RmsNorm::with_options(store.scope("bare"), 4, false, None);
    let mut map = nn::torch::StateDictMap::new();
    map.rms_norm("norm", &rms).group_norm("gn", &gn).rms_norm("bare", &bare);
    let names: Vec<&str> = map.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["norm.weight", "gn.weight", "gn.bias"]);
    let dict = map.state_dict(&store);
    assert_eq!(dict["gn.bias"], Tensor::zeros(&[4]));
    assert_eq!(dict["norm.weight"], Tensor::ones(&[4]));
}
