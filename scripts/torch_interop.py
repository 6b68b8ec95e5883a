#!/usr/bin/env python3
"""PyTorch interop, proved with weights nobody here wrote by hand (needs torch, numpy,
safetensors; `scripts/torch_interop.sh` installs them into an ignored venv and builds pente):

(a) PyTorch trains the GPT of bench/reference/gpt_torch.py (pente's default char-lm GPT: block
    64, width 128, 4 heads, 4 layers) for --steps steps on the Shakespeare corpus, with pente's
    vocabulary and split (scripts/char_lm_data.py), and saves its state dict with
    safetensors.torch. `pente import --torch` loads it into a pente checkpoint; pente's logits of
    two validation windows must equal PyTorch's within 1e-5 and its validation loss PyTorch's
    within 1e-5.
(b) pente trains the digits CNN for --cnn-steps steps; `pente export --torch` writes its state
    dict; PyTorch loads it into mnist_torch.py's CNN with strict=True and scores the 10,000 test
    images: the number it gets wrong must be the number `pente digits eval` gets wrong.

Usage: torch_interop.py WORK_DIR [--pente target/release/pente] [--scores PATH] [--steps 300]
       [--cnn-steps 300]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "reference"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import char_lm_data  # noqa: E402
from gpt_torch import Gpt  # noqa: E402
from mnist_torch import build, load_split  # noqa: E402

GPT = dict(block=64, n_embd=128, n_head=4, n_layer=4)


def run(cmd):
    print("$", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    print(out.rstrip(), flush=True)
    return out


def gpt_from_pytorch(args, work):
    with open(os.path.join(ROOT, "data", "shakespeare", "shakespeare.txt"), encoding="utf-8") as f:
        text = f.read()
    train_text, val_text = char_lm_data.split(text)
    chars = char_lm_data.vocab(train_text)
    train = torch.tensor(char_lm_data.encode(chars, train_text))
    val = char_lm_data.encode(chars, val_text)
    block = GPT["block"]

    torch.manual_seed(0)
    model = Gpt(manual=False, vocab=len(chars), **GPT)
    groups = [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-3)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        starts = torch.randint(0, len(train) - block - 1, (12,))
        rows = torch.stack([train[s:s + block + 1] for s in starts])
        loss = model(rows[:, :-1], rows[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == args.steps:
            print(f"pytorch step {step}: training loss {loss.item():.4f} ({time.perf_counter() - start:.0f} s)")
    model.eval()
    state = os.path.join(work, "gpt.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, state)

    val_file = os.path.join(work, "val.txt")
    with open(val_file, "w", encoding="utf-8") as f:
        f.write(val_text)
    starts = char_lm_data.eval_starts(len(val), block)
    with torch.no_grad():
        total, count = 0.0, 0
        for lo in range(0, len(starts), 64):
            w = torch.tensor([val[s:s + block + 1] for s in starts[lo:lo + 64]])
            logits = model.logits(w[:, :-1])
            total += F.cross_entropy(logits.reshape(-1, len(chars)), w[:, 1:].reshape(-1), reduction="sum").item()
            count += w[:, 1:].numel()
        torch_loss = total / count
        torch_logits = model.logits(torch.tensor(val[:2 * block]).reshape(2, block))

    template = os.path.join(work, "template.ckpt")
    run([args.pente, "--out", work, "char-lm", "train", "--model", "gpt", "--steps", "1",
         "--block", str(block), "--n-embd", str(GPT["n_embd"]), "--n-head", str(GPT["n_head"]),
         "--n-layer", str(GPT["n_layer"]), "--save", template])
    imported = os.path.join(work, "gpt.ckpt")
    run([args.pente, "import", "--torch", state, "--like", template, "--save", imported])
    run([args.pente, "char-lm", "eval", "--load", imported, val_file])
    scores = os.path.join(work, "scores.safetensors")
    run([args.scores, imported, val_file, scores])
    ours = load_file(scores)
    with safe_open(scores, framework="pt") as f:
        pente_loss = float(f.metadata()["loss"])
    assert ours["ids"].long().tolist() == torch.tensor(val[:2 * block]).reshape(2, block).tolist(), "ids differ"
    diff = (ours["logits"] - torch_logits).abs().max().item()
    print(f"(a) GPT trained by PyTorch ({args.steps} steps), loaded by pente: logits of 2 validation windows "
          f"differ by at most {diff:.2e}; validation loss pente {pente_loss:.6f}, PyTorch {torch_loss:.6f} "
          f"(difference {abs(pente_loss - torch_loss):.2e})")
    assert diff <= 1e-5, f"logits differ by {diff}"
    assert abs(pente_loss - torch_loss) <= 1e-5, (pente_loss, torch_loss)


def cnn_from_pente(args, work):
    ckpt = os.path.join(work, "cnn.ckpt")
    run([args.pente, "--out", work, "digits", "train", "--model", "cnn", "--epochs", "1", "--max-steps",
         str(args.cnn_steps), "--no-figures", "--save", ckpt])
    out = run([args.pente, "--out", work, "digits", "eval", "--load", ckpt])
    pente_wrong = int(re.search(r"\((\d+) of 10000 wrong\)", out).group(1))
    state = os.path.join(work, "cnn.safetensors")
    run([args.pente, "export", "--torch", state, "--load", ckpt])

    net, shape = build("cnn")
    net.load_state_dict(load_file(state), strict=True)
    net.eval()
    with safe_open(state, framework="pt") as f:
        norm = json.loads(f.metadata()["pente.config"])["norm"]
    images, labels = load_split(os.path.join(ROOT, "data", "mnist"), "t10k")
    x = ((images - norm["mean"]) / norm["std"]).reshape(-1, *shape)
    with torch.no_grad():
        predicted = torch.cat([net(x[lo:lo + 1000]).argmax(dim=1) for lo in range(0, len(x), 1000)])
    torch_wrong = int((predicted != labels).sum())
    print(f"(b) CNN trained by pente ({args.cnn_steps} steps), scored by PyTorch: {torch_wrong} of 10000 wrong "
          f"({100 * (1 - torch_wrong / 10000):.2f} %); pente: {pente_wrong} wrong")
    assert torch_wrong == pente_wrong, (torch_wrong, pente_wrong)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work")
    p.add_argument("--pente", default=os.path.join(ROOT, "target", "release", "pente"))
    p.add_argument("--scores", default=os.path.join(ROOT, "target", "release", "examples", "char_lm_scores"))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--cnn-steps", type=int, default=300)
    args = p.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.work, exist_ok=True)
    print(f"torch {torch.__version__}, numpy {np.__version__}")
    gpt_from_pytorch(args, args.work)
    cnn_from_pente(args, args.work)
    print("torch interop: both directions agree")


if __name__ == "__main__":
    main()
