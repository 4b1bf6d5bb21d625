"""Committed reference results: written from a finished sweep, and checkable by anyone.

Why a module: a number in ``reports/reference/`` is only worth committing if it says
where it came from and if a reader can recompute part of it. ``write`` turns a finished
run folder (``make reproduce``) into a self-contained folder: the paper-shaped tables
and figures (:mod:`selfprompt.evaluation.report`), every per-image row (``results.csv.gz``), the
fold indices and shots (``folds.json``) and ``provenance.json`` (kit commit, checkpoint
sha256, seed, library versions, CPU, arithmetic, wall time of each stage). ``verify``
recomputes a slice of it (one k, one fold, its first test images) from the committed
folds and compares per-image Dice.

On the machine that wrote the reference the comparison is exact. On another CPU the
``corrected`` preset agrees to the last digit or nearly (a well-posed fit), while single
images of the ``paper`` preset can move by several Dice points: its stretched labels
(D4) make the fit ill-posed, so the last bits of the arithmetic decide some edge cells.
``verify`` therefore reports both the largest per-image difference and the difference
of the means, and judges on the means.

    python -m selfprompt reference write RUN_DIR OUT_DIR
    python -m selfprompt reference verify OUT_DIR --data DATA_DIR [--k 10 --fold 0]
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..utils.io import atomic_write_text
from .results import fold_files, read_results_gz, stage_seconds, write_results_gz  # noqa: F401

#: the committed reference of this kit: LiteMedSAM on Kvasir-SEG
DEFAULT_DIR = Path("reports/reference/kvasir/medsam_lite")
#: how far the mean Dice of a recomputed slice may be from the committed one (fraction):
#: per-image values of the paper preset move by up to ~0.08 on another CPU, means over
#: tens of images by far less (measured on the synthetic set: 0.03 over 3 images)
MEAN_TOLERANCE = 0.02


def _fold_meta(run_dir: Path) -> list[dict]:
    return [json.loads(p.with_suffix(".json").read_text()) for p in fold_files(run_dir)]


def encode_seconds(cache_dir: Path | None) -> dict | None:
    """What ``encode_log.jsonl`` of the embedding cache says (summed over its lines)."""
    from ..embeddings import ENCODE_LOG

    if cache_dir is None or not (cache_dir / ENCODE_LOG).exists():
        return None
    lines = [json.loads(t) for t in (cache_dir / ENCODE_LOG).read_text().splitlines() if t]
    return {"images": sum(x["encoded"] for x in lines),
            "seconds": round(sum(x["seconds"] for x in lines), 1),
            "cpus": sorted({x["environment"]["cpu"] for x in lines})}


def write(run_dir: str | Path, out_dir: str | Path, k: str = "20",
          encode: dict | None = None, cache_dir: str | Path | None = None,
          data_dir: str | Path | None = None) -> dict[str, Path]:
    """The reference folder from a finished run folder (``reports/runs/<data>/<backbone>``).

    ``encode``: the encoder stage's record (``{"images", "seconds", ...}``) when the
    cache's own ``encode_log.jsonl`` does not hold it. ``data_dir``: the data set, for
    the pictures of the best and worst cases (left out without it).
    """
    from . import report
    from ..utils.provenance import environment

    import time

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    start = time.perf_counter()
    paths = report.write_report(run_dir, out_dir, k=k)
    report_seconds = round(time.perf_counter() - start, 1)
    rows = report.load_runs(run_dir)
    paths["results"] = write_results_gz(rows, out_dir / "results.csv.gz")
    for p in distribution_figures(rows, out_dir, k):
        paths[p.stem] = p
    if data_dir is not None:
        for p in case_figures(rows, out_dir, Path(data_dir), k):
            paths[p.stem] = p
        # the corrected preset's first fold where the sweep has them
        done = sorted({(r["preset"] != "corrected", r["fold"], r["preset"]) for r in rows
                       if r["k"] == k})
        if done:
            path = method_figure(rows, out_dir, Path(data_dir), k, fold=done[0][1],
                                 preset=done[0][2])
            paths[path.stem] = path
    shutil.copyfile(run_dir / "folds.json", out_dir / "folds.json")
    paths["folds"] = out_dir / "folds.json"
    metas = _fold_meta(run_dir)
    plan = json.loads((run_dir / "folds.json").read_text())
    if cache_dir is None:  # the default cache's folder for this model (float16, as the sweep)
        from ..utils.paths import cache_folder

        cache_dir = cache_folder() / (f"{rows[0]['backbone']}-{metas[0]['model_hash'][:16]}"
                                      "-float16")
    commits = sorted({m.get("environment", {}).get("kit_commit", "unknown") for m in metas})
    cpus = sorted({m.get("environment", {}).get("cpu", "unknown") for m in metas})
    provenance = {
        "what": f"{len(metas)} folds: " + ", ".join(sorted(
            {f"{m['preset']['name']} k={m['k']}" for m in metas})),
        "dataset": rows[0]["dataset"], "backbone": rows[0]["backbone"],
        "n_images": plan["n_images"], "n_folds": plan["n_folds"], "seed": plan["seed"],
        "model_hash": sorted({m["model_hash"] for m in metas}),
        # each preset's fields as its folds ran it: what `verify` recomputes, even after a
        # preset's definition moves on (a later kit fits `corrected` otherwise)
        "presets": {m["preset"]["name"]: m["preset"] for m in metas},
        "kit_commits_of_folds": commits, "cpus_of_folds": cpus,
        "fold_environment": next((m["environment"] for m in metas if "environment" in m), None),
        "written_by": environment(),
        "seconds": {"encode": encode or encode_seconds(Path(cache_dir) if cache_dir else None),
                    **stage_seconds(metas), "report": report_seconds},
        "command": f"make reference REF_MODEL={rows[0]['backbone']} (make reproduce "
                   f"MODEL={rows[0]['backbone']} DATASETS=kvasir, then python -m selfprompt "
                   "reference write)",
    }
    paths["provenance"] = out_dir / "provenance.json"
    atomic_write_text(paths["provenance"], json.dumps(provenance, indent=1) + "\n")
    return paths


def distribution_figures(rows: list[dict], out_dir: Path, k: str) -> list[Path]:
    """Per-image Dice distribution of every variant at ``k``, one figure per preset."""
    import matplotlib.pyplot as plt

    from .plots import dice_histogram

    paths = []
    for preset in sorted({r["preset"] for r in rows}):
        part = [r for r in rows if r["preset"] == preset and r["k"] == k]
        if not part:
            continue
        fig = dice_histogram(part)
        fig.axes[0].set_title(f"Dice per image, {preset} preset, k = {k}, all folds")
        path = out_dir / "figures" / f"dice_distribution_{preset}_k{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def _experiment(data_dir, backbone_name: str, dataset_name: str, seed: int, n_folds: int = 5,
                cache=None, device=None, progress: bool = True):
    """An :class:`Experiment` over the data set on a cache that encodes nothing by
    itself (callers ``ensure`` only the images they read), and its encoder."""
    from ..models.backbone import load_backbone
    from ..datasets.reader import open_dataset
    from ..embeddings import DatasetEmbeddings, EmbeddingCache
    from ..models.encoder import ImageEncoder
    from ..utils.paths import cache_folder
    from .protocol import Experiment

    dataset = open_dataset(Path(data_dir))
    backbone = load_backbone(backbone_name, device=device)
    encoder = ImageEncoder(backbone)
    embeddings = DatasetEmbeddings(
        dataset, EmbeddingCache.for_backbone(cache_folder(cache), backbone, encoder=encoder))
    exp = Experiment(dataset, embeddings, backbone, Path("/nonexistent"),
                     dataset_name=dataset_name, seed=seed, n_folds=n_folds, progress=progress)
    return exp, encoder


def case_figures(rows: list[dict], out_dir: Path, data_dir: Path, k: str, fold: int = 0,
                 variant: str = "point_box", n: int = 2, cache=None) -> list[Path]:
    """The ``n`` best and worst test images of ``(k, fold)`` by ``variant``'s Dice, per
    preset: each variant's mask over the image, the truth's outline and the prompts.

    The images are segmented again from the cached embeddings for the picture; under the
    ``paper`` preset the box widening is then drawn from the image's own seed, so the box
    can differ by a few pixels from the fold's run (its Dice is in the tables).
    """
    import matplotlib.pyplot as plt

    from ..metrics import dice
    from .plots import variant_figure

    exp, encoder = _experiment(data_dir, rows[0]["backbone"], rows[0]["dataset"],
                               int(rows[0]["seed"]), cache=cache, progress=False)
    picks = []
    for preset in sorted({r["preset"] for r in rows}):
        mine = sorted((r for r in rows if r["preset"] == preset and r["k"] == k
                       and r["fold"] == fold and r["variant"] == variant and r["counted"]),
                      key=lambda r: (r["dice"], r["image"]))
        picks += [(preset, kind, r) for kind, chosen in (("worst", mine[:n]),
                                                         ("best", mine[::-1][:n]))
                  for r in chosen]
    # encode only what the pictures read: the fold's shots and the chosen images
    needed = set(exp.shots(k, fold)) | {exp.dataset.names.index(r["image"]) for *_, r in picks}
    exp.embeddings.ensure(encoder, progress=False, indices=needed)
    paths = []
    for preset, kind, r in picks:
        image, truth, seg = exp.case(preset, k, fold, r["image"])
        scores = {v: dice(m, truth) for v, m in seg.masks.items()}
        fig = variant_figure(image, truth, seg.masks, seg.prompts, scores)
        fig.suptitle(f"{kind}: {r['image']} ({preset}, k = {k}, fold {fold}; "
                     f"{variant} Dice in the table {r['dice']:.2f})", y=1.04)
        path = out_dir / "figures" / f"case_{preset}_k{k}_{kind}_{r['image']}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=70, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def median_case(rows: list[dict], preset: str, k: str, fold: int, variant: str = "point_box"
                ) -> tuple[dict, int]:
    """The row of ``(preset, k, fold)``'s test image whose ``variant`` Dice is the median
    (the lower one of an even count; ties by name), and how many counted images it is
    the median of."""
    mine = sorted((r for r in rows if r["preset"] == preset and r["k"] == k
                   and r["fold"] == fold and r["variant"] == variant and r["counted"]),
                  key=lambda r: (r["dice"], r["image"]))
    if not mine:
        raise ValueError(f"no counted {variant} rows of {preset}, k = {k}, fold {fold}")
    return mine[(len(mine) - 1) // 2], len(mine)


def method_figure(rows: list[dict], out_dir: Path, data_dir: Path, k: str = "20",
                  fold: int = 0, preset: str = "corrected", variant: str = "point_box",
                  shown=("box", "point_box"), cache=None) -> Path:
    """The method on one image, for a reader who has run nothing (the README): the test
    image of ``(preset, k, fold)`` whose ``variant`` Dice is the fold's median (neither
    picked for looking good nor for looking bad), its coarse mask, the prompts taken
    from it and SAM's masks from ``shown``, each with its Dice.

    Written to ``figures/method_<preset>_k<k>_fold<fold>.png``; the image is segmented
    again from the cached embeddings, as for :func:`case_figures`.
    """
    import matplotlib.pyplot as plt

    from ..metrics import dice
    from .plots import method_figure as draw

    median, n = median_case(rows, preset, k, fold, variant)
    exp, encoder = _experiment(data_dir, rows[0]["backbone"], rows[0]["dataset"],
                               int(rows[0]["seed"]), cache=cache, progress=False)
    exp.embeddings.ensure(encoder, progress=False, indices=set(exp.shots(k, fold)) | {
        exp.dataset.names.index(median["image"])})
    image, truth, seg = exp.case(preset, k, fold, median["image"])
    scores = {v: dice(m, truth) for v, m in seg.masks.items()}
    fig = draw(image, truth, seg, scores, variants=shown)
    fig.suptitle(f"{rows[0]['backbone']}, {preset} preset, k = {k}, fold {fold}: "
                 f"{median['image']}, the median of the fold's {n} test images by "
                 f"{variant} Dice", fontsize=10, y=1.08)
    path = out_dir / "figures" / f"method_{preset}_k{k}_fold{fold}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=70, bbox_inches="tight")
    plt.close(fig)
    return path


def verify(reference_dir: str | Path, data_dir: str | Path, k: str = "10", fold: int = 0,
           presets=("paper", "corrected"), n_images: int | None = None,
           cache: str | Path | None = None, device: str | None = None,
           progress: bool = True) -> dict:
    """Recompute ``(k, fold)`` of the committed reference (its first ``n_images`` test
    images, or all) and compare per-image Dice; returns the comparison per preset.

    The data set must hold the images the reference names (``folds.json``); folds and
    shots are recomputed from the seed and must equal the committed ones. Each preset is
    recomputed with the fields its folds ran with (``provenance.json``'s ``presets``).
    """
    from ..presets import Preset, get_preset
    from .protocol import draw_shots, parse_k

    reference_dir, k = Path(reference_dir), parse_k(k)
    plan = json.loads((reference_dir / "folds.json").read_text())
    provenance = reference_dir / "provenance.json"
    recorded = (json.loads(provenance.read_text()).get("presets", {})
                if provenance.exists() else {})
    committed = [r for r in read_results_gz(reference_dir / "results.csv.gz")
                 if r["k"] == k and int(r["fold"]) == fold]
    if not committed:
        raise ValueError(f"{reference_dir}: no committed rows for k={k}, fold {fold}")
    exp, encoder = _experiment(data_dir, committed[0]["backbone"], committed[0]["dataset"],
                               plan["seed"], plan["n_folds"], cache, device, progress)
    if exp.dataset.names != plan["names"]:
        raise ValueError(f"{data_dir} does not hold the reference's {plan['n_images']} images "
                         f"(names differ): point --data at the same data set")
    embeddings = exp.embeddings
    shots = draw_shots(exp.folds, k, plan["seed"])
    if [te.tolist() for _, te in exp.folds] != [f["test"] for f in plan["folds"]] or \
            k in plan["shots"] and shots != plan["shots"][k]:
        raise ValueError("the recomputed folds or shots differ from the committed folds.json")
    # encode only what the slice reads: the shots of this fold and of the earlier ones, the
    # earlier folds' test images (the paper preset's stream replays their box draws) and
    # this fold's first test images (a fresh cache need not encode the whole data set)
    needed = {i for f in range(fold + 1) for i in shots[f]}
    needed |= {int(i) for f in range(fold) for i in exp.folds[f][1]}
    needed |= {int(i) for i in exp.folds[fold][1][:n_images]}
    embeddings.ensure(encoder, progress=progress, indices=needed)
    out = {}
    for name in presets:
        # the preset as the committed folds computed it (their provenance), else today's
        preset = Preset(**recorded[name]) if name in recorded else get_preset(name)
        rows, _, _, _ = exp.score(preset, k, fold, n_images)
        mine = {(r["image"], r["variant"]): r["dice"] for r in rows}
        theirs = {(r["image"], r["variant"]): r["dice"] for r in committed
                  if r["preset"] == name and (r["image"], r["variant"]) in mine}
        if len(theirs) != len(mine):
            raise ValueError(f"{name}: {len(mine)} recomputed rows, {len(theirs)} committed")
        diffs = {key: abs(mine[key] - theirs[key]) for key in mine}
        worst = max(diffs, key=diffs.get)
        mean_mine = sum(mine.values()) / len(mine)
        mean_theirs = sum(theirs.values()) / len(theirs)
        out[name] = {"rows": len(mine), "identical": sum(d == 0 for d in diffs.values()),
                     "max_diff": diffs[worst], "max_diff_at": list(worst),
                     "mean_committed": mean_theirs, "mean_recomputed": mean_mine,
                     "mean_diff": mean_mine - mean_theirs,
                     "ok": abs(mean_mine - mean_theirs) <= MEAN_TOLERANCE}
    return out
