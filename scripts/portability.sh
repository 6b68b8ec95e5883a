#!/usr/bin/env bash
# Portability checks: the workspace compiles for aarch64 (type-checked with `cargo check`; no
# cross linker needed), and autograd's kernel tests pass on an x86-64 CPU without AVX-512
# (Haswell: AVX2 and FMA), emulated by qemu's user mode, so that the run-time dispatch's AVX2 and
# generic tile paths run even on a machine that has AVX-512. Installs what it needs (the rustup
# target, Debian's qemu-user) when missing. Run from anywhere:
#
#   bash scripts/portability.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "-- aarch64: cargo check --workspace --all-targets"
# rustup fetches the target's standard library from the Rust project's servers; where they
# cannot be reached, say so plainly rather than fail the unrelated checks below.
if rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
  cargo check --quiet --workspace --all-targets --target aarch64-unknown-linux-gnu
else
  echo "   SKIPPED: rustup could not install the aarch64-unknown-linux-gnu target here"
fi

echo "-- x86-64 without AVX-512 (qemu -cpu Haswell): autograd's tests"
if ! command -v qemu-x86_64 >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && apt-get install -y -qq qemu-user >/dev/null
  else
    echo "qemu-x86_64 is missing (Debian: apt-get install qemu-user)" >&2
    exit 1
  fi
fi
# The test executables of pente-autograd (its unit tests and each file of autograd/tests).
mapfile -t tests < <(cargo test --release -p pente-autograd --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] != ["bin"]:
        print(m["executable"])')
[ "${#tests[@]}" -gt 0 ] || { echo "no test executables found" >&2; exit 1; }
for t in "${tests[@]}"; do
  echo "   $(basename "$t")"
  # The CPU qemu emulates has no AVX-512: the dispatch must choose AVX2 there.
  if ! out="$(qemu-x86_64 -cpu Haswell "$t" --nocapture 2>&1)"; then
    echo "$out" | tail -40
    echo "FAILED under qemu: $t" >&2
    exit 1
  fi
  echo "$out" | grep -E "^test result|passed, 0 failed|compared levels" | sed 's/^/     /'
done
echo "-- portability checks passed"
