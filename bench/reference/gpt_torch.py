"""char-gpt with PyTorch: a decoder-only transformer in nanoGPT's manner, trained on random
tokens, on every core.

vocab 65, block 64, n_embd 128, 4 heads, 4 layers; pre-LayerNorm (with bias) before attention
and before the MLP (128→512→128, exact erf GELU); Linear layers with bias; learned positions; no
dropout (`Gpt(dropout=p)` applies it where pente's GPT does: the embeddings' sum, the attention
probabilities, the attention's and the MLP's outputs); lm_head tied to the token embedding;
weights N(0, 0.02), biases zero: 809,856 parameters. Attention is `F.scaled_dot_product_attention(is_causal=True)` (what nanoGPT uses),
or with `manual` the explicit q·kᵀ/√d, causal mask, softmax, ·v. AdamW lr 1e-3, weight decay
0.1 on the 2-D weights (embeddings and Linear weights) and none on biases and LayerNorms.
Batch 12 × 64 tokens from 16 pre-built random batches, cycled. 10 warm-up steps, then the timed
ones. Figure: training tokens per second. The check is the loss of the last step.

With `10m`, the gpt-10m workload instead: nanoGPT's shakespeare_char sizes (block 256, n_embd
384, 6 heads, 6 layers: 10,770,816 parameters), batch 12 × 256. With `bf16`, the forward and the
loss run under `torch.autocast("cpu", dtype=torch.bfloat16)` as nanoGPT trains (impl
`torch-bf16`): bf16 products, f32 weights, LayerNorm, softmax and optimizer.

Usage: python gpt_torch.py [sdpa|manual] [warmup=10] [steps=50] [10m] [f32|bf16]
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

import sys

from harness import autocast, cores, emit, impl_name, int_args, precision_arg, timed_steps, word_arg

VOCAB, BLOCK, N_EMBD, N_HEAD, N_LAYER, BATCH = 65, 64, 128, 4, 4, 12


class CausalSelfAttention(nn.Module):
    """Packed `qkv` projection (queries, keys, values along its output, in that order) and `out`:
    the layout `pente export --torch` writes (nn::torch::StateDictMap::causal_self_attention)."""

    def __init__(self, manual, n_embd=N_EMBD, n_head=N_HEAD, block=BLOCK, dropout=0.0):
        super().__init__()
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.out = nn.Linear(n_embd, n_embd)
        self.manual = manual
        self.n_head = n_head
        self.dropout = dropout  # on the probabilities and on the output, as pente's layer
        # not part of the state dict: a pente GPT exported for PyTorch loads with strict=True
        self.register_buffer("causal", torch.ones(block, block, dtype=torch.bool).tril(), persistent=False)

    def forward(self, x):
        batch, seq_len, n_embd = x.shape
        # (batch, seq_len, 3·n_embd) → three (batch, n_head, seq_len, head_dim)
        q, k, v = (t.view(batch, seq_len, self.n_head, n_embd // self.n_head).transpose(1, 2)
                   for t in self.qkv(x).chunk(3, dim=-1))
        if self.manual:
            scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
            scores = scores.masked_fill(~self.causal[:seq_len, :seq_len], float("-inf"))
            y = F.dropout(scores.softmax(dim=-1), self.dropout, self.training) @ v
        else:
            p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        y = self.out(y.transpose(1, 2).reshape(batch, seq_len, n_embd))
        return F.dropout(y, self.dropout, self.training)


class Block(nn.Module):
    def __init__(self, manual, n_embd=N_EMBD, n_head=N_HEAD, block=BLOCK, dropout=0.0):
        super().__init__()
        self.dropout = dropout  # on the MLP's output, as pente's TransformerBlock
        self.norm1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(manual, n_embd, n_head, block, dropout)
        self.norm2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + F.dropout(self.mlp(self.norm2(x)), self.dropout, self.training)


class Gpt(nn.Module):
    """pente's GPT (models::char_lm::gpt) in PyTorch: its state dict is what `pente export
    --torch` writes for a char-lm GPT and what `pente import --torch` reads. The defaults are
    the char-gpt workload's sizes."""

    def __init__(self, manual, vocab=VOCAB, block=BLOCK, n_embd=N_EMBD, n_head=N_HEAD, n_layer=N_LAYER,
                 dropout=0.0):
        super().__init__()
        self.vocab = vocab
        self.dropout = dropout  # on the embeddings' sum, as pente's Gpt
        self.tokens = nn.Embedding(vocab, n_embd)
        self.positions = nn.Embedding(block, n_embd)
        self.blocks = nn.Sequential(*(Block(manual, n_embd, n_head, block, dropout) for _ in range(n_layer)))
        self.norm = nn.LayerNorm(n_embd)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, 0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def logits(self, ids):
        """(batch, seq_len, vocab) for ids (batch, seq_len)."""
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))  # (batch, seq_len, n_embd)
        x = F.dropout(x, self.dropout, self.training)
        return self.norm(self.blocks(x)) @ self.tokens.weight.t()  # tied head

    def forward(self, ids, targets):
        logits = self.logits(ids)
        return F.cross_entropy(logits.reshape(-1, self.vocab), targets.reshape(-1))


def main():
    mode = word_arg(("sdpa", "manual"), "sdpa")
    warmup, steps = int_args(10, 50)
    precision = precision_arg()
    ten_m = "10m" in sys.argv[1:]
    block, n_embd, n_head, n_layer = (256, 384, 6, 6) if ten_m else (BLOCK, N_EMBD, N_HEAD, N_LAYER)
    torch.set_num_threads(cores())
    torch.manual_seed(0)
    model = Gpt(manual=mode == "manual", block=block, n_embd=n_embd, n_head=n_head, n_layer=n_layer)
    n_params = sum(p.numel() for p in model.parameters())
    groups = [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    rows = [torch.randint(0, VOCAB, (BATCH, block + 1)) for _ in range(16)]
    batches = [(r[:, :-1].contiguous(), r[:, 1:].contiguous()) for r in rows]

    def step(i):
        with autocast(precision):
            loss = model(*batches[i % len(batches)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    seconds, last = timed_steps(warmup, steps, step, sync=lambda loss: loss.item())
    impl = impl_name("torch" if mode == "sdpa" else "torch-manual-attention", precision)
    emit("gpt-10m" if ten_m else "char-gpt", impl, f"params={n_params}", "tokens_per_s", BATCH * block * steps / seconds,
         steps, seconds,
         last, torch.__version__, torch.get_num_threads())


if __name__ == "__main__":
    main()
