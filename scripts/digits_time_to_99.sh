#!/usr/bin/env bash
# Time to 99.0 % MNIST test accuracy on this machine: `pente digits train --preset fast` beside
# its PyTorch twin (`bench/reference/mnist_best_torch.py --preset fast`: the same network,
# optimizer, one-cycle schedule and batch; 2 threads each), for seeds 0..SEEDS-1, alternating
# which framework goes first. Both probe the test accuracy every 50 steps with the clock
# stopped; the crossing is the first probe at or above 0.99. Prints a Markdown table: each
# seed's images/s and crossing (epochs, training seconds) per framework, and the medians.
#
#   bash scripts/digits_time_to_99.sh [SEEDS] [PYTHON]
#
# SEEDS defaults to 5; PYTHON to `python3` (it needs torch and numpy). The runs' JSON lines
# are kept in out/time_to_99/.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-5}"
python="${2:-python3}"
dir=out/time_to_99
mkdir -p "$dir"
cargo build --release --quiet -p pente-cli --bin pente
pente="${CARGO_TARGET_DIR:-target}/release/pente"

run_torch() {
  "$python" bench/reference/mnist_best_torch.py --preset fast --model cnn --data data/mnist --seed "$1" \
    --stop-at-target > "$dir/torch_$1.jsonl"
}
run_pente() {
  RAYON_NUM_THREADS=2 "$pente" --seed "$1" --out "$dir" digits train --preset fast --no-figures \
    --save "$dir/pente_$1.ckpt" > "$dir/pente_$1.jsonl"
}

for ((seed = 0; seed < seeds; seed++)); do
  if ((seed % 2 == 0)); then
    run_torch "$seed"
    run_pente "$seed"
  else
    run_pente "$seed"
    run_torch "$seed"
  fi
  echo "seed $seed done" >&2
done

"$python" - "$dir" "$seeds" <<'PY'
import json, statistics, sys

folder, seeds = sys.argv[1], int(sys.argv[2])


def summary(path):
    """The last line holding samples_per_s: images/s and the first crossing (or None)."""
    with open(path) as f:
        lines = [json.loads(l) for l in f if '"samples_per_s"' in l]
    if not lines:
        sys.exit(f"{path}: no summary line")
    return lines[-1]["samples_per_s"], lines[-1]["first_hit"]


def cell(hit):
    return "not reached" if hit is None else f'{hit["epochs"]:.2f} ep, {hit["train_s"]:.1f} s'


rows, cols = [], {"torch": ([], []), "pente": ([], [])}
print("| seed | PyTorch images/s | PyTorch first 99 % | pente images/s | pente first 99 % |")
print("| --- | --- | --- | --- | --- |")
for seed in range(seeds):
    cells = []
    for who in ("torch", "pente"):
        rate, hit = summary(f"{folder}/{who}_{seed}.jsonl")
        cols[who][0].append(rate)
        # A seed that never crosses counts as infinitely slow in the median.
        cols[who][1].append(float("inf") if hit is None else hit["train_s"])
        cells += [f"{rate:,.0f}", cell(hit)]
    print(f"| {seed} | " + " | ".join(cells) + " |")


def med_s(values):
    m = statistics.median(values)
    return "not reached" if m == float("inf") else f"{m:.1f} s"


print("| median | " + " | ".join(
    f"{statistics.median(cols[w][0]):,.0f} | {med_s(cols[w][1])}" for w in ("torch", "pente")) + " |")
PY
