#!/usr/bin/env bash
# Set up what the test suite needs on a fresh Debian machine, then run it.
#   bash scripts/test.sh [pytest args...]
# Installs (as root, when missing): Debian's dataset-fashion-mnist, chromium,
# chromium-driver and postgresql; lrtrack with its dev extras; starts a private PostgreSQL server on
# loopback for the store tests and stops it afterwards. pytest's "no tests ran"
# (exit 5) is a failure here.
set -euo pipefail
cd "$(dirname "$0")/.."

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

python3 -m pip install -q --disable-pip-version-check -e ".[dev]"

if [ -f scripts/test-postgres.sh ]; then
  eval "$(bash scripts/test-postgres.sh start)"
  trap 'bash scripts/test-postgres.sh stop >/dev/null 2>&1 || true' EXIT
fi

set +e
# Two pytest workers, one test file each at a time: most tests wait on subprocesses
# (agents, heartbeat grace periods, a PostgreSQL outage), so two files overlap well
# on 2 cores (about 6 minutes instead of 10).
python3 -m pytest -n 2 --dist loadfile "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
