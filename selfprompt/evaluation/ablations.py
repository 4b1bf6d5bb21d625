"""Baselines and ablations: what self-prompting is measured against, and what it is made of.

A *study* is a question answered by a set of (preset, k, variant, draw) cells on the
protocol's folds: the same images, folds and k shots as the main sweep, from the same
embedding cache (no second encoder pass). Its rows go into the same results table
(same columns, same ``counted`` rule per preset), one run folder per study under
``reports/ablations/runs/<data set>/<backbone>/<study>/`` (apart from ``reports/runs``:
a study scoring part of each fold must not stand in for a whole fold in the main
report), resumable fold by fold like ``make reproduce``. ``write`` turns the finished
studies into tables, figures and a Markdown page (``make ablations``).

Studies (:data:`STUDIES`):

- ``baselines``: SAM with no prompt, SAM with prompts from the true mask (upper bound),
  beside the paper's self-prompts on the same images (the paper's comparison table).
- ``finetune``: SAM's mask decoder fine-tuned on the k shots
  (:mod:`selfprompt.methods.finetune`), decoded with no prompt and with the self-prompts.
- ``strategies``: prompts the paper did not try (:mod:`selfprompt.strategies`).
- ``classifiers``: other pixel classifiers on the same cells, and other thresholds.
- ``shots``: k from 1 to 40 with repeated draws of the k shots, spread over both.
- ``selection``: which k images to label: the paper's random draw beside shots chosen
  from the embeddings alone (:mod:`selfprompt.shots`: ``kcenter``, diverse; ``medoids``,
  representative), each on three fold seeds (repeated cross-validation: every strategy
  gets three units per fold position).
- ``auto``: the prompt and threshold chosen on the k shots (:mod:`selfprompt.methods.recipe`)
  beside every fixed candidate it chooses among (each prompt at each candidate threshold),
  the oracle (the best of them on the test images) and auto's gap to it, and how often
  it chose each.
- ``persam``: PerSAM and PerSAM-F in the authors' form and the kit's aligned form, and
  PerSAM without target guidance (:mod:`selfprompt.methods.persam`), beside
  self-prompting, on three fold seeds.

**Fold seeds.** A study runs the protocol's seed (42: its KFold split and draws) and,
with ``seeds``, the whole protocol again under each other seed (another split, other
shots) in a subfolder ``seed<N>/`` of the study's folder, with its own ``folds.json``;
rows carry their ``seed``, and the tables pair and spread over (seed, fold) units.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..methods.recipe import AUTO, AUTO_PROMPTS, AUTO_THRESHOLDS, option
from .protocol import parse_k
from .results import (PROTOCOL_SEED, SHOTS_COLUMN, k_order, load_runs, markdown_table, percent,
                      stage_seconds, summarise, summary_variant, write_csv, write_results_gz)
from .stats import (PAIRED_MEANING, SD_UNITS, mean_sd_units, paired_difference, sd_units,
                    unit_of, with_holm)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Study:
    name: str
    question: str
    presets: tuple[str, ...]
    ks: tuple[str, ...]
    variants: tuple[str, ...]
    #: repeated draws of the random shots (chosen shots have one: draw 0)
    draws: tuple[int, ...] = (0,)
    #: how the shots are chosen (:data:`selfprompt.shots.SHOT_STRATEGIES`)
    shot_strategies: tuple[str, ...] = ("random",)
    #: fold seeds, each a whole run of the protocol (None: the protocol's seed alone)
    seeds: tuple[int, ...] | None = None


#: the ``auto`` study's presets: the corrected one (threshold 0.5, auto's rows) and one
#: per other candidate threshold of :data:`~selfprompt.methods.recipe.AUTO_THRESHOLDS`
AUTO_PRESETS = ("corrected",) + tuple(f"corrected+threshold={t:g}" for t in AUTO_THRESHOLDS
                                      if t != 0.5)
#: the preset whose rows hold auto's own
AUTO_PRESET = "corrected"
#: the candidate prompts the ``auto`` study scores (all of them)
AUTO_CANDIDATES = AUTO_PROMPTS

STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("baselines", "How close do self-prompts come to perfect prompts, and how far above "
          "no prompt?", ("corrected",), ("20",),
          ("linear", "box", "point_box", "no_prompt", "gt_point", "gt_box", "gt_point_box")),
    Study("finetune", "Is prompting a frozen decoder better than fine-tuning it on the same "
          "k shots?", ("corrected",), ("20",), ("ft_no_prompt", "ft_box", "ft_point_box")),
    Study("strategies", "Which prompt does SAM make most of?", ("corrected",), ("20",),
          ("points_cc", "peaks3_box", "box_cc", "box_neg", "mask", "box_mask", "box_refine")),
    Study("classifiers", "Does the classifier matter: scaling, class balance, non-linear "
          "models, the threshold?",
          ("corrected", "corrected+classifier=logreg_balanced",
           "corrected+classifier=logreg_scaled", "corrected+classifier=mlp",
           "corrected+classifier=knn", "corrected+threshold=0.3", "corrected+threshold=0.7"),
          ("20",), ("linear", "box")),
    Study("shots", "How many labelled images are enough, and how much does it matter "
          "which ones?", ("corrected",), ("1", "2", "5", "10", "20", "40", "all"),
          ("linear", "box"), draws=(0, 1, 2)),
    Study("selection", "Which k images should be labelled: drawn at random, or chosen from "
          "the embeddings for diversity (kcenter) or representativeness (medoids)?",
          ("corrected",), ("1", "2", "5", "10", "20"), ("linear", "box"), draws=(0,),
          shot_strategies=("random", "kcenter", "medoids"), seeds=(42, 43, 44)),
    # every candidate auto chooses among, fixed (prompts x thresholds), scored beside it;
    # auto's choice does not depend on the preset's threshold (one choice per fold and
    # k, reused by the threshold presets: recipe._CHOSEN), its rows are the corrected's
    Study("auto", "Can the k shots choose the prompt and the classifier's threshold "
          "themselves (cross-validation inside the shots), and how far is that from the "
          "best fixed candidate on the test images?", AUTO_PRESETS,
          ("1", "2", "5", "10", "20"), AUTO_CANDIDATES + (AUTO,)),
    Study("persam", "How does a training-free peer, PerSAM (and PerSAM-F), compare with "
          "self-prompting on the same folds, shots and images, in its authors' form and "
          "the kit's aligned form, and without target guidance?", ("corrected",),
          ("1", "20"), ("linear", "box", "point_box", "persam", "persam_aligned",
                        "persam_noguide", "persam_f"),
          seeds=(42, 43, 44)),
)}

#: the studies beyond the paper, committed apart from the reference's own ablations
BEYOND = ("selection", "auto", "persam")


def run_study(study: Study | str, dataset, embeddings, backbone, out_root: str | Path,
              dataset_name: str, folds=range(5), seed: int = 42, ks=None,
              test_per_fold: int | None = None, finetune=None,
              progress: bool = True, seeds=None) -> list[Path]:
    """Every (seed, preset, k, draw, fold) cell of ``study``; finished cells are skipped.

    ``seeds``: the fold seeds (default: the study's, else ``seed`` alone); ``seed`` is the
    protocol's, written in the study's folder as always; every other seed runs the
    protocol again (its own KFold split and shots) in ``<study>/seed<N>/``.

    ``ks`` overrides the study's k values (CI-sized runs); ``test_per_fold`` scores the
    first that many test images of each fold only (each study decodes several prompts
    an image: on 2 CPU cores all 1000 Kvasir-SEG images take hours). ``finetune``: the
    :class:`~selfprompt.methods.finetune.DecoderFineTuner` of the ``ft_*`` variants (default: its
    defaults, seeded by ``seed``). Returns the fold CSVs.
    """
    from .protocol import Experiment

    study = STUDIES[study] if isinstance(study, str) else study
    seeds = tuple(int(s) for s in (seeds or study.seeds or (seed,)))
    paths = []
    cells = [(fold_seed, s, d) for fold_seed in seeds for s in study.shot_strategies
             for d in (study.draws if s == "random" else (0,))]
    for fold_seed, strategy, draw in cells:
        out = seed_folder(Path(out_root) / study.name, fold_seed, seed)
        exp = Experiment(dataset, embeddings, backbone, out, dataset_name=dataset_name,
                         seed=fold_seed, variants=study.variants, progress=progress,
                         draw=draw, test_per_fold=test_per_fold, finetune=finetune,
                         shot_strategy=strategy)
        ks_here = [parse_k(k) for k in (ks or study.ks)]
        if draw == 0 and strategy == "random":
            exp.write_plan(ks_here)
        for preset in study.presets:
            for k in ks_here:
                if k == "all" and draw > 0:  # every training image: no other draw to make
                    continue
                for fold in folds:
                    paths.append(exp.run_fold(preset, k, fold))
    return paths


def seed_folder(study_dir: Path, fold_seed: int, protocol_seed: int = PROTOCOL_SEED) -> Path:
    """Where a study's folds of one fold seed live: the study's folder for the protocol's
    seed (as before seeds were repeated), ``seed<N>/`` in it for any other."""
    return study_dir if fold_seed == protocol_seed else study_dir / f"seed{fold_seed}"


# ------------------------------------------------------------------ tables
def study_rows(run_root: str | Path, study: str) -> list[dict]:
    folder = Path(run_root) / study
    return load_runs(folder) if folder.is_dir() else []


def _overall(rows: list[dict]) -> dict[tuple, dict]:
    """(preset, k, variant) -> the summary line pooled over folds (and draws)."""
    return {(s["preset"], s["k"], s["variant"]): s for s in summarise(rows)
            if str(s["fold"]) == "all"}


#: the paper's comparison table (Kvasir-SEG, Dice %, k = 20) and what stands for each row
COMPARISON = (
    ("self-prompt, point + box (the paper's method)", 62.78, "baselines", "point_box"),
    ("self-prompt, box only", None, "baselines", "box"),
    ("self-prompt, the classifier's mask alone", None, "baselines", "linear"),
    ("mask-decoder fine-tuning on the k shots (MedSAM-style: box prompts), self-prompted box",
     55.01, "finetune", "ft_box"),
    ("mask-decoder fine-tuning, self-prompted point + box", None, "finetune", "ft_point_box"),
    ("mask-decoder fine-tuning, no prompt (trained with boxes only)", None, "finetune",
     "ft_no_prompt"),
    ("SAMed (encoder LoRA)", 61.48, None, "not run: needs a GPU (none was lent)"),
    ("SAM without a prompt", 52.66, "baselines", "no_prompt"),
    ("SAM, point + box from the true mask (upper bound)", 86.86, "baselines", "gt_point_box"),
    ("SAM, box from the true mask", None, "baselines", "gt_box"),
    ("U-Net trained on all data", 88.10, None, "not run: outside the kit"),
)


def comparison_table(run_root: str | Path, k: str = "20", preset: str = "corrected") -> list[dict]:
    """The paper's comparison rows with ours beside them (same folds, k, preset)."""
    cache: dict[str, dict] = {}
    out = []
    for method, paper, study, variant in COMPARISON:
        row = {"method": method, "variant": variant if study else "", "paper": paper,
               "ours": None, "ours_std": None, "diff": None,
               "note": "" if study else variant}
        if study:
            if study not in cache:
                cache[study] = _overall(study_rows(run_root, study))
            s = cache[study].get((preset, k, variant))
            if s is not None:
                row["ours"], row["ours_std"] = percent(s["dice_mean"]), percent(s["dice_std"])
                row["diff"] = None if paper is None else round(row["ours"] - paper, 2)
            else:
                row["note"] = f"not computed yet: make ablations STUDIES={study}"
        out.append(row)
    return out


#: the columns every paired comparison reports (:mod:`.stats`), after the arms' names
PAIRED_COLUMNS = ("diff", "ci_low", "ci_high", "p", "p_holm", "units", "images", "verdict")


def _paired(a: list[dict], b: list[dict]) -> dict:
    """One comparison's row part: A - B over units (p_holm and verdict once the table's
    family is complete: :func:`~.stats.with_holm`)."""
    out = paired_difference(a, b).row()
    return {c: out.get(c) for c in PAIRED_COLUMNS}


def _by_cell(rows: list[dict]) -> dict[tuple, list[dict]]:
    """(preset, k, variant as the summary names it) -> rows."""
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        out[(r["preset"], r["k"], summary_variant(r["variant"], r.get(SHOTS_COLUMN)))].append(r)
    return out


def variant_table(run_root: str | Path, study: str, versus: tuple[str, str] | None = None,
                  versus_preset: str | None = None) -> list[dict]:
    """One row per (preset, k, variant) of a study: Dice and IoU pooled over the test
    images, ``dice_sd_units`` the sd of the fold means (ddof=1), and the paired difference
    to a reference on the same images (:data:`PAIRED_COLUMNS`, Holm over the table's
    rows): ``versus`` = (study, variant) of the same preset and k, or ``versus_preset``
    (same variant and k)."""
    from ..presets import get_preset
    from ..strategies import STRATEGIES

    own = study_rows(run_root, study)
    overall = _overall(own)
    cells = _by_cell(own)
    ref_cells = cells if versus is None or versus[0] == study else _by_cell(
        study_rows(run_root, versus[0]))
    reference = versus[1] if versus else versus_preset
    out = []
    for (preset, k, variant), s in sorted(overall.items(),
                                          key=lambda kv: (kv[0][0], k_order(kv[0][1]))):
        p = get_preset(preset)
        row = {"preset": preset, "classifier": p.classifier, "threshold": p.threshold, "k": k,
               "variant": variant,
               "what": STRATEGIES[variant][0] if variant in STRATEGIES else variant,
               "dice": percent(s["dice_mean"]),
               "dice_sd_units": _round(mean_sd_units(cells[(preset, k, variant)])
                                       ["dice_sd_units"]),
               "iou": percent(s["iou_mean"]), "counted": f"{s['n_counted']}/{s['n_images']}"}
        if reference:
            key = (preset, k, versus[1]) if versus else (versus_preset, k, variant)
            itself = key == (preset, k, variant) and (versus is None or versus[0] == study)
            ref = None if itself else ref_cells.get(key)
            row["versus"] = reference
            row.update(_paired(cells[(preset, k, variant)], ref) if ref
                       else dict.fromkeys(PAIRED_COLUMNS))
        out.append(row)
    tested = [r for r in out if r.get("units")]
    with_holm(tested)
    return out


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def paired_table(rows: list[dict], versus: str) -> list[dict]:
    """Each variant against ``versus`` on the same images, per (preset, k, shot
    strategy): the paired difference over units (seed, fold, draw) with its 95 %
    interval, paired t-test and Holm's adjustment over the table's comparisons
    (:data:`PAIRED_COLUMNS`; :mod:`.stats`)."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        cells[(r["preset"], r["k"], r.get(SHOTS_COLUMN) or "random", r["variant"])].append(r)
    out = []
    for key in sorted(cells, key=lambda c: (c[0], k_order(c[1]), *c[2:])):
        ref = cells.get(key[:3] + (versus,))
        if ref is None or key[3] == versus:
            continue
        line = _paired(cells[key], ref)
        if line["units"]:
            out.append({"preset": key[0], "k": key[1], "shots": key[2], "variant": key[3],
                        "versus": versus, **line})
    return with_holm(out)


def selection_vs_random(rows: list[dict]) -> list[dict]:
    """Each chosen set of shots against the random draws, per (preset, k, variant,
    strategy): the paired difference over units (seed, fold), each image's random Dice
    averaged over its draws first (:func:`~.stats.paired_difference`), with its 95 %
    interval, paired t-test and Holm's adjustment over the table's comparisons."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        cells[(r["preset"], r["k"], r["variant"], r.get(SHOTS_COLUMN) or "random")].append(r)
    out = []
    for (preset, k, variant, strategy), mine in sorted(
            cells.items(), key=lambda kv: (kv[0][0], k_order(kv[0][1]), kv[0][2], kv[0][3])):
        random_ = cells.get((preset, k, variant, "random"))
        if strategy == "random" or random_ is None:
            continue
        line = _paired(mine, random_)
        if line["units"]:
            out.append({"preset": preset, "k": k, "variant": variant, "shots": strategy,
                        "versus": "random", **line})
    return with_holm(out)


def shots_curve(rows: list[dict]) -> list[dict]:
    """Per (k, variant): Dice pooled over every fold and draw; ``sd_folds``, the sd of
    the fold means within a draw of one cross-validation seed (averaged over those);
    ``sd_draws``, the sd of the draw means (each pooled over folds); both ddof=1. The
    band (``min_unit``, ``max_unit``) spans the means of the units, (seed, fold, draw);
    ``folds`` counts (seed, fold) pairs."""
    units: dict[tuple, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["counted"]:
            units[(r["preset"], r["k"], r["variant"])][unit_of(r)].append(r["dice"])
    out = []
    for (preset, k, variant), by_unit in sorted(units.items(),
                                                key=lambda kv: (kv[0][0], k_order(kv[0][1]),
                                                                kv[0][2])):
        draws = sorted({d for _, _, d in by_unit})
        fold_sd = [sd_units([np.mean(v) for (s, _, d), v in by_unit.items() if (s, d) == sd])
                   for sd in sorted({(s, d) for s, _, d in by_unit})]
        fold_sd = [x for x in fold_sd if x is not None]
        draw_means = [np.mean([x for (_, _, d), v in by_unit.items() if d == dr for x in v])
                      for dr in draws]
        every = [x for v in by_unit.values() for x in v]
        unit_means = [np.mean(v) for v in by_unit.values()]
        out.append({"preset": preset, "k": k, "variant": variant, "dice": percent(np.mean(every)),
                    "sd_folds": percent(np.mean(fold_sd)) if fold_sd else None,
                    "sd_draws": percent(sd_units(draw_means)),
                    "min_unit": percent(min(unit_means)), "max_unit": percent(max(unit_means)),
                    "draws": len(draws), "folds": len({(s, f) for s, f, _ in by_unit}),
                    "images": len(every)})
    return out


def selection_curve(rows: list[dict]) -> list[dict]:
    """:func:`shots_curve` per shot strategy (``shots`` column; random first)."""
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r.get("shots") or "random"].append(r)
    order = sorted(by, key=lambda s: (s != "random", s))
    out = [{"shots": s, **c} for s in order for c in shots_curve(by[s])]
    return sorted(out, key=lambda c: (c["preset"], k_order(c["k"]), c["variant"],
                                      order.index(c["shots"])))


def auto_choices(run_root: str | Path, study: str = "auto") -> list[dict]:
    """How often ``auto`` chose each prompt and threshold: one row per (preset, k, choice),
    with the folds that chose it, the mean inner-CV Dice of the choice and the folds
    where there was no cross-validation (``cv`` "none": the backbone's own recipe).
    Folds of the ``auto`` study's threshold presets are left out: auto's choice there
    is :data:`AUTO_PRESET`'s own (it does not depend on the preset's threshold)."""
    folder = Path(run_root) / study
    count: dict[tuple, list[float]] = defaultdict(list)
    seconds: dict[tuple, list[float]] = defaultdict(list)
    folds: dict[tuple, int] = defaultdict(int)
    fallback: dict[tuple, int] = defaultdict(int)
    for p in sorted(folder.rglob("fold[0-9]*.json")) if folder.is_dir() else []:
        meta = json.loads(p.read_text())
        auto = meta.get("auto")
        if not auto:
            continue
        preset = meta["preset"]["name"] if isinstance(meta.get("preset"), dict) else "?"
        if study == "auto" and preset in AUTO_PRESETS and preset != AUTO_PRESET:
            continue
        key = (preset, str(meta["k"]))
        choice = f"{auto['prompt']}@{auto['threshold']:g}"
        count[key + (choice,)].append(auto["scores"].get(choice, float("nan")))
        seconds[key].append(auto.get("seconds", 0.0))
        folds[key] += 1
        fallback[key + (choice,)] += auto.get("cv") == "none"
    return [{"preset": pr, "k": k, "choice": c, "folds": f"{len(v)}/{folds[(pr, k)]}",
             "no_cv": fallback[(pr, k, c)],
             "inner_dice": percent(np.mean(v)),
             "seconds_per_fold": round(float(np.mean(seconds[(pr, k)])), 1)}
            for (pr, k, c), v in sorted(count.items(),
                                        key=lambda kv: (kv[0][0], k_order(kv[0][1]),
                                                        -len(kv[1]), kv[0][2]))]


def _auto_cells(run_root: str | Path, study: str = "auto") -> tuple[dict, str | None]:
    """(k, option or ``auto``) -> summary line pooled over folds, and the backbone: the
    candidates' rows from every threshold preset, auto's from :data:`AUTO_PRESET`."""
    from ..presets import get_preset

    rows = study_rows(run_root, study)
    backbones = sorted({r["backbone"] for r in rows})
    cells = {}
    for (preset, k, variant), s in _overall(rows).items():
        if variant == AUTO:
            if preset == AUTO_PRESET:
                cells[(k, AUTO)] = s
        else:
            cells[(k, option(variant, get_preset(preset).threshold))] = s
    return cells, (backbones[0] if len(backbones) == 1 else None)


def auto_table(run_root: str | Path, study: str = "auto") -> list[dict]:
    """Every fixed candidate (prompt @ threshold) beside ``auto``, per k: Dice and IoU
    pooled over the test images of every fold (± the spread of fold means) and each
    candidate's difference from auto (points; positive: the candidate did better)."""
    cells, _ = _auto_cells(run_root, study)
    out = []
    for k in sorted({k for k, _ in cells}, key=k_order):
        auto = cells.get((k, AUTO))
        for name in [AUTO] * (auto is not None) + _candidate_order(cells, k):
            s = cells[(k, name)]
            prompt, _, threshold = name.partition("@")
            d = percent(s["dice_mean"])
            out.append({"k": k, "option": name, "prompt": prompt,
                        "threshold": float(threshold) if threshold else None,
                        "dice": d, "dice_std": percent(s["dice_std"]),
                        "iou": percent(s["iou_mean"]), "images": s["n_counted"],
                        "minus_auto": (None if auto is None or name == AUTO
                                       else round(d - percent(auto["dice_mean"]), 2))})
    return out


def _candidate_order(cells: dict, k: str) -> list[str]:
    """The options scored at ``k`` in candidate order (prompts as listed, each at the
    thresholds in :data:`AUTO_THRESHOLDS` order), then any other."""
    listed = [option(p, t) for p in AUTO_CANDIDATES for t in AUTO_THRESHOLDS]
    here = [n for (kk, n) in cells if kk == k and n != AUTO]
    return [n for n in listed if n in here] + sorted(n for n in here if n not in listed)


def auto_oracle(run_root: str | Path, study: str = "auto") -> list[dict]:
    """Per k: auto's Dice, the oracle (the fixed candidate with the best Dice on these
    test images: a choice no user can make, the ceiling of choosing among them; ties to
    the first in candidate order) and auto's gap to it, and the backbone's own recipe
    (its trained prompt at 0.5: what auto falls back to) and auto's difference from it.
    Points of Dice, pooled over the test images of every fold."""
    from ..methods.recipe import FALLBACK_THRESHOLD, backbone_prompt
    from ..models.registry import BACKBONES

    cells, backbone = _auto_cells(run_root, study)
    spec = BACKBONES.get(backbone) if backbone else None
    own = (option(backbone_prompt(spec.trained_with), FALLBACK_THRESHOLD)
           if spec is not None else None)
    out = []
    for k in sorted({k for k, _ in cells}, key=k_order):
        names = _candidate_order(cells, k)
        if not names:
            continue
        dice_of = {n: percent(cells[(k, n)]["dice_mean"]) for n in names}
        best = max(names, key=lambda n: dice_of[n])          # max keeps the first of equals
        auto = cells.get((k, AUTO))
        a = None if auto is None else percent(auto["dice_mean"])
        out.append({"k": k, "auto": a, "oracle": best, "oracle_dice": dice_of[best],
                    "gap": None if a is None else round(a - dice_of[best], 2),
                    "own": own, "own_dice": dice_of.get(own),
                    "auto_minus_own": (None if a is None or own not in dice_of
                                       else round(a - dice_of[own], 2)),
                    "candidates": len(names)})
    return out


def to_markdown(rows: list[dict]) -> str:
    """A study's rows as a Markdown table, values as computed, missing ones as a dash."""
    return markdown_table(rows, empty="_not computed_\n",
                          cell=lambda v: "—" if v is None or v == "" else str(v))


def shots_figure(curve: list[dict]):
    """Dice against k per variant, with the range of fold-and-draw means as a band."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (preset, variant) in sorted({(c["preset"], c["variant"]) for c in curve}):
        part = [c for c in curve if c["preset"] == preset and c["variant"] == variant]
        x = np.arange(len(part))
        ax.plot(x, [c["dice"] for c in part], marker="o", label=f"{variant} ({preset})")
        ax.fill_between(x, [c["min_unit"] for c in part], [c["max_unit"] for c in part],
                        alpha=0.2)
        ax.set_xticks(x, [c["k"] for c in part])
    ax.set_xlabel("k (labelled images)")
    ax.set_ylabel("Dice %")
    ax.set_title("Dice against k: line = mean, band = range over folds x draws")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def selection_figure(curve: list[dict], variant: str = "box"):
    """Dice against k, one line per shot strategy (``variant``'s masks); random's band is
    the range over its folds and draws."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy in sorted({c["shots"] for c in curve}, key=lambda s: (s != "random", s)):
        part = [c for c in curve if c["shots"] == strategy and c["variant"] == variant]
        x = np.arange(len(part))
        ax.plot(x, [c["dice"] for c in part], marker="o", label=strategy)
        if strategy == "random":
            ax.fill_between(x, [c["min_unit"] for c in part], [c["max_unit"] for c in part],
                            alpha=0.15, label="random: one fold and draw, lowest to highest")
        ax.set_xticks(x, [c["k"] for c in part])
    ax.set_xlabel("k (labelled images)")
    ax.set_ylabel(f"Dice % ({variant})")
    ax.set_title("Which shots: Dice against k per shot strategy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def bars_figure(table: list[dict], title: str, label: str = "variant"):
    """Mean Dice per row of a study table, with its spread over folds."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.4 * len(table) + 1.2))
    y = np.arange(len(table))
    ax.barh(y, [r["dice"] for r in table], xerr=[r["dice_sd_units"] or 0 for r in table],
            color="C0")
    ax.set_yticks(y, [str(r[label]) for r in table])
    ax.invert_yaxis()
    ax.set_xlabel("Dice % (mean over test images; bar: sd of the fold means, ddof=1)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def per_image_seconds(metas: list[dict]) -> dict[str, float]:
    """Mean seconds an image took by part of its segmentation (``self_prompt``: the
    coarse mask, its prompts and the paper's four variants; then each other variant's
    own), over every image of the folds that recorded them."""
    total: dict[str, float] = defaultdict(float)
    images: dict[str, int] = defaultdict(int)
    for m in metas:
        for part, s in m.get("seconds_per_image", {}).items():
            total[part] += s * m["n_test"]
            images[part] += m["n_test"]
    return {part: round(total[part] / images[part], 4) for part in sorted(total)}


def provenance(metas: list[dict], command: str = "make reference-ablations") -> dict:
    """What the studies were computed from and with: one summary of the folds' JSONs."""
    from ..utils.provenance import environment

    def every(key, inner=None):
        values = {json.dumps(m.get(key) if inner is None else m.get(key, {}).get(inner))
                  for m in metas}
        return sorted(json.loads(v) for v in values if v != "null")

    studies = {}
    for name in sorted({m["study"] for m in metas}):
        mine = [m for m in metas if m["study"] == name]
        studies[name] = {"folds": len(mine), "seeds": sorted({m["seed"] for m in mine
                                                              if "seed" in m}),
                         "seconds": stage_seconds(mine),
                         "seconds_per_image": per_image_seconds(mine)}
    return {"command": f"{command} (python -m selfprompt ablations run, then write)",
            "studies": studies, "seed": every("seed"), "model_hash": every("model_hash"),
            "test_per_fold": every("test_per_fold"), "finetune": every("finetune"),
            "kit_commits_of_folds": every("environment", "kit_commit"),
            "cpus_of_folds": every("environment", "cpu"), "written_by": environment()}


def write(run_root: str | Path, out_dir: str | Path, k: str = "20",
          studies: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Tables (CSV + one Markdown page), figures, every row (gzip) and the folds'
    provenance of the finished studies under ``run_root``; ``studies``: only those (and
    their tables), e.g. :data:`BEYOND`, written apart from the reference's own."""
    import matplotlib.pyplot as plt

    from ..utils.io import atomic_write_text

    run_root, out_dir = Path(run_root), Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    tables = {
        "comparison": comparison_table(run_root, k),
        "baselines": variant_table(run_root, "baselines", ("baselines", "point_box")),
        "finetune": variant_table(run_root, "finetune", ("baselines", "point_box")),
        "strategies": variant_table(run_root, "strategies", ("baselines", "box")),
        "classifiers": variant_table(run_root, "classifiers", versus_preset="corrected"),
        "shots": shots_curve(study_rows(run_root, "shots")),
        "selection": selection_curve(study_rows(run_root, "selection")),
        "auto": auto_table(run_root),
        "auto_oracle": auto_oracle(run_root),
        "auto_choices": auto_choices(run_root),
        "persam": variant_table(run_root, "persam", ("persam", "box")),
        "selection_paired": selection_vs_random(study_rows(run_root, "selection")),
        "auto_paired": paired_table(study_rows(run_root, "auto"), "box"),
        "persam_paired": paired_table(study_rows(run_root, "persam"), "box"),
    }
    if studies is not None:
        unknown = set(studies) - set(STUDIES)
        if unknown:
            raise ValueError(f"unknown studies {sorted(unknown)}; choose from {', '.join(STUDIES)}")
        tables = {n: t for n, t in tables.items()
                  if n.split("_")[0] in studies or (n == "comparison" and "baselines" in studies)}
    titles = {"comparison": f"The paper's comparison (Kvasir-SEG, k = {k}; ours: corrected "
                            "preset)",
              "auto_oracle": "auto against the oracle (the best fixed candidate on the "
                             "test images, which no user could pick) and against the "
                             "backbone's own recipe, per k (gap: auto minus oracle, points)",
              "auto_choices": "What auto chose, fold by fold (inner Dice: the choice's "
                              "cross-validated Dice on the shots)",
              "selection_paired": "Chosen shots against the random draws, paired on the same "
                                  "images, over folds (points of Dice; random: each image's "
                                  "mean over its draws)",
              "auto_paired": "auto and the fixed recipes against the box, paired on the same "
                             "images, over folds",
              "persam_paired": "PerSAM, PerSAM-F and self-prompting against the box, paired on "
                               "the same images, over folds"}
    text = ["# Baselines and ablations\n",
            "Generated by `make ablations` (`python -m selfprompt ablations write`) from the "
            "finished folds under `" + run_root.as_posix() + "`; every row is in "
            "`results.csv.gz`, each fold's settings, timings and machine in `folds.jsonl`. "
            "Dice % is pooled over the test images of every fold; its spread (`dice_sd_units`, "
            "`ours_std`, `sd_folds`, the bars) is the " + SD_UNITS + "; `sd_draws`: the sd of "
            "the draw means (ddof=1). Comparisons (" + PAIRED_MEANING + "). Each table is one "
            "Holm family.\n"]
    for name, rows in tables.items():
        if rows:
            paths[name] = write_csv(out_dir / f"table_{name}.csv", rows, list(rows[0]))
        study = STUDIES.get(name)
        title = study.question if study else titles[name]
        text.append(f"## {name}: {title}\n\n{to_markdown(rows)}")
        family = sum(1 for r in rows if r.get("p") is not None)
        if family:
            text.append(f"Holm's correction over this table's {family} comparisons "
                        "(`p_holm`).\n")
        figure = None
        if name == "shots" and rows:
            figure = shots_figure(rows)
        elif name == "selection" and rows:
            figure = selection_figure(rows)
        elif name in ("strategies", "baselines", "finetune") and rows:
            figure = bars_figure(rows, f"{name} (k = {k})")
        elif name == "classifiers" and rows:
            box = [r for r in rows if r["variant"] == "box"]
            figure = bars_figure(box, "classifiers (box prompt)", label="preset") if box else None
        if figure is not None:
            p = out_dir / "figures" / f"{name}.png"
            figure.savefig(p, dpi=110)
            plt.close(figure)
            paths[f"figure_{name}"] = p
            text.append(f"![{name}](figures/{name}.png)\n")
    rows = [r for s in (studies or STUDIES) for r in study_rows(run_root, s)]
    paths["results"] = write_results_gz(
        sorted(rows, key=lambda r: (r["preset"], k_order(r["k"]), r["seed"], r["draw"],
                                    r["fold"], r["variant"], r["image"])),
        out_dir / "results.csv.gz")
    metas = [{"study": p.relative_to(run_root).parts[0], **json.loads(p.read_text())}
             for p in sorted(run_root.rglob("fold[0-9]*.json"))  # not folds.json
             if studies is None or p.relative_to(run_root).parts[0] in studies]
    paths["folds"] = out_dir / "folds.jsonl"
    atomic_write_text(paths["folds"], "".join(json.dumps(m) + "\n" for m in metas))
    paths["provenance"] = out_dir / "provenance.json"
    beyond = studies is not None and set(studies) <= set(BEYOND)
    command = "make reference-beyond" if beyond else "make reference-ablations"
    atomic_write_text(paths["provenance"], json.dumps(provenance(metas, command), indent=1))
    paths["page"] = out_dir / "ablations.md"
    atomic_write_text(paths["page"], "\n".join(text))
    return paths
