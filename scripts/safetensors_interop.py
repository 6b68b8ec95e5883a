#!/usr/bin/env python3
"""safetensors interoperability between pente and the real Python `safetensors` + NumPy.

Usage: safetensors_interop.py DIR

DIR holds what `cargo run --example save_load -- DIR` wrote:
  model.safetensors   pente's export of a trained MLP
  model.bits.json     the exact f32 bit patterns of every tensor, written by pente

This script
  1. loads model.safetensors with safetensors.numpy and checks every tensor's name, dtype, shape
     and value bit for bit against model.bits.json, and the file's metadata;
  2. writes roundtrip.safetensors: the same arrays saved back by Python;
  3. writes from_python.safetensors: arrays NumPy computes from a formula pente's test knows.
Then `cargo run --example save_load -- verify DIR` checks steps 2 and 3 from the Rust side.
"""
import json
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file


def main() -> int:
    out = Path(sys.argv[1])
    tensors = load_file(str(out / "model.safetensors"))
    expected = json.loads((out / "model.bits.json").read_text())
    assert set(tensors) == set(expected), (sorted(tensors), sorted(expected))
    for name, want in expected.items():
        got = tensors[name]
        assert got.dtype == np.float32, (name, got.dtype)
        assert list(got.shape) == want["shape"], (name, got.shape, want["shape"])
        bits = np.array(want["bits"], dtype=np.uint32).view(np.float32).reshape(want["shape"])
        assert np.array_equal(got.view(np.uint32), bits.view(np.uint32)), f"{name}: values differ"
    with safe_open(str(out / "model.safetensors"), framework="numpy") as f:
        meta = f.metadata()
    assert meta and meta.get("config", "").startswith("sizes="), meta
    n = sum(t.size for t in tensors.values())
    print(f"python: read {len(tensors)} tensors ({n} values) written by pente, all bit-identical")

    save_file(tensors, str(out / "roundtrip.safetensors"))
    probe = {
        "probe.a": (np.arange(12, dtype=np.float32) / np.float32(8) - np.float32(0.75)).reshape(3, 4),
        "probe.b": np.arange(5, dtype=np.float64) * 0.1,
    }
    save_file(probe, str(out / "from_python.safetensors"), metadata={"written_by": "numpy"})
    print("python: wrote roundtrip.safetensors and from_python.safetensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
