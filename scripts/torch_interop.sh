#!/usr/bin/env bash
# PyTorch interop with the real PyTorch (scripts/torch_interop.py): a GPT trained by PyTorch
# loaded into pente, a CNN trained by pente scored by PyTorch. torch from PyPI is several GB, so
# CI runs scripts/torch_interop_numpy.sh instead; run this one by hand.
# Usage: scripts/torch_interop.sh [PYTHON]  (a python with torch, numpy and safetensors; by
# default one is made in .venv, which git ignores, and they are installed into it)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${1:-}
if [ -z "$python" ]; then
  . scripts/lib/pyvenv.sh
  pyvenv .venv torch numpy safetensors
  python="$PYTHON"
fi
cargo build --release --quiet -p pente-cli --bin pente
cargo build --release --quiet --example char_lm_scores
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" scripts/torch_interop.py "$work" "${@:2}"
