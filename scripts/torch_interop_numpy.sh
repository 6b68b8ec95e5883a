#!/usr/bin/env bash
# PyTorch state dicts in CI, without PyTorch (PyPI's torch is several GB): pente imports and
# re-exports the GPT state dict that PyTorch wrote (models/tests/fixtures/torch, by
# scripts/torch_fixtures.py), scores it as PyTorch did, and scripts/torch_interop_numpy.py
# checks names, layouts and values with safetensors.numpy. The full check with PyTorch itself
# is scripts/torch_interop.sh. Needs python3 with venv and PyPI, and data/mnist.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

. scripts/lib/pyvenv.sh
pyvenv "$work/venv" numpy safetensors

cargo build --release --quiet -p pente-cli --bin pente
"$PYTHON" scripts/torch_interop_numpy.py "$work" target/release/pente
