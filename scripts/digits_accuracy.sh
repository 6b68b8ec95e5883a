#!/usr/bin/env bash
# The digit classifiers' accuracy targets, with fixed seeds, from a fresh clone:
#
#   bash scripts/digits_accuracy.sh         MLP 784-512-256-10: at least 98.0 % test accuracy
#                                           (10 epochs, about 40 s on 2 cores)
#   bash scripts/digits_accuracy.sh cnn     CNN: at least 99.0 % (10 epochs: 99.08 % measured;
#                                           6 min on the 2-core machine, 344 s of it training)
#
# CI (.ci/run) runs both.
#
# Each trains with `pente digits train` (seed 0, the defaults of DigitsConfig::for_arch), reads
# the test accuracy from the JSON summary line it prints, and fails below the target.
set -euo pipefail
cd "$(dirname "$0")/.."

model="${1:-mlp}"
case "$model" in
  mlp) target=0.980 ;;
  cnn) target=0.990 ;;
  *) echo "usage: $0 [mlp|cnn]" >&2; exit 2 ;;
esac

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo build --release --quiet -p pente-cli --bin pente
"${CARGO_TARGET_DIR:-target}/release/pente" --seed 0 --out "$out" digits train --model "$model" --no-figures | tee "$out/log"
acc="$(grep -o '"test_acc": [0-9.]*' "$out/log" | tail -1 | awk '{print $2}')"
if [ -z "$acc" ]; then
  echo "digits $model: no test accuracy in the output" >&2
  exit 1
fi
if awk -v a="$acc" -v t="$target" 'BEGIN { exit !(a >= t) }'; then
  echo "digits $model: test accuracy $acc >= $target"
else
  echo "digits $model: test accuracy $acc is below the target $target" >&2
  exit 1
fi
