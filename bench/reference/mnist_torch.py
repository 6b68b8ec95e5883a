"""The digit classifier in PyTorch, trained as `pente digits train --validation 0 --constant-lr
--eval-every 100` trains it, for `pente digits speed --torch FILE`.

Data: real MNIST, the four IDX files `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` of --data,
read with gzip and NumPy; pixels divided by 255 into [0, 1], nothing else (no normalization, no
augmentation). Training uses all 60,000 training images, reshuffled each epoch by a generator
seeded with --seed, in batches of 128 (the last batch of an epoch holds the 96 left over: 469
steps per epoch).

Models (PyTorch's default initialization, seed --seed):
  mlp: dense 784→512, ReLU, dense 512→256, ReLU, dense 256→10.
  cnn: conv 3×3 1→32 (no padding), ReLU, conv 3×3 32→64, ReLU, max-pool 2×2, dropout 0.25,
       flatten (64·12·12 = 9216), dense 9216→128, ReLU, dropout 0.5, dense 128→10.
Loss: mean softmax cross-entropy of the logits. Optimizer: Adam, learning rate 1e-3, constant,
PyTorch's default betas and epsilon, no weight decay. f32, `torch.set_num_threads(2)`.

Clock: only the training steps are timed (forward, loss, backward, update). The test accuracy on
the 10,000 test images (eval mode, so no dropout) is measured every --eval-every steps and after
the last step of each epoch, with the clock stopped.

Output, one JSON object per line:
  after each evaluation:
    {"step": S, "epochs": E, "test_acc": A, "train_s": T}
  E is S·128 / 60000 and T the training seconds so far; then, once, the summary:
    {"model": "mlp", "torch": VERSION, "target": 0.98,
     "first_hit": {"step": S, "epochs": E, "train_s": T} or null,
     "best_acc": A, "samples_per_s": R, "steps": N, "threads": 2}
  first_hit is the first evaluation whose accuracy reached --target (default 0.98 for the MLP,
  0.99 for the CNN) and R the training images seen divided by the training seconds. Only the
  summary holds "samples_per_s"; `pente digits speed` reads that last line. Keep "first_hit"
  before any other "train_s" in it: the reader takes the first "train_s" of the line.

Usage, from the project root (scripts/digits_speed.sh runs it beside pente):
  python bench/reference/mnist_torch.py --model mlp --data data/mnist --epochs 6
  python bench/reference/mnist_torch.py --model cnn --max-steps 30 --eval-every 30   # smoke test
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BATCH = 128
THREADS = 2


def load_idx(path):
    """An IDX file as a uint8 array shaped as its header says (images: n×28×28, labels: n)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zeros, dtype_code, ndim = raw[0], raw[2], raw[3]
    if zeros != 0 or raw[1] != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {body.size} bytes of data for dimensions {dims}")
    return body.reshape(dims)


def load_split(data_dir, prefix):
    """(pixels in [0, 1] as float32 n×28×28, labels as int64) of `train` or `t10k`."""
    images = load_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = load_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{data_dir}: {images.shape[0]} {prefix} images but {labels.shape[0]} labels")
    return torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64))


def build(kind):
    """The network and the shape one input takes (flat for the MLP, one channel for the CNN)."""
    if kind == "mlp":
        net = nn.Sequential(
            nn.Linear(28 * 28, 512), nn.ReLU(),
            nn.Linear(512, 256), nn.ReLU(),
            nn.Linear(256, 10),
        )
        return net, (28 * 28,)
    net = nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3), nn.ReLU(),
        nn.Conv2d(32, 64, kernel_size=3), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(64 * 12 * 12, 128), nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 10),
    )
    return net, (1, 28, 28)


@torch.no_grad()
def accuracy(net, images, labels, chunk=1000):
    """Fraction of `images` classified as `labels`, in eval mode; leaves the net in train mode."""
    net.eval()
    right = 0
    for lo in range(0, images.shape[0], chunk):
        right += int((net(images[lo:lo + chunk]).argmax(dim=1) == labels[lo:lo + chunk]).sum())
    net.train()
    return right / images.shape[0]


def line(**fields):
    print(json.dumps(fields), flush=True)


def main():
    p = argparse.ArgumentParser(description="PyTorch reference of pente's digit classifier (see the docstring).")
    p.add_argument("--model", choices=("mlp", "cnn"), required=True)
    p.add_argument("--data", default="data/mnist", help="directory of the four MNIST .gz files")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=100, help="steps between test evaluations")
    p.add_argument("--target", type=float, default=None, help="test accuracy to reach [0.98 mlp, 0.99 cnn]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=0,
                   help="stop after this many steps (0: no limit); for smoke tests, not for measurements")
    args = p.parse_args()
    target = args.target if args.target is not None else {"mlp": 0.98, "cnn": 0.99}[args.model]

    torch.set_num_threads(THREADS)
    torch.manual_seed(args.seed)
    train_x, train_y = load_split(args.data, "train")
    test_x, test_y = load_split(args.data, "t10k")
    net, shape = build(args.model)
    train_x, test_x = train_x.reshape(-1, *shape), test_x.reshape(-1, *shape)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    order_rng = torch.Generator().manual_seed(args.seed)
    n = train_x.shape[0]

    steps, seen, clock = 0, 0, 0.0
    best, first_hit = 0.0, None

    def evaluate():
        nonlocal best, first_hit
        acc = accuracy(net, test_x, test_y)
        best = max(best, acc)
        epochs = round(steps * BATCH / n, 2)
        if first_hit is None and acc >= target:
            first_hit = {"step": steps, "epochs": epochs, "train_s": round(clock, 2)}
        line(step=steps, epochs=epochs, test_acc=acc, train_s=round(clock, 2))

    limit = args.max_steps if args.max_steps > 0 else None
    for _ in range(args.epochs):
        if limit is not None and steps >= limit:
            break
        order = torch.randperm(n, generator=order_rng)
        last_eval = None
        for lo in range(0, n, BATCH):
            if limit is not None and steps >= limit:
                break
            rows = order[lo:lo + BATCH]
            start = time.perf_counter()
            loss = F.cross_entropy(net(train_x[rows]), train_y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            clock += time.perf_counter() - start
            steps += 1
            seen += rows.shape[0]
            if args.eval_every > 0 and steps % args.eval_every == 0:
                evaluate()
                last_eval = steps
        if last_eval != steps:
            evaluate()

    line(model=args.model, torch=torch.__version__, target=target, first_hit=first_hit, best_acc=best,
         samples_per_s=round(seen / max(clock, 1e-9), 1), steps=steps, threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
