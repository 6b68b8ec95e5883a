#!/usr/bin/env bash
# ONNX export checked by the real onnxruntime: pente trains the four networks briefly (fixed
# seeds), exports each with sample inputs and its own outputs beside it, and onnxruntime must
# reproduce the outputs (1e-5) and the digits CNN's MNIST test accuracy exactly; likewise for a
# graph using every exportable op of autograd's registry (onnx/examples/every_op.rs).
# Needs python3 with venv and PyPI (onnxruntime, numpy, safetensors: small wheels), or
# PYTHON=/path/to/python with those installed. About a minute and a half on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -z "${PYTHON:-}" ]; then
  . scripts/lib/pyvenv.sh
  pyvenv "$work/venv" onnxruntime numpy safetensors
fi

cargo build --release --quiet -p pente-cli --bin pente
pente="${CARGO_TARGET_DIR:-target}/release/pente"
out="$work/out"
models="$work/models"
mkdir -p "$models"
run() { "$pente" --seed 0 --out "$out" "$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }; }

# The attractor MLPs (300 steps): the smallest and the largest of the file.
run attractor --steps 300 --hidden "8;32,32" --activation gelu
run export --onnx "$models/attractor_small.onnx" --load "$out/attractor.ckpt" --index 0 --batch 64 --test-data
run export --onnx "$models/attractor_large.onnx" --load "$out/attractor.ckpt" --index 1 --batch 64 --test-data

# The digits MLP (50 steps) and CNN (60 steps), with inputs standardized.
run digits train --model mlp --max-steps 50 --normalize --no-figures --save "$out/mlp.ckpt"
run export --onnx "$models/digits_mlp.onnx" --load "$out/mlp.ckpt" --batch 16 --test-data
run digits train --model cnn --max-steps 60 --normalize --no-figures --save "$out/cnn.ckpt"
run export --onnx "$models/digits_cnn.onnx" --load "$out/cnn.ckpt" --batch 500 --test-data
run digits eval --load "$out/cnn.ckpt"
cat "$work/log"
cnn_wrong="$(grep -o '([0-9]* of 10000 wrong)' "$work/log" | grep -o '^([0-9]*' | tr -d '(')"

# The char-lm GPT, small (30 steps), at its block size and at a shorter sequence.
run char-lm train --model gpt --steps 30 --n-embd 32 --n-head 4 --n-layer 2 --block 32 --save "$out/gpt.ckpt"
run export --onnx "$models/char_gpt.onnx" --load "$out/gpt.ckpt" --batch 2 --test-data
run export --onnx "$models/char_gpt_short.onnx" --load "$out/gpt.ckpt" --batch 3 --seq-len 7 --test-data

# One graph with every exportable op of autograd's registry, each result an output.
cargo run --release --quiet -p pente-onnx --example every_op -- "$models"

"$pente" inspect "$models/char_gpt.onnx"
"$PYTHON" scripts/onnx_check.py "$models" --cnn digits_cnn --cnn-wrong "$cnn_wrong"
