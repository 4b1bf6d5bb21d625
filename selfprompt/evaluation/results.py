"""The results table and its summary: per fold and overall, per variant.

The tidy table has one row per (image, variant) of every (preset, k, fold) run. The
``counted`` column says whether a row enters the means: under the ``paper`` preset
images with an empty coarse mask do not (D2), and the summary reports how many were
left out, so the bias is visible rather than hidden.
"""
from __future__ import annotations

import csv
import gzip
import io
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..utils.io import atomic_open

log = logging.getLogger(__name__)

#: the tidy table's columns: one row per (image, variant) of a (preset, k, fold) run
COLUMNS = ["dataset", "image", "fold", "k", "seed", "preset", "backbone", "variant",
           "dice", "iou", "empty_prediction", "counted", "draw"]
#: a last column only in folds whose shots were chosen (:mod:`selfprompt.shots`), not
#: drawn at random: their strategy (a row without it: the paper's random draw)
SHOTS_COLUMN = "shots"
#: what a summary's overall ± means, for headers
SD_FOLDS = "sd of the fold means, ddof=1; one fold: of its images"
#: the protocol's seed (its KFold split and first draw of shots): what a row written
#: before rows carried their seed was computed with
PROTOCOL_SEED = 42
GROUP = ("dataset", "backbone", "preset", "k", "variant")
SUMMARY_COLUMNS = list(GROUP) + ["fold", "n_images", "n_counted", "n_empty",
                                 "dice_mean", "dice_std", "iou_mean", "iou_std"]


def _truth(value: str | bool) -> bool:
    return value if isinstance(value, bool) else value.strip().lower() == "true"


def parse_results(lines) -> list[dict]:
    """Rows of a result table given as lines of CSV text (an open file, a gzip stream)."""
    rows = []
    for r in csv.DictReader(lines):
        r["fold"] = int(r["fold"])
        r["dice"], r["iou"] = float(r["dice"]), float(r["iou"])
        r["empty_prediction"] = _truth(r["empty_prediction"])
        r["counted"] = _truth(r["counted"])
        r["draw"] = int(r.get("draw") or 0)  # a table with no draw column: draw 0
        r["seed"] = int(r.get("seed") or PROTOCOL_SEED)   # likewise: the protocol's seed
        rows.append(r)
    return rows


def read_results(paths) -> list[dict]:
    """Rows of one or more result CSVs (fold files or a combined table)."""
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            rows += parse_results(f)
    return rows


def fold_files(run_dir: Path) -> list[Path]:
    """Finished fold CSVs under a run folder (a CSV counts only with its JSON beside it)."""
    return sorted(p for p in Path(run_dir).rglob("fold*.csv") if p.with_suffix(".json").exists())


def load_runs(root: str | Path) -> list[dict]:
    """Rows of every finished fold under ``root`` (a CSV counts only with its JSON).

    The same (data set, backbone, preset, k, seed, fold, draw, variant) found in two
    files (a notebook run and ``make reproduce``) would be counted twice: the newest file
    wins, with a warning. Files holding other variants of the same fold (``make ablations``
    beside ``make reproduce``) are both kept.
    """
    chosen: dict[tuple, tuple[float, Path, list[dict]]] = {}
    for path in fold_files(Path(root)):
        mtime = path.stat().st_mtime
        by_variant: dict[tuple, list[dict]] = {}
        for r in read_results([path]):
            key = (r["dataset"], r["backbone"], r["preset"], r["k"], r["seed"], r["fold"],
                   r["draw"], r["variant"], r.get(SHOTS_COLUMN) or "random")
            by_variant.setdefault(key, []).append(r)
        for key, rows in by_variant.items():
            if key in chosen:
                log.warning("fold %s found twice (%s, %s): the newer one is used",
                            key, chosen[key][1], path)
                if chosen[key][0] >= mtime:
                    continue
            chosen[key] = (mtime, path, rows)
    return [r for key in sorted(chosen, key=str) for r in chosen[key][2]]


def k_order(k: str) -> float:
    """Sort key for k values: numbers in order, ``all`` last."""
    return float("inf") if k == "all" else float(k)


