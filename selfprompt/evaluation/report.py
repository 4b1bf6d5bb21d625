"""The report: every finished run, in tables shaped like the paper's, beside its numbers.

Why a module: the report is the kit's answer to "does it reproduce?", so the way runs
are found, de-duplicated, averaged and set against the paper must be one tested
function, not notebook cells. ``write_report`` writes Markdown + CSV tables and the
Dice-against-k figures under ``reports/``; notebook 06 and ``make report`` call it.

The paper's numbers below come from a summary of the paper (docs/method.md lists
them): check them against the paper's own tables before quoting them as final.
A difference is only meaningful for the paper's backbone (``vit_b``).
"""
from __future__ import annotations

import logging
from pathlib import Path

from .results import (SUMMARY_COLUMNS, k_order, load_runs, markdown_table,  # noqa: F401
                      percent, summarise, write_csv)

log = logging.getLogger(__name__)

PAPER_SOURCE = ("Paper's numbers (Dice %, SAM ViT-B) from a summary of Wu, Zhang, Elbatel, "
                "MICCAI DART 2023 (docs/method.md): check them against the paper's tables before "
                "quoting them as final. Differences mean something only for backbone vit_b.")
#: method -> data set -> Dice % at k = 20 (the paper's main table)
PAPER_METHODS: dict[str, dict[str, float]] = {
    "self-prompt, point + box": {"kvasir": 62.78, "isic2018": 66.78},
    "mask-decoder fine-tuning (MedSAM-style)": {"kvasir": 55.01, "isic2018": 64.94},
    "SAMed (LoRA)": {"kvasir": 61.48, "isic2018": 63.27},
    "SAM ViT-B, no prompt": {"kvasir": 52.66, "isic2018": 45.25},
    "SAM ViT-B, prompts from ground truth (upper bound)": {"kvasir": 86.86, "isic2018": 84.28},
    "U-Net, all training data": {"kvasir": 88.10, "isic2018": 88.36},
}
#: which of our variants stands for which of the paper's methods
METHOD_VARIANT = {"self-prompt, point + box": "point_box"}
#: data set -> k -> variant -> Dice % (the paper's table by number of shots)
PAPER_SHOTS: dict[str, dict[str, dict[str, float]]] = {"isic2018": {
    "10": {"linear": 58.81, "point": 59.49, "box": 47.13, "point_box": 64.22},
    "20": {"linear": 62.69, "point": 61.23, "box": 47.99, "point_box": 66.78},
    "40": {"linear": 63.81, "point": 61.52, "box": 49.81, "point_box": 67.88},
    "all": {"linear": 65.62, "point": 61.76, "box": 55.03, "point_box": 69.51},
}}
PAPER_SHOTS["kvasir"] = {"20": {"point_box": PAPER_METHODS["self-prompt, point + box"]["kvasir"]}}


def _overall(summary: list[dict]) -> dict[tuple, dict]:
    """(data set, backbone, preset, k, variant) -> its line pooled over folds."""
    return {(s["dataset"], s["backbone"], s["preset"], s["k"], s["variant"]): s
            for s in summary if str(s["fold"]) == "all"}


def _diff(ours: float | None, paper: float | None) -> float | None:
    return None if ours is None or paper is None else round(ours - paper, 2)


def n_folds(summary: list[dict], key: tuple) -> int:
    return sum(1 for s in summary if str(s["fold"]) != "all"
               and (s["dataset"], s["backbone"], s["preset"], s["k"], s["variant"]) == key)


def method_table(summary: list[dict], k: str = "20", preset: str = "paper") -> list[dict]:
    """Method x data set at ``k``: the paper's rows, ours where we compute that method."""
    overall = _overall(summary)
    combos = sorted({(d, b) for d, b, p, kk, _ in overall if p == preset and kk == k})
    out = []
    for method, by_data in PAPER_METHODS.items():
        for dataset in ("kvasir", "isic2018"):
            row = {"method": method, "dataset": dataset, "k": k, "preset": preset,
                   "backbone": "", "ours": None, "ours_std": None,
                   "paper": by_data.get(dataset), "diff": None}
            variant = METHOD_VARIANT.get(method)
            mine = [(b, overall[(d, b, preset, k, variant)]) for d, b in combos
                    if d == dataset and (d, b, preset, k, variant) in overall]
            if not mine:
                out.append(row)
            for backbone, s in mine:
                ours = percent(s["dice_mean"])
                out.append({**row, "backbone": backbone, "ours": ours,
                            "ours_std": percent(s["dice_std"]), "diff": _diff(ours, row["paper"])})
    return out


def shots_table(summary: list[dict]) -> list[dict]:
    """Variant x k per (data set, backbone, preset), beside the paper's by-shots numbers."""
    out = []
    for key, s in sorted(_overall(summary).items(),
                         key=lambda kv: (kv[0][:3], k_order(kv[0][3]), kv[0][4])):
        dataset, backbone, preset, k, variant = key
        paper = PAPER_SHOTS.get(dataset, {}).get(k, {}).get(variant)
        ours = percent(s["dice_mean"])
        out.append({"dataset": dataset, "backbone": backbone, "preset": preset, "k": k,
                    "variant": variant, "ours": ours, "ours_std": percent(s["dice_std"]),
                    "folds": n_folds(summary, key), "images": f"{s['n_counted']}/{s['n_images']}",
                    "paper": paper, "diff": _diff(ours, paper)})
    return out


