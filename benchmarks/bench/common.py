"""What the bench's sections share: where the repository and the data are, the backbones
they time (random weights: the same speed as real ones, and nothing to download), the
data set they read, and the child processes that measure a section on its own.

A section whose peak memory is reported runs in a child process (``python -m
benchmarks.bench --child <name>``), so that the peak is its own and not the parent's.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
KVASIR = REPO.parent / "shared" / "data" / "kvasir-seg"

#: the detail of the GPU rows' "not measured" stand-ins
NO_GPU = ("no CUDA device here (or --no-gpu); on a GPU machine `make bench` fills these rows, or "
          "benchmarks/gpu.sh the GPU rows alone (benchmarks/README.md)")
#: the committed reference's provenance: the full sweep's seconds per stage
REFERENCE = REPO / "reports" / "reference" / "kvasir" / "medsam_lite" / "provenance.json"


def reference_provenance() -> dict | None:
    """The committed reference's provenance (its seconds by stage), None if absent."""
    return json.loads(REFERENCE.read_text()) if REFERENCE.is_file() else None


def peak_rss_mib() -> float:
    """This process's peak resident memory. Linux: ``VmHWM``, which starts afresh at
    ``exec`` (``ru_maxrss`` would carry over the parent's peak into a child process)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def random_backbone(model_type: str, device: str = "cpu"):
    """``model_type`` with seeded random weights on ``device``: it runs at the speed and in
    the memory of the real one, with nothing to download."""
    from selfprompt.models.backbone import Backbone, build

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sam = build(model_type)
    return Backbone(sam.to(device).eval(), model_type, Path("<random>"), "random" * 8,
                    torch.device(device))


def load_tiny(tmp: Path):
    """The kit's ``tiny`` test backbone, through the kit's own loader."""
    from selfprompt.models.backbone import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("tiny", tmp / "sam_tiny_seed0.pth", device="cpu")


def open_data(arg: str | None, tmp: Path, n: int):
    """The first ``n`` images of ``arg``, else of Kvasir-SEG beside the repository, else of
    a synthetic set made under ``tmp``; with the folder they come from."""
    from selfprompt.datasets.reader import open_dataset
    from selfprompt.datasets.synthetic import make_synthetic

    if arg:
        root = Path(arg)
    elif (KVASIR / "images").is_dir():
        root = KVASIR
    else:
        root = make_synthetic(tmp / "synthetic", n=n, seed=0)
    return open_dataset(root).subset(n), root


def mean_dice(rows, variant: str = "point_box") -> float:
    """Mean Dice of ``variant`` over the counted rows of a run (NaN when none)."""
    d = [r["dice"] for r in rows if r["variant"] == variant and r["counted"]]
    return float(np.mean(d)) if d else float("nan")


def backbone_or_row(model: str, device: str, rows: list, label: str):
    """``random_backbone(model, device)``, or None after an "n/a" row saying why, when
    the kit says the backbone cannot be built here (vit_t without its optional package).
    Any other error (out of memory on the way to a GPU, say) is the measurement's to
    report: a ``failed`` row (:func:`~benchmarks.bench.table.measuring`)."""
    from selfprompt.models.backbone import CheckpointError

    try:
        return random_backbone(model, device)
    except CheckpointError as err:
        rows.append(("2", label, "n/a", "", str(err).split(":")[0][:80]))
        return None


def run_child(section: str, args, extra: list[str] = ()) -> dict:
    """Run ``section``'s child (``--child``, :data:`~benchmarks.bench.run.CHILDREN`) with
    this run's options and ``extra``; return what it printed, or raise with its last line."""
    cmd = [sys.executable, "-m", "benchmarks.bench", "--child", section] + child_args(args)
    cmd += list(extra)
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:  # its last line first: what a failed row's detail shows
        last = ([ln for ln in out.stderr.splitlines() if ln.strip()] or ["no message"])[-1]
        raise RuntimeError(f"{section} child failed: {last}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_args(args) -> list[str]:
    """The options of this run that a child process needs, on its command line."""
    a = ["--images", str(args.images), "--folds", str(args.folds), "--k", *map(str, args.k),
         "--sweep-backbone", args.sweep_backbone, "--sweep-batch", str(args.sweep_batch),
         "--workers", str(args.workers), "--preset", args.preset, "--seed", str(args.seed),
         "--memory-images", str(args.memory_images), "--memory-iter", str(args.memory_iter),
         "--memory-encode", str(args.memory_encode),
         "--memory-encoder-model", args.memory_encoder_model,
         "--variants", *args.variants,
         "--stages-backbone", args.stages_backbone, "--stages-k", str(args.stages_k),
         "--stages-preset", args.stages_preset, "--stages-test", str(args.stages_test),
         "--stages-images", str(args.stages_images)]
    if args.stages_bf16 is not None:
        a += ["--stages-bf16" if args.stages_bf16 else "--no-stages-bf16"]
    if args.data:
        a += ["--data", args.data]
    if args.memory_preset:
        a += ["--memory-preset", args.memory_preset]
    if not args.memory_backbone:
        a += ["--no-memory-backbone"]
    return a
