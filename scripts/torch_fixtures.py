#!/usr/bin/env python3
"""Writes the checked-in PyTorch fixtures that pente's tests load (run it with PyTorch and
safetensors installed; the files it writes are committed, CI does not run it):

nn/tests/fixtures/torch/layers.safetensors      the state dict of `Layers` below (PyTorch wrote it)
nn/tests/fixtures/torch/layers_io.safetensors   inputs and the outputs PyTorch computed from them
models/tests/fixtures/torch/gpt.safetensors     a small GPT (bench/reference/gpt_torch.py) trained
                                                 40 steps by PyTorch on corpus.txt
models/tests/fixtures/torch/gpt_io.safetensors  ids and PyTorch's logits; metadata "val_loss",
                                                 PyTorch's loss on corpus.txt's validation part
models/tests/fixtures/torch/corpus.txt          the first 3000 characters of the Shakespeare corpus

Usage: python scripts/torch_fixtures.py   (from the project root)
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "reference"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from gpt_torch import Block, Gpt  # noqa: E402
import char_lm_data  # noqa: E402

GPT = dict(block=8, n_embd=16, n_head=2, n_layer=2)


class Layers(nn.Module):
    """One of every layer pente maps, at small sizes."""

    def __init__(self):
        super().__init__()
        # a CNN head: conv → ReLU → max-pool → flatten → linear (flatten's order matters)
        self.cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
        self.mlp = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
        self.emb = nn.Embedding(7, 8)
        self.norm = nn.LayerNorm(8)
        self.block = Block(True, n_embd=8, n_head=2, block=6)
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)


def layers_fixture(out_dir):
    torch.manual_seed(1)
    m = Layers()
    with torch.no_grad():
        for p in m.parameters():  # away from the init's zeros and ones, so that nothing is trivial
            p.copy_(torch.randn_like(p) * 0.5)
    img = torch.randn(2, 1, 6, 6)
    vec = torch.randn(3, 4)
    ids = torch.tensor([[0, 3, 6, 1, 2], [5, 5, 4, 0, 1]])
    seq = torch.randn(2, 5, 8)
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)  # True where attention is not allowed
    with torch.no_grad():
        io = {
            "img": img, "vec": vec, "ids": ids.float(), "seq": seq,
            "cnn_out": m.cnn(img),
            "mlp_out": m.mlp(vec),
            "emb_out": m.emb(ids),
            "norm_out": m.norm(seq),
            "block_out": m.block(seq),
            "mha_out": m.mha(seq, seq, seq, attn_mask=causal, need_weights=False)[0],
        }
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, os.path.join(out_dir, "layers.safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(out_dir, "layers_io.safetensors"))


def gpt_fixture(out_dir):
    with open(os.path.join(ROOT, "data", "shakespeare", "shakespeare.txt"), encoding="utf-8") as f:
        text = f.read()[:3000]
    with open(os.path.join(out_dir, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    train_text, val_text = char_lm_data.split(text)
    chars = char_lm_data.vocab(train_text)
    train = torch.tensor(char_lm_data.encode(chars, train_text))
    val = char_lm_data.encode(chars, val_text)
    torch.manual_seed(0)
    model = Gpt(manual=True, vocab=len(chars), **GPT)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    block = GPT["block"]
    for _ in range(40):
        starts = torch.randint(0, len(train) - block - 1, (8,))
        rows = torch.stack([train[s:s + block + 1] for s in starts])
        loss = model(rows[:, :-1], rows[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        ids = train[:2 * block].reshape(2, block)
        logits = model.logits(ids)
        windows = torch.tensor([val[s:s + block + 1] for s in char_lm_data.eval_starts(len(val), block)])
        val_loss = model(windows[:, :-1], windows[:, 1:]).item()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out_dir, "gpt.safetensors"))
    save_file({"ids": ids.float(), "logits": logits.contiguous()}, os.path.join(out_dir, "gpt_io.safetensors"),
              metadata={"val_loss": repr(val_loss), "vocab": str(len(chars)),
                        "config": ",".join(f"{k}={v}" for k, v in GPT.items())})
    print(f"gpt fixture: vocab {len(chars)}, validation loss {val_loss:.6f} ({len(windows)} windows)")


def main():
    nn_dir = os.path.join(ROOT, "nn", "tests", "fixtures", "torch")
    models_dir = os.path.join(ROOT, "models", "tests", "fixtures", "torch")
    os.makedirs(nn_dir, exist_ok=True)
    os.makedirs(models_dir, exist_ok=True)
    layers_fixture(nn_dir)
    gpt_fixture(models_dir)
    print(f"torch {torch.__version__}: wrote {nn_dir} and {models_dir}")


if __name__ == "__main__":
    main()
