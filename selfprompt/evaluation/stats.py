"""Statistics a reviewer accepts: paired differences over independent units, Holm's
correction, and a verdict that follows the numbers.

Why units, not images: the images of one fold share its k shots (and its draw of them),
so their Dice values rise and fall together; treating 200 test images as 200
independent observations makes any small difference look certain. The independent unit
here is one fold of one cross-validation seed and one draw of the shots,
``(seed, fold, draw)`` (:func:`unit_of`). Every spread and test below is over units:

- :func:`paired_difference`: arm A against arm B on the same images. Within each unit
  the images scored (``counted``) in both arms are paired; the unit's difference is the
  mean over them of ``A - B``; the mean, sd (ddof=1), 95 % t interval and two-sided
  paired t-test are over those unit differences.
- :func:`holm`: Holm's step-down adjustment of a family of p-values (one table).
- :func:`verdict`: "ahead" / "behind" only where the 95 % interval excludes 0 and the
  Holm-adjusted p is below 0.05; otherwise "no difference shown".
- :func:`mean_sd_units`: a mean ± with its meaning: the sd of the unit means (ddof=1).

Dice (and every difference) is in points (Dice x 100), rounded only by the caller.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .results import PROTOCOL_SEED
#: the verdict's level (two-sided, after Holm) and its interval's coverage
ALPHA = 0.05
#: what a ± over units means, for column headers and page text
SD_UNITS = ("sd of the unit means (unit: one fold of one cross-validation seed and "
            "draw of the shots; ddof=1)")
#: what the paired columns mean, for page text
PAIRED_MEANING = (
    "diff: mean over units (one fold of one seed and draw) of the unit's mean paired "
    "Dice difference over the images scored in both arms, in points; ci_low/ci_high: its "
    "95 % t interval; p: two-sided paired t-test over units; p_holm: Holm-adjusted over "
    "the comparisons of the table (the family); verdict: ahead/behind only where the "
    "interval excludes 0 and p_holm < 0.05")
VERDICTS = ("ahead", "behind", "no difference shown")


def fold_seed(row: dict) -> int:
    """The cross-validation seed a row's folds were drawn with (the protocol's when the
    row has none)."""
    seed = row.get("seed")
    return PROTOCOL_SEED if seed is None or seed == "" else int(seed)


def unit_of(row: dict) -> tuple[int, int, int]:
    """The independent unit of a row: (fold seed, fold, draw)."""
    return fold_seed(row), int(row["fold"]), int(row.get("draw") or 0)


@dataclass(frozen=True)
class PairedDifference:
    """A - B over units, in points. ``sd``, the interval and ``p`` are NaN with fewer
    than two units (or no spread between them)."""
    units: int
    diff: float
    sd: float
    ci_low: float
    ci_high: float
    p: float
    images: int
    #: whether the unit is (seed, fold) with a many-draw arm averaged over its draws
    draws_averaged: bool = False

    def row(self, digits: int = 2) -> dict:
        """The fields as a table row, numbers rounded, NaN as None."""
        out = {}
        for k, v in asdict(self).items():
            if isinstance(v, float):
                v = None if math.isnan(v) else round(v, digits if k != "p" else 6)
            out[k] = v
        return out


def _per_unit(rows: Iterable[dict], metric: str) -> dict[tuple, dict[int, dict[str, float]]]:
    """(seed, fold) -> draw -> image -> metric, counted rows only."""
    out: dict[tuple, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        if r["counted"]:
            seed, fold, draw = unit_of(r)
            out[(seed, fold)][draw][r["image"]] = float(r[metric])
    return out


def _draw_mean(by_draw: dict[int, dict[str, float]]) -> dict[str, float]:
    values: dict[str, list[float]] = defaultdict(list)
    for images in by_draw.values():
        for image, v in images.items():
            values[image].append(v)
    return {image: float(np.mean(v)) for image, v in values.items()}


def paired_difference(a_rows: Iterable[dict], b_rows: Iterable[dict],
                      metric: str = "dice") -> PairedDifference:
    """Arm A (``a_rows``) against arm B (``b_rows``), paired image by image within units.

    The caller selects each arm's rows (one variant, preset, k and shot strategy each).
    The unit is (seed, fold, draw), draws paired by number. Where one arm has a single
    draw of a (seed, fold) and the other several (chosen shots: one set, against random
    shots: several draws), the unit is (seed, fold) and each arm's per-image value is first
    averaged over its draws, so the random arm enters as its expected Dice on that image
    and the unit count stays the number of folds, not folds x draws. An image missing
    (or not counted) in either arm is left out of the pairing.
    """
    a, b = _per_unit(a_rows, metric), _per_unit(b_rows, metric)
    common = sorted(set(a) & set(b))
    averaged = any(sorted((len(a[u]), len(b[u])))[0] == 1 < max(len(a[u]), len(b[u]))
                   for u in common)
    diffs, images = [], 0
    for u in common:
        if not averaged:
            pairs = [(a[u][d], b[u][d]) for d in sorted(a[u]) if d in b[u]]
        else:
            pairs = [(_draw_mean(a[u]), _draw_mean(b[u]))]
        for one, two in pairs:
            shared = [i for i in one if i in two]
            if shared:
                diffs.append(100 * float(np.mean([one[i] - two[i] for i in shared])))
                images += len(shared)
    return _summary(np.array(diffs), images, averaged)


def _summary(diffs: np.ndarray, images: int, averaged: bool) -> PairedDifference:
    from scipy import stats

    n = len(diffs)
    nan = float("nan")
    if n == 0:
        return PairedDifference(0, nan, nan, nan, nan, nan, 0, averaged)
    mean = float(diffs.mean())
    sd = float(diffs.std(ddof=1)) if n > 1 else nan
    if n < 2 or sd == 0:
        return PairedDifference(n, mean, sd, nan, nan, nan, images, averaged)
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * sd / math.sqrt(n)
    # the paired t-test is the one-sample test of the unit differences against 0
    p = float(stats.ttest_1samp(diffs, 0.0).pvalue)
    return PairedDifference(n, mean, sd, mean - half, mean + half, p, images, averaged)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the given order: the i-th smallest of m
    is multiplied by (m - i + 1), made monotone (never below a smaller p's adjusted
    value) and capped at 1. Missing p-values (None, NaN) stay missing and are not
    counted in m."""
    known = [(p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    m = len(known)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(known)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def verdict(ci_low: float | None, ci_high: float | None, p_holm: float | None,
            alpha: float = ALPHA) -> str:
    """"ahead" where the 95 % interval lies above 0 and the Holm-adjusted p is below
    ``alpha``, "behind" where it lies below 0 likewise, else "no difference shown"."""
    if ci_low is None or ci_high is None or p_holm is None or p_holm != p_holm \
            or not p_holm < alpha:
        return VERDICTS[2]
    if ci_low > 0:
        return VERDICTS[0]
    if ci_high < 0:
        return VERDICTS[1]
    return VERDICTS[2]


def with_holm(rows: list[dict], digits: int = 6) -> list[dict]:
    """Rows holding ``p``, ``ci_low`` and ``ci_high`` (one family, e.g. one table) with
    ``p_holm`` and ``verdict`` filled in."""
    adjusted = holm([r.get("p") for r in rows])
    for r, q in zip(rows, adjusted):
        r["p_holm"] = None if q is None else round(q, digits)
        r["verdict"] = verdict(r.get("ci_low"), r.get("ci_high"), q)
    return rows


def sd_units(values: Sequence[float]) -> float | None:
    """The sample sd (ddof=1) of unit means; None with fewer than two."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def mean_sd_units(rows: Iterable[dict], metric: str = "dice") -> dict:
    """A mean ± with its meaning: ``dice`` pooled over the counted images (points),
    ``dice_sd_units`` the sd of the unit means, (seed, fold, draw), ddof=1 (None with
    one unit), ``units`` and ``images``; other metrics are named after themselves."""
    by_unit: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        if r["counted"]:
            by_unit[unit_of(r)].append(100 * float(r[metric]))
    every = [v for values in by_unit.values() for v in values]
    sd = sd_units([float(np.mean(v)) for v in by_unit.values()])
    return {metric: float(np.mean(every)) if every else None, f"{metric}_sd_units": sd,
            "units": len(by_unit), "images": len(every)}