def summary_variant(variant: str, shots: str | None = None) -> str:
    """The variant as the summary names it: shots chosen by a strategy (not the paper's
    random draw) are another method than the same variant on drawn shots, so they get
    lines of their own, ``box (medoids shots)``, in every table and figure built on the
    summary."""
    shots = shots or "random"
    return variant if shots == "random" else f"{variant} ({shots} shots)"


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and std of Dice and IoU per fold and overall (``fold = "all"``), per
    :data:`GROUP` (the variant as :func:`summary_variant` names it).

    The overall line pools the counted images of every fold (the paper's "mean Dice
    over test images"); ``dice_std`` there is the sample sd (ddof=1) of the fold means,
    the spread our tables' ± and error bars show (a fold's own line: the sd of its images).
    Rows of several fold seeds (repeated cross-validation) make a fold per (seed, fold),
    its line's ``fold`` written ``"<fold>@seed<seed>"``; rows of one seed keep the fold's
    number.
    """
    groups: dict[tuple, dict[tuple, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        key = tuple(summary_variant(r["variant"], r.get(SHOTS_COLUMN)) if c == "variant"
                    else r[c] for c in GROUP)
        groups[key][(int(r.get("seed", PROTOCOL_SEED)), r["fold"])].append(r)
    out = []
    for key in sorted(groups, key=lambda g: (g[0], g[1], g[2], k_order(g[3]), g[4])):
        per_fold = groups[key]
        several = len({seed for seed, _ in per_fold}) > 1
        fold_means = []
        for seed, fold in sorted(per_fold):
            label = f"{fold}@seed{seed}" if several else fold
            out.append(_line(key, label, per_fold[seed, fold]))
            if out[-1]["n_counted"]:
                fold_means.append((out[-1]["dice_mean"], out[-1]["iou_mean"]))
        every = [r for fold in per_fold.values() for r in fold]
        line = _line(key, "all", every)
        if len(fold_means) > 1:
            line["dice_std"] = round(float(np.std([m[0] for m in fold_means], ddof=1)), 4)
            line["iou_std"] = round(float(np.std([m[1] for m in fold_means], ddof=1)), 4)
        out.append(line)
    return out


def _line(key: tuple, fold, rows: list[dict]) -> dict:
    counted = [r for r in rows if r["counted"]]
    d = np.array([r["dice"] for r in counted]) if counted else np.array([np.nan])
    j = np.array([r["iou"] for r in counted]) if counted else np.array([np.nan])
    return {**dict(zip(GROUP, key)), "fold": fold, "n_images": len(rows),
            "n_counted": len(counted), "n_empty": sum(r["empty_prediction"] for r in rows),
            "dice_mean": round(float(d.mean()), 4), "dice_std": round(float(d.std()), 4),
            "iou_mean": round(float(j.mean()), 4), "iou_std": round(float(j.std()), 4)}


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    with atomic_open(Path(path), "w") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def percent(value) -> float | None:
    """A fraction as a percentage rounded to 2 decimals; None and NaN stay None."""
    return None if value is None or value != value else round(100 * float(value), 2)


def markdown_table(rows: list[dict], columns: list[str] | None = None, *,
                   empty: str = "_no rows_\n", cell=str) -> str:
    """A list of dicts as a Markdown table (``columns``: the first row's keys by default);
    ``cell`` formats each value, ``empty`` stands in for a table without rows."""
    if not rows:
        return empty
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_markdown(summary: list[dict], fold: str = "all") -> str:
    """The overall lines as a Markdown table (Dice in %, mean ± sd: the sd of the fold
    means, ddof=1, when there are several folds; of the images when there is one)."""
    lines = [f"| data set | backbone | preset | k | variant | Dice % (± {SD_FOLDS}) | "
             f"IoU % (± {SD_FOLDS}) | images | empty |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        if str(s["fold"]) != fold:
            continue
        lines.append(
            f"| {s['dataset']} | {s['backbone']} | {s['preset']} | {s['k']} | {s['variant']} | "
            f"{100 * s['dice_mean']:.2f} ± {100 * s['dice_std']:.2f} | "
            f"{100 * s['iou_mean']:.2f} ± {100 * s['iou_std']:.2f} | "
            f"{s['n_counted']}/{s['n_images']} | {s['n_empty']} |")
    return "\n".join(lines) + "\n"


def collect(run_dir: Path) -> tuple[Path, Path, Path]:
    """Combine a run folder's fold files into ``results.csv``, ``summary.csv``, ``summary.md``."""
    from ..utils.io import atomic_write_text

    run_dir = Path(run_dir)
    rows = read_results(fold_files(run_dir))
    if not rows:
        raise FileNotFoundError(f"{run_dir}: no finished fold results (fold*.csv + .json)")
    strategies = {r.get(SHOTS_COLUMN) or "random" for r in rows}
    summary = summarise(rows)
    extra = [SHOTS_COLUMN] if strategies != {"random"} else []
    results = write_csv(run_dir / "results.csv", rows, COLUMNS + extra)
    table = write_csv(run_dir / "summary.csv", summary, SUMMARY_COLUMNS)
    md = run_dir / "summary.md"
    atomic_write_text(md, to_markdown(summary))
    return results, table, md


def stage_seconds(metas: list[dict]) -> dict:
    """Wall time of a sweep's stages, summed over its folds' JSONs (seconds)."""
    total: dict[str, float] = defaultdict(float)
    for m in metas:
        for stage, s in m.get("seconds", {}).items():
            total[stage] += s
    return {k: round(v, 1) for k, v in total.items()}


def write_results_gz(rows: list[dict], path: Path) -> Path:
    """Every per-image row, gzip-compressed with a fixed timestamp (same bytes each time)."""
    text = io.StringIO()
    extra = [SHOTS_COLUMN] if any(r.get(SHOTS_COLUMN) for r in rows) else []
    writer = csv.DictWriter(text, fieldnames=COLUMNS + extra, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
            gz.write(text.getvalue().encode())
    return path


def read_results_gz(path: Path) -> list[dict]:
    """The rows :func:`write_results_gz` wrote."""
    with gzip.open(path, "rt", newline="") as f:
        return parse_results(f)
