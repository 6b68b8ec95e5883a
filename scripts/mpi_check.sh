#!/usr/bin/env bash
# Data-parallel training across processes over MPI, on localhost only: installs Open MPI and
# libclang (for rsmpi's bindings) from Debian's packages, builds with the `mpi` feature, runs
# nn's MPI test (it starts itself under mpirun with 2 and 3 ranks: bit-identity with the
# in-process run, broadcast, drift check, resume on another world size, a failing rank) and
# the CLI's (`pente char-lm train` and `pente digits train` under `mpirun -np 2`), then a short
# training of each on 2 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mpirun >/dev/null || ! command -v mpicc >/dev/null || ! ldconfig -p | grep -q libclang; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q openmpi-bin libopenmpi-dev clang libclang-dev
fi

# Open MPI in a container: as root it needs --allow-run-as-root; shared-memory single copy
# (CMA) is often not permitted there.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1

cargo test --release -p pente-nn --features mpi --test mpi
cargo test --release -p pente-cli --features mpi --test mpi_cli

out="$(mktemp -d)"
root=()
if [ "$(id -u)" = 0 ]; then root=(--allow-run-as-root); fi
cargo build --release -p pente-cli --features mpi
timeout 600 mpirun -np 2 --oversubscribe --bind-to none "${root[@]}" -x RAYON_NUM_THREADS=1 \
  target/release/pente char-lm train --steps 30 --eval-every 15 --n-layer 2 --sample-len 0 --out "$out" | tee "$out/log"
grep -q "training across 2 processes" "$out/log"
grep -q "all-reduce:" "$out/log"
test -s "$out/char_lm_gpt.ckpt"
timeout 600 mpirun -np 2 --oversubscribe --bind-to none "${root[@]}" -x RAYON_NUM_THREADS=1 \
  target/release/pente digits train --epochs 1 --validation 50000 --no-figures --out "$out" | tee "$out/digits.log"
grep -q "training across 2 processes" "$out/digits.log"
test -s "$out/digits_mlp.ckpt"
rm -rf "$out"
echo "mpi_check: the MPI tests pass and 2 ranks trained char-lm and digits"
