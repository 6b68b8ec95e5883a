#!/usr/bin/env bash
# safetensors interoperability with the real Python package: pente writes, NumPy reads and
# checks bit for bit, Python writes, pente reads and checks. Needs python3 with venv and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! python3 -m venv "$work/venv" >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv "$work/venv"
fi
"$work/venv/bin/pip" install --quiet --disable-pip-version-check numpy safetensors

cargo run --release --quiet --example save_load -- "$work/out"
"$work/venv/bin/python" scripts/safetensors_interop.py "$work/out"
cargo run --release --quiet --example save_load -- verify "$work/out"
