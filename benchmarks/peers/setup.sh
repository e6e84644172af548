#!/usr/bin/env bash
# Venvs for the peer frameworks of benchmarks/compare.py and the profiler, each on its own
# because quixstreams pins another confluent-kafka than riverrun's. Idempotent. (cramjam: riverrun's
# producer compresses with lz4, which aiokafka decompresses only with cramjam installed.)
#   bash benchmarks/peers/setup.sh [quix|faust|tools ...]   (default: all three)
set -euo pipefail
ROOT="${RIVERRUN_BENCH_VENVS:-$HOME/.cache/riverrun/bench-venvs}"
PY="${PYTHON:-python3.11}"
mkdir -p "$ROOT"

make_venv() {  # name, pip requirements...
    local name=$1; shift
    if [ -x "$ROOT/$name/bin/python" ] && [ -f "$ROOT/$name/.ok" ]; then
        echo "$name: $ROOT/$name (exists)"
        return
    fi
    "$PY" -m venv "$ROOT/$name"
    "$ROOT/$name/bin/pip" install -q --disable-pip-version-check "$@"
    touch "$ROOT/$name/.ok"
    echo "$name: $ROOT/$name"
}

for what in "${@:-quix faust tools}"; do
    for w in $what; do
        case $w in
            # the same river as riverrun, so the model step is the same code
            quix) make_venv quix "quixstreams==3.28.1" "river==0.26.1" "orjson" "pydantic>=2" ;;
            faust) make_venv faust "faust-streaming==0.15.3" "cramjam" "river==0.26.1" "orjson" "pydantic>=2" ;;
            tools) make_venv tools "py-spy" "psutil" ;;
            *) echo "unknown venv $w (quix, faust, tools)" >&2; exit 2 ;;
        esac
    done
done
