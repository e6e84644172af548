#!/usr/bin/env bash
# One command on a fresh machine: set up riverrun and run its demo (no broker needed).
#   bash infra/demo.sh [riverrun demo options, e.g. --events 50000 --out my-demo]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=""
for cand in python3.11 python3.12 "${HOME:-/root}"/.pyenv/versions/3.1[12]*/bin/python3; do
  if "$cand" -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' 2>/dev/null; then
    PY="$cand"; break
  fi
done
[[ -n "$PY" ]] || { echo "riverrun needs Python 3.11 or 3.12 (bytewax 0.21 has no wheels beyond 3.12)" >&2; exit 1; }
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/riverrun demo "$@"
