//! A small GPT whose transformer blocks are checkpointed (`TransformerBlock::forward_checkpointed`)
//! gives the same loss and the same gradients, to the last bit, as the same GPT without
//! checkpoints, with dropout on, in f32 and f64; and a segment that reaches a parameter it was
//! not given is refused with a message that says so.

use autograd::{Float, Tape, Tensor};
use nn::{Embedding, Init, LayerNorm, ParamGrads, ParamStore, TransformerBlock, TransformerConfig};

const VOCAB: usize = 11;
const BATCH: usize = 2;
const SEQ_LEN: usize = 5;

/// wte + wpe → 3 blocks → ln_f → · wteᵀ, nanoGPT's layout.
struct SmallGpt {
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<TransformerBlock>,
    ln_f: LayerNorm,
}

fn small_gpt<T: Float>(store: &mut ParamStore<T>) -> SmallGpt {
    let cfg = TransformerConfig { n_embd: 8, n_head: 2, dropout: 0.2, ..Default::default() };
    let init = Init::Normal { mean: 0.0, std: 0.3 };
    let wte = Embedding::with_init(store.scope("wte"), VOCAB, cfg.n_embd, init);
    let wpe = Embedding::with_init(store.scope("wpe"), SEQ_LEN, cfg.n_embd, init);
    let blocks = (0..3).map(|i| TransformerBlock::new(store.scope("blocks").scope(i), &cfg)).collect();
    let ln_f = LayerNorm::new(store.scope("ln_f"), cfg.n_embd);
    SmallGpt { wte, wpe, blocks, ln_f }
}

/// The loss, its parameters' gradients, and the gradients of the embedding and of the blocks'
/// input (the embedding after dropout).
#[allow(clippy::type_complexity)]
fn loss_and_grads<T: Float>(
    store: &ParamStore<T>,
    gpt: &SmallGpt,
    checkpointed: bool,
) -> (T, ParamGrads<T>, Tensor<T>, Tensor<T>) {
    let ids: Vec<usize> = (0..BATCH * SEQ_LEN).map(|i| (i * 7 + 3) % VOCAB).collect();
    let targets: Vec<usize> = (0..BATCH * SEQ_LEN).map(|i| (i * 5 + 1) % VOCAB).collect();
    let tape = Tape::with_seed(17);
    let p = store.bind(&tape);
    let tok = gpt.wte.forward_shaped(&p, &ids, &[BATCH, SEQ_LEN]);
    let embedded = tok + p.get(gpt.wpe.weight); // (batch, seq_len, n_embd)
    let input = embedded.dropout(0.2, true);
    let mut x = input;
    for block in &gpt.blocks {
        x = if checkpointed { block.forward_checkpointed(&p, x) } else { block.forward(&p, x) };
    }
    let x = gpt.ln_f.forward(&p, x).reshape(&[BATCH * SEQ_LEN, 8]);
    let logits = x.matmul(p.get(gpt.wte.weight).t()); // tied head
    let loss = logits.dropout(0.1, true).cross_entropy(&targets);
    let mut grads = loss.backward();
    let input_grad = grads.take(input).expect("the blocks' input gets a gradient");
    let embedded_grad = grads.take(embedded).expect("the embedding gets a gradient");
    (loss.item(), p.grads(grads), input_grad, embedded_grad)
}

fn bits<T: Float>(t: &Tensor<T>) -> Vec<u64> {
    t.data().iter().map(|x| x.to_f64().to_bits()).collect()
}

fn checkpointed_gpt_matches_to_the_bit<T: Float>() {
    let mut store = ParamStore::<T>::with_seed(3);
    let gpt = small_gpt(&mut store);
    let (plain_loss, plain, plain_input, plain_embedded) = loss_and_grads(&store, &gpt, false);
    let (ckpt_loss, ckpt, ckpt_input, ckpt_embedded) = loss_and_grads(&store, &gpt, true);
    assert_eq!(plain_loss.to_f64().to_bits(), ckpt_loss.to_f64().to_bits(), "loss");
    assert_eq!(bits(&plain_input), bits(&ckpt_input), "the blocks' input gradient");
    assert_eq!(bits(&plain_embedded), bits(&ckpt_embedded), "the embedding's gradient");
    let mut compared = 0;
    for (id, name, _) in store.iter() {
        let (a, b) = (plain.get(id).expect("every parameter is used"), ckpt.get(id));
        let b = b.unwrap_or_else(|| panic!("{name} got no gradient through the checkpoint"));
        assert_eq!(bits(a), bits(b), "{name}");
        compared += 1;
    }
    assert_eq!(compared, store.len());
    assert!(plain_embedded.data().iter().any(|g| g.to_f64() == 0.0), "dropout zeroed some of the embedding's gradient");
}

#[test]
fn checkpointed_blocks_give_bit_identical_gradients_in_f32() {
    checkpointed_gpt_matches_to_the_bit::<f32>();
}

#[test]
fn checkpointed_blocks_give_bit_identical_gradients_in_f64() {
    checkpointed_gpt_matches_to_the_bit::<f64>();
}

#[test]
fn block_params_are_all_of_the_blocks_parameters() {
    let mut store = ParamStore::<f32>::with_seed(0);
    let cfg = TransformerConfig { n_embd: 8, n_head: 2, ..Default::default() };
    let block = TransformerBlock::new(store.scope("b"), &cfg);
    let mut listed: Vec<&str> = block.params().into_iter().map(|id| store.name(id)).collect();
    let mut all: Vec<&str> = store.names().collect();
    listed.sort_unstable();
    all.sort_unstable();
    assert_eq!(listed, all);
}

#[test]
#[should_panic(expected = "is used inside a checkpointed segment but was not passed to it")]
fn a_segment_using_a_parameter_it_was_not_given_is_refused() {
    let mut store = ParamStore::<f64>::with_seed(0);
    let cfg = TransformerConfig { n_embd: 8, n_head: 2, ..Default::default() };
    let block = TransformerBlock::new(store.scope("b"), &cfg);
    let tape = Tape::new();
    let p = store.bind(&tape);
    let x = tape.var(Tensor::ones(&[1, 3, 8]));
    let partial = block.params()[..2].to_vec(); // ln_1 only
    p.checkpoint(&partial, &[x], move |p, xs| block.forward(p, xs[0]));
}
