"""The char-level GPT on Shakespeare with PyTorch, with the recipe of `pente char-lm train`
and the same training time limit: the reference beside `pente char-lm train --preset best`
(scripts/char_lm_best.sh runs both).

Same data: data/shakespeare/shakespeare.txt split by position, the first 90 % of the
characters train and the rest validate; the vocabulary is the training text's characters,
sorted, and the unknown symbol U+FFFD (a validation character outside it maps to it): 78
symbols. Same model: `Gpt` of gpt_torch.py (pente's GPT: learned positions, pre-LayerNorm
blocks, exact GELU, tied head, N(0, 0.02), dropout where pente applies it, --dropout). Same training: each step `batch`
random windows of block + 1 characters (uniform starts; PyTorch's generator, not pente's),
mean cross-entropy over every position, AdamW (betas 0.9/0.999, eps 1e-8) with weight decay on
the 2-D weights only, the global gradient norm clipped to 1, the learning rate warmed up
linearly from lr/warmup over `warmup` steps then cosine-decayed to lr/10 at `steps` (pente's
LrSchedule, step for step); bf16 runs the forward and the loss under
`torch.autocast("cpu", dtype=torch.bfloat16)`, weights and optimizer in f32.

The clock: as pente's --time-limit, only the steps are timed (drawing the batch, forward,
backward, clipping, the update); training stops after the first step that brings their sum to
the limit, or after `steps`. Validations every `eval_every` steps (on 128 evenly spaced
validation windows) are off the clock. The final loss is over the whole validation split as
pente measures it: consecutive non-overlapping windows of block + 1 characters, every position
predicted, the mean in nats per character.

Prints the validations as they come, then one JSON line: framework, version, threads,
precision, parameters, steps, train_seconds, tokens_per_s, val_loss (nats/char), wall_seconds.

Usage: python char_lm_torch.py [--time-limit S] [--steps N] [--batch-size B] [--block T]
       [--n-embd C] [--n-head H] [--n-layer L] [--dropout P] [--lr LR] [--warmup W] [--weight-decay D]
       [--precision f32|bf16] [--eval-every N] [--threads N] [--seed S] [--corpus FILE]
The defaults are pente's `--preset best` (models/src/char_lm/preset.rs).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_torch import Gpt  # noqa: E402  (pente's GPT and its state-dict names)
from harness import autocast  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
UNKNOWN = "\ufffd"


def arguments():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--time-limit", type=float, default=1200.0, help="seconds of training steps")
    a.add_argument("--steps", type=int, default=2800)
    a.add_argument("--batch-size", type=int, default=32)
    a.add_argument("--block", type=int, default=128)
    a.add_argument("--n-embd", type=int, default=192)
    a.add_argument("--n-head", type=int, default=6)
    a.add_argument("--n-layer", type=int, default=4)
    a.add_argument("--dropout", type=float, default=0.0)
    a.add_argument("--lr", type=float, default=2e-3)
    a.add_argument("--min-lr-fraction", type=float, default=0.1)
    a.add_argument("--warmup", type=int, default=200)
    a.add_argument("--weight-decay", type=float, default=0.1)
    a.add_argument("--grad-clip", type=float, default=1.0)
    a.add_argument("--precision", choices=("f32", "bf16"), default="bf16")
    a.add_argument("--eval-every", type=int, default=500)
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--corpus", default=os.path.join(ROOT, "data", "shakespeare", "shakespeare.txt"))
    return a.parse_args()


def lr_at(step, args):
    """pente's LrSchedule with Decay::Cosine: the rate of step `step` (0-based)."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    span = args.steps - args.warmup
    min_lr = args.lr * args.min_lr_fraction
    s = step - args.warmup
    if span <= 0 or s >= span:
        return min_lr
    return min_lr + (args.lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * s / span))


def split(path):
    """Training and validation ids, and the vocabulary size, as pente's Corpus::new builds them."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    cut = int(len(text) * 0.9)  # characters, as data::split_text
    train_text, val_text = text[:cut], text[cut:]
    chars = sorted(set(train_text))
    if UNKNOWN not in chars:
        chars.append(UNKNOWN)
    index = {c: i for i, c in enumerate(chars)}
    unknown = index[UNKNOWN]
    encode = lambda t: torch.tensor([index.get(c, unknown) for c in t], dtype=torch.long)  # noqa: E731
    return encode(train_text), encode(val_text), len(chars)


@torch.no_grad()
def validation_loss(model, val, block, max_windows=None):
    """Mean cross-entropy (nats/char) over the non-overlapping windows of block + 1 ids of
    `val` (CharLm::eval_starts), or over `max_windows` of them evenly spaced."""
    model.eval()
    starts = list(range(0, len(val) - block, block))
    if max_windows and max_windows < len(starts):
        n = len(starts)
        starts = [starts[i * n // max_windows] for i in range(max_windows)]
    total, count = 0.0, 0
    for i in range(0, len(starts), 16):
        rows = torch.stack([val[s:s + block + 1] for s in starts[i:i + 16]])
        logits = model.logits(rows[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, model.vocab), rows[:, 1:].reshape(-1), reduction="sum").item()
        count += rows[:, 1:].numel()
    model.train()
    return total / count


def main():
    args = arguments()
    wall_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, val, vocab = split(args.corpus)
    model = Gpt(manual=False, vocab=vocab, block=args.block, n_embd=args.n_embd, n_head=args.n_head,
                n_layer=args.n_layer, dropout=args.dropout)
    params = sum(p.numel() for p in model.parameters())
    groups = [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": args.weight_decay},
              {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    offsets = torch.arange(args.block + 1)
    print(f"torch {torch.__version__}: {params} parameters, vocabulary {vocab}, {args.steps} steps of "
          f"{args.batch_size} windows, {args.precision}, {torch.get_num_threads()} threads, "
          f"time limit {args.time_limit} s", flush=True)

    train_seconds, step = 0.0, 0
    while step < args.steps:
        t0 = time.perf_counter()
        starts = torch.randint(0, len(train) - args.block, (args.batch_size,))
        rows = train[starts[:, None] + offsets]  # (batch, block + 1)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args)
        with autocast(args.precision):
            loss = model(rows[:, :-1], rows[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        loss = loss.item()
        train_seconds += time.perf_counter() - t0
        step += 1
        if not math.isfinite(loss):
            sys.exit(f"step {step}: the training loss is {loss}")
        out_of_time = train_seconds >= args.time_limit
        if step % args.eval_every == 0 or step == args.steps or out_of_time:
            v = validation_loss(model, val, args.block, 128)
            print(f"step {step:>7}: validation {v:.4f} nats/char (128 windows), training loss {loss:.4f}, "
                  f"{train_seconds:.1f} s", flush=True)
        if out_of_time:
            print(f"stopped by the time limit {args.time_limit} s after step {step} of {args.steps}", flush=True)
            break

    val_loss = validation_loss(model, val, args.block)
    tokens = step * args.batch_size * args.block
    print(json.dumps({
        "framework": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(),
        "precision": args.precision, "parameters": params, "steps": step,
        "train_seconds": round(train_seconds, 2), "tokens_per_s": round(tokens / max(train_seconds, 1e-9)),
        "val_loss": round(val_loss, 4), "wall_seconds": round(time.perf_counter() - wall_start, 1),
    }), flush=True)


if __name__ == "__main__":
    main()
