"""The bench's command line (``python -m benchmarks.bench --help``) and the parsers of its
grid options (``--speed``, ``--e2e``, ``--compile`` and their GPU twins).

Defaults are small enough for minutes on 2 CPU cores; benchmarks/README.md gives the full
size. Options hidden from ``--help`` are those the bench passes to its child processes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmarks.bench.common import REPO

#: ``--help``'s first line
DESCRIPTION = ("``make bench``: encoder passes, encoder speed, arithmetic rate and memory, "
               "in one table.")


def cpu_has_bf16() -> bool:
    """Whether the CPU has bf16 arithmetic units (AVX512-BF16 or AMX), per /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def parse_entries(text: str) -> list[tuple[str, int, str]]:
    """``"vit_b:16:bf16;tiny:2"`` -> ``[("vit_b", 16, "bf16"), ("tiny", 2, "fp32")]``."""
    entries = []
    for part in filter(None, text.split(";")):
        model, batch, precision = (part.split(":") + ["fp32"])[:3]
        entries.append((model.strip(), int(batch), precision.strip()))
    return entries


def parse_grid(text: str) -> dict[str, list[int]]:
    """``"tiny:1,4,8;vit_b:1"`` -> ``{"tiny": [1, 4, 8], "vit_b": [1]}``."""
    grid = {}
    for part in filter(None, text.split(";")):
        name, _, batches = part.partition(":")
        grid[name.strip()] = [int(b) for b in batches.split(",") if b]
    return grid


