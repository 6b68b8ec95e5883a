#!/usr/bin/env bash
# pente's digit classifier beside PyTorch's on this machine, in one run, with the protocol of
# bench/reference/mnist_torch.py (its docstring has the exact definition): all 60,000 training
# images, batch 128, Adam 1e-3 (constant), pixels in [0, 1], test accuracy every 100 steps off
# the training clock.
#
#   bash scripts/digits_speed.sh [mlp|cnn] [PYTHON]
#
# PYTHON defaults to `python3` and needs torch and numpy (e.g. a venv with
# `pip install torch numpy`). Writes out/digits_speed_<model>.{torch,pente}.jsonl and the figure
# docs/figures/digits_speed_<model>.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-mlp}"
python="${2:-python3}"
epochs=6  # PyTorch reaches 98 % (MLP) after about 4.3 epochs and 99 % (CNN) after about 4.9
mkdir -p out
cargo build --release --quiet -p pente-cli --bin pente
"$python" bench/reference/mnist_torch.py --model "$model" --data data/mnist --epochs "$epochs" \
  | tee "out/digits_speed_$model.torch.jsonl"
"${CARGO_TARGET_DIR:-target}/release/pente" --out out digits train --model "$model" --epochs "$epochs" --validation 0 --constant-lr \
  --eval-every 100 --save "out/digits_speed_$model.ckpt" --no-figures | tee "out/digits_speed_$model.pente.jsonl"
"${CARGO_TARGET_DIR:-target}/release/pente" --out out digits speed --pente "out/digits_speed_$model.pente.jsonl" \
  --torch "out/digits_speed_$model.torch.jsonl" --figure "docs/figures/digits_speed_$model.svg"
