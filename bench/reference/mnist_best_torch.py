"""The digit classifiers of `pente digits train --preset best` and `--preset fast` in PyTorch,
trained with the same recipe, to time them beside pente on the same machine.

Recipe (as `DigitsConfig::best` in models/src/digits/model.rs):
  mlp: dense 784→1024, ReLU, dropout 0.2, dense 1024→1024, ReLU, dropout 0.2, dense 1024→10;
       40 epochs, AdamW lr 1e-3.
  cnn: [conv 3×3 (padding 1, no bias), BatchNorm2d, ReLU] at 32, 32 channels, max-pool 2,
       the same at 64, 64 channels, max-pool 2, dropout 0.25, flatten (64·7·7), dense →10;
       15 epochs, AdamW lr 3e-3.
  Both: all 60,000 training images in batches of 128 reshuffled each epoch, pixels in [0, 1],
  each training image rotated by a uniform angle in [−10°, 10°] and moved by a uniform
  fractional shift in [−2, 2] pixels on each axis, resampled bilinearly with zeros outside
  (affine_grid + grid_sample, align_corners=False: pixel centres as in pente); weight decay
  1e-4 (decoupled); learning rate falling along a cosine to 1 % of its peak at the last step.
  f32, `torch.set_num_threads(2)`.

Fast preset (`--preset fast --model cnn`, as `DigitsConfig::fast`): [conv 3×3 (padding 1, no
  bias), BatchNorm2d, ReLU, max-pool 2] at w, 2w, 4w channels (w = --width, 16; sides 28 → 14 →
  7 → 3), flatten (4w·3·3), dense →10; PyTorch's default initialization. Adam (no weight
  decay) with OneCycleLR peaking at --lr over the run's steps, PyTorch's defaults otherwise
  except cycle_momentum=False (pente's one-cycle schedule moves the rate only); all 60,000
  images in batches of --batch reshuffled each epoch, pixels in [0, 1], no augmentation;
  --epochs (the schedule's length, 1). The ablations: --no-batch-norm (convolutions with biases,
  no batch norm), --constant-lr (Adam at --lr throughout), --width, --batch, --lr.

Clock: the training steps only (augmentation, forward, loss, backward, update). The test
accuracy on the 10,000 test images (eval mode) is measured every --eval-every steps with the
clock stopped. Output: JSON lines as bench/reference/mnist_torch.py's; with --stop-at-target
the run ends at the first evaluation reaching --target (time-to-accuracy runs).

    /work/venv-peers/bin/python bench/reference/mnist_best_torch.py --model cnn --target 0.99 --stop-at-target
    /work/venv-peers/bin/python bench/reference/mnist_best_torch.py --preset fast --model cnn --seed 0
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from mnist_torch import BATCH, THREADS, accuracy, line, load_split


def build(kind):
    if kind == "mlp":
        net = nn.Sequential(
            nn.Linear(784, 1024), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(1024, 1024), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(1024, 10),
        )
        return net, (784,), 40, 1e-3

    def block(a, b):
        return [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

    net = nn.Sequential(
        *block(1, 32), *block(32, 32), nn.MaxPool2d(2),
        *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(64 * 7 * 7, 10),
    )
    return net, (1, 28, 28), 15, 3e-3


FAST = {"epochs": 1, "batch": 128, "lr": 1e-2, "width": 16, "eval_every": 50}


def build_fast(width, batch_norm):
    """The fast preset's CNN (its items are those `FastCnn::torch_state_dict` names)."""
    layers, channels = [], 1
    for i in range(3):
        out = width << i
        layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        channels = out
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 3 * 3, 10))


