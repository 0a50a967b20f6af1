#!/usr/bin/env bash
# .venv-lower: .venv with the packages of scripts/lower-bounds.txt replaced by their lowest
# declared versions; prints its path. It installs only those packages (a copy of torch
# would cost gigabytes): everything else is found in .venv's site-packages, which a .pth
# file adds *after* .venv-lower's own, so the lower versions win.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv

lower="$LRTRACK_ROOT/.venv-lower"
stamp=$(cat "$VENV/.lrtrack-stamp" scripts/lower-bounds.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$lower/.lrtrack-stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$lower"
  "$VENV/bin/python" -m venv --without-pip "$lower"
  own=$("$lower/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  main=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --target "$own" -r scripts/lower-bounds.txt
  echo "import site; site.addsitedir('$main')" > "$own/zz-lrtrack-main-venv.pth"
  ln -s "$VENV/bin/wandb" "$lower/bin/wandb"  # the tests read W&B's run files with its own command
  echo "$stamp" > "$lower/.lrtrack-stamp"
fi
echo "$lower"