def parse_args(argv=None) -> argparse.Namespace:
    """The bench's options (``--help``), with the CPU bf16 models chosen when not given."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=DESCRIPTION,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", help="data set folder (default: ../shared/data/kvasir-seg if "
                   "present, else a synthetic one)")
    p.add_argument("--images", type=int, default=10, help="images in the measured sweep")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--k", nargs="+", default=["2", "all"])
    p.add_argument("--variants", nargs="+", default=["point_box"],
                   help="prompt variants decoded per test image (both flows)")
    p.add_argument("--full-images", type=int, default=1000, help="analytic counts: data size")
    p.add_argument("--full-k", nargs="+", default=["10", "20", "40", "all"])
    p.add_argument("--sweep-backbone", default="tiny")
    p.add_argument("--sweep-batch", type=int, default=4)
    p.add_argument("--workers", type=int, default=1, help="image decode/resize workers")
    p.add_argument("--preset", default="corrected",
                   help="per-image random draws make both flows draw the same prompts")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--speed", default="tiny:1,4,8;vit_t:1,2;medsam_lite:1,4;vit_b:1",
                   help="CPU speed grid: model:batch,batch;...")
    p.add_argument("--gpu-speed",
                   default="vit_b:1,16,32;vit_h:16;medsam_lite:1,16,64;vit_t:1,16,32;tiny:1,16",
                   help="GPU speed grid, the targets' models first: a run cut short keeps them")
    p.add_argument("--e2e", default="medsam_lite:1",
                   help="CPU end-to-end embedding rows (model:batch[:precision];...), each "
                   "beside its encoder-only rate")
    p.add_argument("--gpu-e2e", default="vit_b:16:bf16;vit_b:16;medsam_lite:64;tiny:16",
                   help="the same on a GPU (target: 80 %% of the encoder-only rate)")
    p.add_argument("--compile", default="",
                   help="CPU rows of ImageEncoder(compile=True) (model:batch[:precision];...), "
                   "each beside the same encoder uncompiled (none by default: on 2 cores it "
                   "gained nothing and compiling vit_b takes 24 s)")
    p.add_argument("--gpu-compile", default="vit_b:32:bf16",
                   help="the same on a GPU; the compiled rows come last")
    p.add_argument("--e2e-images", type=int, default=8,
                   help="images embedded per CPU end-to-end row (at least two batches)")
    p.add_argument("--gpu-e2e-images", type=int, default=512)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--cpu-bf16-models", nargs="*", default=None,
                   help="models also timed in bf16/fp16 on the CPU (default: tiny, and every "
                   "model when the CPU has AVX512-BF16 or AMX; without them bf16 is 10-100x "
                   "slower than fp32: vit_b took ~8 min an image on such a CPU)")
    p.add_argument("--reps", type=int, default=2, help="timed batches per row (best kept)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--vit-b-warmup", type=int, default=1, help="vit_b on CPU: 7-18 s a pass")
    p.add_argument("--exact-encoder", action=argparse.BooleanOptionalAction, default=True,
                   help="also time SAM's own encoder code (ImageEncoder(fused=False), "
                   "bit-for-bit set_image) beside the kit's default fused path")
    p.add_argument("--mm-size", type=int, default=2048)
    p.add_argument("--no-gpu", action="store_true")
    p.add_argument("--gpu-only", action="store_true",
                   help="only the GPU rows: encoder speed, arithmetic rate, GPU memory, end "
                   "to end, and the sweep's stages on CUDA (a lent GPU's few minutes: see "
                   "benchmarks/gpu.sh)")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--memory-images", type=int, default=800,
                   help="k = all training images for the classifier memory probe (0: skip)")
    p.add_argument("--memory-iter", type=int, default=3)
    p.add_argument("--memory-preset", default=None,
                   help="k = all fit memory for this preset only (default: paper and corrected)")
    p.add_argument("--memory-backbone", action=argparse.BooleanOptionalAction, default=True,
                   help="hold a vit_b SAM in the memory probe's process, as a sweep does")
    p.add_argument("--memory-encode", type=int, default=1,
                   help="images encoded by vit_b in the encoding memory probe (0: skip)")
    p.add_argument("--memory-encoder-model", default="vit_b",
                   help="backbone of the encoding memory probe")
    p.add_argument("--memory-exact", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--memory-in-memory", action="store_true",
                   help="also measure scikit-learn's one-matrix fit at k = all")
    p.add_argument("--stages-backbone", default="medsam_lite",
                   help="section 5: the sweep's stages after encoding, on this backbone")
    p.add_argument("--stages-images", type=int, default=100,
                   help="first N images of the data set (their embeddings are cached first)")
    p.add_argument("--stages-k", default="20")
    p.add_argument("--stages-preset", default="corrected")
    p.add_argument("--stages-test", type=int, default=20, help="test images timed (0: skip)")
    p.add_argument("--stages-bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="also embed section 5's images with a bf16 encoder and give the mean "
                   "Dice change of fold 0 on real weights (default: on a GPU only; on a CPU "
                   "it costs the encoding of every image again)")
    p.add_argument("--stages-device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--sweep-runs", default=str(REPO / "reports" / "runs" / "kvasir"
                                               / "medsam_lite"),
                   help="a finished sweep's folder (make reproduce's RUNS/<data set>/<backbone>)")
    p.add_argument("--predict-images", type=int, default=20,
                   help="section 6: images `predict` segments for its speed rows, the first "
                   "of the data set (0: skip)")
    p.add_argument("--predict-k", type=int, default=5,
                   help="section 6: labelled pairs the speed rows fit on (the next images)")
    p.add_argument("--predict-backbone", default="medsam_lite")
    p.add_argument("--predict-prompt", default="auto")
    p.add_argument("--predict-n", type=int, nargs="*", default=[50, 500],
                   help="section 6: generated folder sizes for peak RSS against the number "
                   "of images (tiny backbone; none: skip)")
    p.add_argument("--predict-side", type=int, default=96, help="their side in pixels")
    p.add_argument("--predict-argv", help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(REPO / "reports" / "bench.md"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.cpu_bf16_models is None:
        args.cpu_bf16_models = ["tiny"] + (["vit_t", "vit_b"] if cpu_has_bf16() else [])
    if args.gpu_only and (args.no_gpu or not torch.cuda.is_available()):
        p.error("--gpu-only needs a CUDA device, and this machine has none visible "
                "to torch" if not args.no_gpu else "--gpu-only and --no-gpu exclude each other")
    return args
