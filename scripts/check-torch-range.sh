#!/usr/bin/env bash
# Does installing lrtrack keep a user's own torch? Builds a throw-away venv with torch
# 2.13.0 (the CPU build this machine keeps in /opt/wheels, or $TORCH_WHEEL) and the
# torchvision that goes with it, then asks pip what installing lrtrack would change
# (--dry-run). Exits 1 if pip would replace torch or torchvision.
set -euo pipefail
cd "$(dirname "$0")/.."
wheel=${TORCH_WHEEL:-$(ls /opt/wheels/torch-2.13.0*cp311*.whl 2>/dev/null | head -n 1)}
[ -n "$wheel" ] || { echo "error: no torch 2.13.0 wheel (set TORCH_WHEEL)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q "$wheel"
"$tmp/venv/bin/pip" install -q --no-deps "torchvision==0.28.*"
"$tmp/venv/bin/pip" install -q --dry-run --report "$tmp/report.json" -e . >/dev/null
"$tmp/venv/bin/python" - "$tmp/report.json" <<'PY'
import json, sys
changed = [f"{i['metadata']['name']} {i['metadata']['version']}" for i in json.load(open(sys.argv[1]))["install"]
           if i["metadata"]["name"].lower() in ("torch", "torchvision")]
print("pip would replace: " + ", ".join(changed) if changed else "torch and torchvision are left in place")
sys.exit(1 if changed else 0)
PY
