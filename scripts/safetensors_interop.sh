#!/usr/bin/env bash
# safetensors interoperability with the real Python package: pente writes, NumPy reads and
# checks bit for bit, Python writes, pente reads and checks. Needs python3 with venv and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

. scripts/lib/pyvenv.sh
pyvenv "$work/venv" numpy safetensors

cargo run --release --quiet --example save_load -- "$work/out"
"$PYTHON" scripts/safetensors_interop.py "$work/out"
cargo run --release --quiet --example save_load -- verify "$work/out"
