#!/usr/bin/env bash
# The main job on a fresh Debian machine: set up, then run the Fashion-MNIST
# learning-rate study (study A) offline and write its report.
#   bash scripts/study.sh [--workers N]
# Creates .venv in the checkout (scripts/venv.sh) and installs Debian's
# dataset-fashion-mnist when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

if ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "error: install Debian's dataset-fashion-mnist (or put Fashion-MNIST under \$LRTRACK_DATA_DIR)" >&2
    exit 2
  fi
fi
ensure_venv
lrtrack=("$VENV/bin/lrtrack")

export WANDB_MODE=offline
workers=2
if [ "${1:-}" = "--workers" ]; then workers="$2"; fi
sweep_id=$("${lrtrack[@]}" sweep run sweeps/study-a-fashion-fcn-adam.yaml --workers "$workers" --offline | tail -n 1)
"${lrtrack[@]}" sweep show "$sweep_id"
"${lrtrack[@]}" report "$sweep_id" --html study-a.html
echo "report: $(pwd)/study-a.html   (upload the runs later with: .venv/bin/lrtrack sync $sweep_id)"
