#!/usr/bin/env bash
# Two ranks of one thread against one process of two threads, on this machine: the speed
# ratio of issue 22 ("communication must be nearly free on one host").
#
#   bash scripts/mpi_ratio.sh [ROUNDS] [WORKLOAD...]     (defaults: 2 rounds; char-gpt,
#                                                        mlp-mnist, digits-cnn)
#
# Each round runs, per workload, `RAYON_NUM_THREADS=2 pente bench --workload W` (one process;
# char-gpt's `pente` line is DataParallel with one shard per thread) and then `mpirun -np 2
# ... -x RAYON_NUM_THREADS=1 pente bench --workload W` (nn::comm::Ddp, buckets of 512 KiB),
# and prints one Markdown row: both figures, their ratio, and the share of the all-reduce that
# backward hid. The binary is built with `--features mpi`. Open MPI's shared-memory transport
# copies through a bounce buffer unless it may read the other process's memory directly;
# OMPI_MCA_btl_vader_single_copy_mechanism (default here: cma, which needs the ptrace
# permission between the ranks; set it to none in containers that forbid that) chooses.
# Needs: openmpi-bin, libopenmpi-dev, clang (see scripts/mpi_check.sh). Run it on a quiet
# machine: the ratio is meaningless while other work shares the cores.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-2}"
shift || true
workloads=("$@")
if [ ${#workloads[@]} -eq 0 ]; then workloads=(char-gpt mlp-mnist digits-cnn); fi

export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-cma}"
root=()
if [ "$(id -u)" = 0 ]; then root=(--allow-run-as-root); fi
cargo build --release --quiet -p pente-cli --features mpi
pente="${CARGO_TARGET_DIR:-target}/release/pente"
stats="$(mktemp)"
trap 'rm -f "$stats"' EXIT

# The last figure of an `impl` line of `pente bench`'s table: "<workload> <impl> <size> <value> <unit> ...".
figure() { awk -v impl="$1" '$2 == impl { v = $(NF - 5) } END { print v }'; }
# The two sizes mlp-mnist prints: keep batch=512 (the issue's), else the only line.
pick() { if [ "$1" = mlp-mnist ]; then grep "batch=512"; else cat; fi; }

echo "single copy: $OMPI_MCA_btl_vader_single_copy_mechanism; CPU: $(lscpu | sed -n 's/^Model name: *//p'); $(nproc) cores"
echo
echo "| round | workload | 1 process × 2 threads | 2 ranks × 1 thread | ratio | all-reduce hidden | load |"
echo "| ---: | --- | ---: | ---: | ---: | --- | --- |"
for r in $(seq 1 "$rounds"); do
  for w in "${workloads[@]}"; do
    load="$(cut -d' ' -f1 /proc/loadavg)"
    one="$(RAYON_NUM_THREADS=2 "$pente" bench --workload "$w" | pick "$w" | figure pente)"
    ranks_out="$(timeout 600 mpirun -np 2 --oversubscribe --bind-to none "${root[@]}" -x RAYON_NUM_THREADS=1 \
      -x OMPI_MCA_btl_vader_single_copy_mechanism "$pente" bench --workload "$w" 2>"$stats")"
    two="$(printf '%s\n' "$ranks_out" | pick "$w" | figure pente-ranks)"
    hidden="$(sed -n 's/.*ms\/step, \([0-9]* %\) hidden.*/\1/p' "$stats" | tail -1)"
    ratio="$(awk -v a="$two" -v b="$one" 'BEGIN { printf "%.2f", a / b }')"
    echo "| $r | $w | $one | $two | $ratio | $hidden | $load |"
  done
done
