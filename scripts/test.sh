#!/usr/bin/env bash
# Set up what the test suite needs on a fresh Debian machine, then run it.
#   bash scripts/test.sh [pytest args...]
# Installs (as root, when missing): Debian's dataset-fashion-mnist, chromium,
# chromium-driver and postgresql; creates .venv with lrtrack and its dev extras at the
# versions of constraints.txt (scripts/venv.sh); starts a private PostgreSQL server on
# loopback for the store tests and stops it afterwards; runs pytest; then, without
# pytest arguments, runs the command-line and store tests again on the LOWEST versions
# pyproject.toml declares (scripts/lower-bounds.txt). pytest's "no tests ran" (exit 5)
# is a failure here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

packages=(dataset-fashion-mnist chromium chromium-driver postgresql)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: not root, cannot install ${missing[*]}; tests that need them will skip" >&2
  fi
fi

ensure_venv
python="$VENV/bin/python"

if [ -f scripts/test-postgres.sh ]; then
  eval "$(bash scripts/test-postgres.sh start)"
  trap 'bash scripts/test-postgres.sh stop >/dev/null 2>&1 || true' EXIT
fi
# A one-node SLURM cluster on loopback for tests/test_slurm.py (installs slurm-wlm and munge as root).
if [ -f scripts/test-slurm.sh ] && [ "$(id -u)" = 0 ]; then
  eval "$(bash scripts/test-slurm.sh start)"
  trap 'bash scripts/test-slurm.sh stop >/dev/null 2>&1 || true; bash scripts/test-postgres.sh stop >/dev/null 2>&1 || true' EXIT
fi

# pytest's exit 5 (nothing collected) fails the run.
run_pytest() {
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    return 1
  fi
  return "$rc"
}

# Two pytest workers handed tests one at a time, those marked `slow` first (tests/conftest.py):
# most tests wait on subprocesses (agents, heartbeat grace periods, a PostgreSQL outage), so two
# overlap well on 2 cores. Tests sharing a module-scoped setup or the one SLURM cluster carry an
# `xdist_group` mark and stay on one worker.
run_pytest "$python" -m pytest -n 2 --dist loadgroup "$@"

if [ "$#" -eq 0 ]; then
  echo "--- the same command-line and store tests on the lowest declared versions (scripts/lower-bounds.txt)"
  lower=$(bash scripts/lower-venv.sh)
  run_pytest "$lower/bin/python" -m pytest -q -p no:cacheprovider -m "not postgres" \
    tests/test_cli_usage.py tests/test_config.py tests/test_cli_train.py tests/test_store.py
fi
