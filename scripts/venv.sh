#!/usr/bin/env bash
# The project's virtual environment, built from nothing: sourced by scripts/study.sh and
# scripts/test.sh (the README's two commands), or run on its own:
#
#   bash scripts/venv.sh          # create or refresh .venv; prints its path
#
# .venv in the checkout, never --system-site-packages (a package that merely happens to
# be installed on this machine cannot make the tests pass), lrtrack installed editable
# with its dev extras, every version pinned by constraints.txt (what CI tests). Works with
# Debian's own python3 (PEP 668 forbids pip outside a venv there; Debian's python3-venv
# is installed when missing and we are root) and with any other python3 >= 3.11
# ($LRTRACK_PYTHON picks one). A complete .venv is reused: .venv/.lrtrack-stamp holds
# a hash of the interpreter, pyproject.toml and constraints.txt, and a change in any of
# them rebuilds the environment.
set -euo pipefail

LRTRACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$LRTRACK_ROOT/.venv"

_venv_die() { echo "error: $*" >&2; exit 2; }

_venv_python() {
  local python="${LRTRACK_PYTHON:-python3}"
  command -v "$python" >/dev/null 2>&1 || _venv_die "no $python on PATH: install Python >= 3.11"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || _venv_die "$python is $("$python" -V 2>&1); lrtrack needs Python >= 3.11"
  # Debian splits venv/ensurepip out of python3 into python3-venv.
  if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing Debian's python3-venv (needed to create .venv)" >&2
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
      _venv_die "$python cannot create virtual environments: install Debian's python3-venv (as root: apt-get install python3-venv)"
    fi
  fi
  echo "$python"
}

_venv_stamp() {
  local python=$1
  { "$python" -c 'import sys; print(sys.executable, sys.version)'; cat "$LRTRACK_ROOT/pyproject.toml" "$LRTRACK_ROOT/constraints.txt"; } \
    | sha256sum | cut -d' ' -f1
}

# ensure_venv: .venv exists, is complete and matches pyproject.toml + constraints.txt.
ensure_venv() {
  local python stamp
  python=$(_venv_python)
  stamp=$(_venv_stamp "$python")
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.lrtrack-stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  echo "setting up $VENV (first run: a few minutes, torch is large)" >&2
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -c "$LRTRACK_ROOT/constraints.txt" -e "$LRTRACK_ROOT[dev]"
  echo "$stamp" > "$VENV/.lrtrack-stamp"  # written last: an interrupted install is redone next time
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_venv
  echo "$VENV"
fi