def augment(images, gen, degrees=10.0, shift=2.0):
    """Each (n, 1, 28, 28) image rotated and moved by its own uniform draw, bilinearly."""
    n = images.shape[0]
    theta = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(degrees)
    t = (torch.rand(n, 2, generator=gen) * 2 - 1) * shift * (2.0 / 28.0)  # pixels → [−1, 1] units
    cos, sin = theta.cos(), theta.sin()
    # The grid maps output to input coordinates: the inverse rotation, minus the shift.
    m = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
    offset = -(m @ t.unsqueeze(2))
    grid = F.affine_grid(torch.cat([m, offset], 2), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def main():
    p = argparse.ArgumentParser(description="PyTorch twin of `pente digits train --preset best`.")
    p.add_argument("--model", choices=("mlp", "cnn"), required=True)
    p.add_argument("--preset", choices=("best", "fast"), default="best")
    p.add_argument("--batch", type=int, default=None, help="fast preset: images per batch [128]")
    p.add_argument("--lr", type=float, default=None, help="fast preset: peak learning rate [1e-2]")
    p.add_argument("--width", type=int, default=None, help="fast preset: first stage's channels [16]")
    p.add_argument("--no-batch-norm", action="store_true", help="fast preset: no batch norm (ablation)")
    p.add_argument("--constant-lr", action="store_true", help="fast preset: no one-cycle (ablation)")
    p.add_argument("--data", default="data/mnist")
    p.add_argument("--epochs", type=int, default=None, help="[40 mlp, 15 cnn; fast preset 1]")
    p.add_argument("--eval-every", type=int, default=None, help="[100; fast preset 50]")
    p.add_argument("--target", type=float, default=None, help="[0.988 mlp, 0.995 cnn]")
    p.add_argument("--stop-at-target", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    fast = args.preset == "fast"
    if fast and args.model != "cnn":
        p.error("--preset fast: the fast preset is a CNN (use --model cnn)")
    target = args.target if args.target is not None else {"mlp": 0.988, "cnn": 0.995}[args.model]
    if fast and args.target is None:
        target = 0.99
    eval_every = args.eval_every or (FAST["eval_every"] if fast else 100)

    torch.set_num_threads(THREADS)
    torch.manual_seed(args.seed)
    train_x, train_y = load_split(args.data, "train")
    test_x, test_y = load_split(args.data, "t10k")
    if fast:
        net, shape = build_fast(args.width or FAST["width"], not args.no_batch_norm), (1, 28, 28)
        epochs, lr, batch = FAST["epochs"], args.lr or FAST["lr"], args.batch or FAST["batch"]
    else:
        net, shape, epochs, lr = build(args.model)
        batch = BATCH
    epochs = args.epochs or epochs
    train_x, test_x = train_x.reshape(-1, 1, 28, 28), test_x.reshape(-1, *shape)
    n = train_x.shape[0]
    total = epochs * math.ceil(n / batch)
    if fast:
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        if args.constant_lr:
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        else:
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, cycle_momentum=False)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(args.seed)

    steps, seen, clock, best, first_hit = 0, 0, 0.0, 0.0, None
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for lo in range(0, n, batch):
            rows = order[lo:lo + batch]
            start = time.perf_counter()
            x = train_x[rows] if fast else augment(train_x[rows], gen).reshape(-1, *shape)
            loss = F.cross_entropy(net(x), train_y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            clock += time.perf_counter() - start
            steps += 1
            seen += rows.shape[0]
            if steps % eval_every == 0 or steps == total:
                acc = accuracy(net, test_x, test_y)
                best = max(best, acc)
                if first_hit is None and acc >= target:
                    first_hit = {"step": steps, "epochs": round(steps * batch / n, 2), "train_s": round(clock, 2)}
                line(step=steps, epochs=round(steps * batch / n, 2), test_acc=acc, train_s=round(clock, 2))
                if first_hit is not None and args.stop_at_target:
                    break
        if first_hit is not None and args.stop_at_target:
            break
    line(model=args.model, preset=args.preset, torch=torch.__version__, target=target, first_hit=first_hit,
         best_acc=best, samples_per_s=round(seen / max(clock, 1e-9), 1), steps=steps,
         threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