def preset_table(summary: list[dict]) -> list[dict]:
    """``paper`` against ``corrected`` on the same folds: what the defects are worth."""
    overall = _overall(summary)
    out = []
    for (dataset, backbone, preset, k, variant), s in sorted(
            overall.items(), key=lambda kv: (kv[0][:2], k_order(kv[0][3]), kv[0][4])):
        other = overall.get((dataset, backbone, "corrected", k, variant))
        if preset != "paper" or other is None:
            continue
        p, c = percent(s["dice_mean"]), percent(other["dice_mean"])
        out.append({"dataset": dataset, "backbone": backbone, "k": k, "variant": variant,
                    "paper_preset": p, "corrected_preset": c, "diff": _diff(c, p),
                    "left_out_by_paper": s["n_images"] - s["n_counted"]})
    return out


def _cell(value) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def to_markdown(rows: list[dict], columns: list[str] | None = None) -> str:
    """A list of dicts as a Markdown table; numbers to 2 decimals, missing ones as a dash."""
    return markdown_table(rows, columns, empty="_no finished runs for this table_\n",
                          cell=_cell)


def fold_cases(rows: list[dict], variant: str = "point_box", n: int = 3,
               lesions: dict[str, int] | None = None) -> dict:
    """What a fold's table says beyond its mean: best and worst images, failure modes.

    ``lesions`` maps image name to its number of true lesions (connected components);
    with it, images with several lesions are scored apart (one point prompts one).
    """
    mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["dice"])
    empty = [r["image"] for r in mine if r["empty_prediction"]]
    out = {"variant": variant, "n_images": len(mine), "worst": mine[:n], "best": mine[::-1][:n],
           "empty_coarse": empty, "left_out": [r["image"] for r in mine if not r["counted"]]}
    if lesions is not None:
        several = [r for r in mine if lesions.get(r["image"], 1) > 1]
        single = [r for r in mine if lesions.get(r["image"], 1) <= 1]
        out["several_lesions"] = [r["image"] for r in several]
        out["dice_several"] = _mean([r["dice"] for r in several])
        out["dice_single"] = _mean([r["dice"] for r in single])
    return out


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def dice_vs_k_figures(summary: list[dict], out_dir: Path) -> list[Path]:
    """One Dice-against-k figure per (data set, backbone), both presets, point_box + linear."""
    import matplotlib.pyplot as plt

    from .plots import dice_vs_k

    paths = []
    for dataset, backbone in sorted({(s["dataset"], s["backbone"]) for s in summary}):
        part = [s for s in summary if s["dataset"] == dataset and s["backbone"] == backbone]
        fig = dice_vs_k(part, f"{dataset}, {backbone}", variants=("linear", "point_box"))
        path = Path(out_dir) / f"dice_vs_k_{dataset}_{backbone}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def ablation_sections(ablations_root: Path, k: str = "20") -> list[str]:
    """The paper's comparison table for every (data set, backbone) that ``make
    ablations`` has results for (``reports/ablations/runs/<data set>/<backbone>``): its
    baselines beside the paper's, on the same folds and shots as the sweep."""
    from .ablations import comparison_table

    out = []
    for folder in sorted(p for p in Path(ablations_root).glob("*/*")
                         if p.is_dir() and p.parent.name != "notebooks"):
        rows = comparison_table(folder, k)
        if any(r["ours"] is not None for r in rows):
            dataset, backbone = folder.parent.name, folder.name
            out.append(f"## The paper's comparison: {dataset}, {backbone} (k = {k}, "
                       f"corrected preset; `make ablations`)\n\n{to_markdown(rows)}\n"
                       f"Every study, table and figure: `reports/ablations/{dataset}/"
                       f"{backbone}/ablations.md`.\n")
    return out


def build(root: str | Path, k: str = "20") -> dict[str, list[dict]]:
    """All tables of the report from the finished runs under ``root``."""
    rows = load_runs(root)
    if not rows:
        raise FileNotFoundError(f"{root}: no finished fold results (fold*.csv + .json); "
                                "run `make reproduce` (or notebook 05) first")
    summary = summarise(rows)
    return {"summary": summary, "methods": method_table(summary, k),
            "shots": shots_table(summary), "presets": preset_table(summary)}


def write_report(root: str | Path = "reports/runs", out_dir: str | Path = "reports",
                 k: str = "20") -> dict[str, Path]:
    """Write ``report.md`` and one CSV per table under ``out_dir``, figures under
    ``out_dir/figures``; returns the paths by name."""
    from ..utils.io import atomic_write_text

    out_dir = Path(out_dir)
    tables = build(root, k)
    paths = {"summary": write_csv(out_dir / "summary.csv", tables["summary"], SUMMARY_COLUMNS)}
    text = [f"# Results\n\n{PAPER_SOURCE}\n"]
    titles = {"methods": (f"Method x data set (k = {k}, preset paper; ours_std: the sd of "
                          "the fold means, ddof=1)"),
              "shots": "Variant x k (ours ± ours_std: the sd of the fold means, ddof=1)",
              "presets": "paper against corrected preset (corrected minus paper)"}
    for name, title in titles.items():
        rows = tables[name]
        if rows:
            paths[name] = write_csv(out_dir / f"table_{name}.csv", rows, list(rows[0]))
        datasets = sorted({r["dataset"] for r in rows})
        if name == "shots" and len(datasets) > 1:  # several data sets: a table each
            text.append(f"## {title}\n\n" + "\n".join(
                f"### {d}\n\n{to_markdown([r for r in rows if r['dataset'] == d])}"
                for d in datasets))
        else:
            text.append(f"## {title}\n\n{to_markdown(rows)}")
    text += ablation_sections(Path(root).parent / "ablations" / "runs", k)
    figures = dice_vs_k_figures(tables["summary"], out_dir / "figures")
    text.append("## Dice against k\n\n" + "\n".join(
        f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in figures) + "\n")
    paths["report"] = out_dir / "report.md"
    atomic_write_text(paths["report"], "\n".join(text))
    for p in figures:
        paths[p.stem] = p
    return paths
