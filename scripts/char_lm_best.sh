#!/usr/bin/env bash
# The char-level GPT's best recipe with the same training time budget in pente and in PyTorch,
# one after the other on this machine, and a Markdown table of the results.
#
#   bash scripts/char_lm_best.sh [MINUTES] [PYTHON]
#
# MINUTES (default 20) is the training time limit of each run: only the training steps are on
# the clock (validations and saves are not; see `pente char-lm train --help`, --time-limit).
# pente runs `char-lm train --preset best --time-limit MINUTES·60`; PyTorch runs
# bench/reference/char_lm_torch.py, whose defaults are the same recipe, with the same limit.
# Both decay the learning rate over the preset's --steps; set STEPS=N in the environment to give
# both another number of steps (e.g. on a machine fast enough to finish them early). PYTHON
# defaults to `python3` and needs torch. The logs go to out/char_lm_best.{pente,torch}.log and
# pente's checkpoint to out/char_lm_best.ckpt. Run it on an otherwise idle machine: the loss
# reached in a time budget depends on the speed.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-20}"
python="${2:-python3}"
seconds=$(awk -v m="$minutes" 'BEGIN { printf "%g", m * 60 }')
steps=()
if [ -n "${STEPS:-}" ]; then steps=(--steps "$STEPS"); fi
mkdir -p out
cargo build --release --quiet -p pente-cli --bin pente
pente="${CARGO_TARGET_DIR:-target}/release/pente"

start=$(date +%s.%N)
"$pente" --out out char-lm train --preset best --time-limit "$seconds" "${steps[@]}" \
  --save out/char_lm_best.ckpt --sample-len 0 2>&1 | tee out/char_lm_best.pente.log
pente_wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

start=$(date +%s.%N)
"$python" bench/reference/char_lm_torch.py --time-limit "$seconds" "${steps[@]}" 2>&1 | tee out/char_lm_best.torch.log
torch_wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

# pente's last line: "gpt: validation L nats/char (… bits/char) over every full-length window;
# N steps, S s of training, T training tokens/s"
read -r p_loss p_steps p_seconds p_tps < <(grep '^gpt: validation' out/char_lm_best.pente.log | tail -1 |
  sed -E 's/^gpt: validation ([0-9.]+) nats.*; ([0-9]+) steps, ([0-9.]+) s of training, ([0-9]+) training tokens.*/\1 \2 \3 \4/')
read -r t_loss t_steps t_seconds t_tps t_version < <(tail -1 out/char_lm_best.torch.log | "$python" -c \
  'import json, sys; r = json.load(sys.stdin); print(r["val_loss"], r["steps"], r["train_seconds"], r["tokens_per_s"], r["version"])')

echo
echo "char-lm GPT, --preset best, ${minutes} min of training on $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(date -u +%Y-%m-%d)"
echo
echo "| framework | steps | training s | tokens/s | validation nats/char (whole split) | wall s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
echo "| pente $(git rev-parse --short HEAD) | $p_steps | $p_seconds | $p_tps | $p_loss | $pente_wall |"
echo "| PyTorch $t_version | $t_steps | $t_seconds | $t_tps | $t_loss | $torch_wall |"
