"""The results the README and docs/reference.md state, declared once and computed from the
committed rows, so that no number on those pages is typed by hand.

A :class:`Claim` names a backbone, a committed study folder (its ``results.csv.gz``) and
one or two arms (:class:`Arm`: preset, k, variant, shots, draws). With two arms it is a
paired comparison, A - B (:func:`~.stats.paired_difference`, unit = (seed, fold, draw)),
adjusted by Holm over its *family* (the claims of one table of one docs section); with one
it is a quoted mean (Dice pooled over the counted images, ± the sd of the unit means,
ddof=1). :func:`render` gives a claim's Markdown fragment; a claim whose rows are not
committed (a study not yet run or regenerated) renders as "not computed", never an error.

The pages carry generated blocks between ``<!-- claims:NAME -->`` and ``<!-- /claims -->``
(:data:`BLOCKS`); ``python -m selfprompt reference claims`` rewrites them from the rows and
``--check`` names a block that no longer matches (``make claims``).
"""
from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .results import SHOTS_COLUMN, read_results_gz
from .stats import ALPHA, holm, mean_sd_units, paired_difference, unit_of, verdict

#: the committed references, relative to the repository root
REFERENCE = Path("reports/reference/kvasir")
#: the pages that carry generated blocks, relative to the repository root
PAGES = ("README.md", "docs/reference.md")
#: how each study folder is regenerated (``{b}``: the backbone)
COMMANDS = {"": "make reference REF_MODEL={b}",
            "ablations": "make reference-ablations REF_MODEL={b}",
            "beyond": "make reference-beyond REF_MODEL={b}"}
BACKBONE_NAMES = {"vit_t": "MobileSAM", "medsam_lite": "LiteMedSAM"}
VARIANT_NAMES = {
    "linear": "coarse mask", "point": "point", "box": "box", "point_box": "point + box",
    "box_cc": "one box per component", "box_neg": "box + 1 positive, 2 negative points",
    "peaks3_box": "three points + box", "points_cc": "one point per component",
    "mask": "classifier logits as mask prompt", "box_mask": "box + classifier logits",
    "box_refine": "box, SAM logits fed back 3 rounds", "ft_box": "fine-tuned decoder, box",
    "ft_point_box": "fine-tuned decoder, point + box", "ft_no_prompt":
    "fine-tuned decoder, no prompt", "no_prompt": "no prompt", "gt_point": "true point",
    "gt_box": "true box", "gt_point_box": "true point + box", "auto": "`auto`",
    "persam": "PerSAM", "persam_f": "PerSAM-F", "persam_aligned": "PerSAM, aligned",
    "persam_f_aligned": "PerSAM-F, aligned", "persam_noguide": "PerSAM, no guidance"}
MARKER = re.compile(r"(<!-- claims:([\w.-]+) -->\n)(.*?)(<!-- /claims -->)", re.DOTALL)
NOT_COMPUTED = "not computed"


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: the rows of one (preset, k, variant, shots) cell.
    ``draws``: the draws of the shots kept (None: every draw; a chosen set has one)."""
    variant: str
    k: str = "20"
    preset: str = "corrected"
    shots: str = "random"
    draws: tuple[int, ...] | None = (0,)

    def name(self, parts: tuple[str, ...] = ("variant",)) -> str:
        words = []
        for part in parts:
            if part == "variant":
                words.append(VARIANT_NAMES.get(self.variant, f"`{self.variant}`"))
            elif part == "k":
                words.append(f"k = {self.k}")
            elif part == "preset":
                words.append(_preset_name(self.preset))
            elif part == "shots":
                words.append(f"{self.shots} shots")
        return ", ".join(words)


def _preset_name(preset: str) -> str:
    base, _, change = preset.partition("+")
    return change.replace("=", " ") if change else f"`{base}`"


@dataclass(frozen=True)
class Claim:
    """A quoted number: A - B over units (``b`` given) or A's mean (``b`` None)."""
    id: str
    backbone: str
    study: str
    a: Arm
    b: Arm | None = None
    family: str = ""
    label: str = ""

    @property
    def path(self) -> Path:
        return REFERENCE / self.backbone / self.study / "results.csv.gz"

    @property
    def command(self) -> str:
        return COMMANDS.get(self.study, "").format(b=self.backbone)

    def title(self) -> str:
        """Its row label: the backbone, what the arms share, then A vs B."""
        if self.label:
            return self.label
        if self.b is None:
            return f"{BACKBONE_NAMES.get(self.backbone, self.backbone)}, " + self.a.name(
                ("preset", "k", "variant"))
        fields = ("preset", "k", "shots", "variant")
        differ = tuple(f for f in fields if getattr(self.a, f) != getattr(self.b, f))
        shared = tuple(f for f in fields if f not in differ
                       and not (f == "shots" and self.a.shots == "random"))
        head = ", ".join([BACKBONE_NAMES.get(self.backbone, self.backbone)]
                         + ([self.a.name(shared)] if shared else []))
        return f"{head}: {self.a.name(differ)} vs {self.b.name(differ)}"


@dataclass
class Outcome:
    """What a claim computes to: ``missing`` says why not, else the comparison (diff,
    ci, p, p_holm, verdict) or the mean (mean, sd, counted/total)."""
    claim: Claim
    missing: str = ""
    units: int = 0
    images: int = 0
    total: int = 0
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    p_holm: float | None = None
    family_size: int = 0
    verdict: str = ""
    mean: float | None = None
    sd: float | None = None


def _none(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x


class Ledger:
    """Claims computed from the committed rows under ``root`` (each file read once)."""

    def __init__(self, root: str | Path = ".", claims: dict[str, Claim] | None = None):
        self.root = Path(root)
        self.claims = CLAIMS if claims is None else claims
        self._rows: dict[Path, dict | None] = {}
        self._outcomes: dict[str, Outcome] = {}

    def _cells(self, path: Path) -> dict | None:
        if path not in self._rows:
            full = self.root / path
            cells: dict | None = None
            if full.is_file():
                cells = defaultdict(dict)
                for r in read_results_gz(full):
                    key = (r["preset"], r["k"], r["variant"], r.get(SHOTS_COLUMN) or "random")
                    # one image once per unit: several studies of a folder share a cell
                    # (the box at k = 20 of the baselines, strategies and shots draw 0);
                    # their rows agree (to 2e-5 Dice in the committed folders)
                    cells[key].setdefault((*unit_of(r), r["image"]), r)
            self._rows[path] = cells
        return self._rows[path]

    def rows(self, claim: Claim, arm: Arm) -> list[dict] | None:
        """The arm's rows, or None where the study folder has none."""
        cells = self._cells(claim.path)
        if cells is None:
            return None
        got = cells.get((arm.preset, arm.k, arm.variant, arm.shots), {})
        return [r for (_, _, draw, _), r in got.items()
                if arm.draws is None or draw in arm.draws]

    def _compute(self, claim: Claim) -> Outcome:
        out = Outcome(claim)
        arms = [claim.a] + ([claim.b] if claim.b else [])
        for arm in arms:
            rows = self.rows(claim, arm)
            if rows is None:
                out.missing = f"no {claim.path}"
                return out
            if not rows:
                out.missing = f"no rows for {arm.name(('preset', 'k', 'shots', 'variant'))} " \
                              f"in {claim.path}"
                return out
        a_rows = self.rows(claim, claim.a)
        if claim.b is None:
            m = mean_sd_units(a_rows)
            out.mean, out.sd = m["dice"], m["dice_sd_units"]
            out.units, out.images = m["units"], m["images"]
            out.total = len(a_rows)
            return out
        d = paired_difference(a_rows, self.rows(claim, claim.b))
        if not d.units:
            out.missing = "no image scored in both arms"
            return out
        out.units, out.images, out.diff = d.units, d.images, d.diff
        out.ci_low, out.ci_high, out.p = _none(d.ci_low), _none(d.ci_high), _none(d.p)
        return out

    def outcome(self, claim_id: str) -> Outcome:
        """The claim's outcome, Holm-adjusted over its family (the claims computed)."""
        if claim_id not in self._outcomes:
            claim = self.claims[claim_id]
            family = [c for c in self.claims.values()
                      if c.b is not None and claim.b is not None and c.family == claim.family] \
                or [claim]
            found = [self._compute(c) for c in family]
            adjusted = holm([o.p for o in found]) if claim.b is not None else [None] * len(found)
            size = sum(o.p is not None for o in found)
            for o, q in zip(found, adjusted):
                o.p_holm, o.family_size = q, size
                if o.claim.b is not None and not o.missing:
                    o.verdict = verdict(o.ci_low, o.ci_high, q)
                self._outcomes[o.claim.id] = o
        return self._outcomes[claim_id]

    def render(self, claim_id: str) -> str:
        return fragment(self.outcome(claim_id))


def _num(x: float, digits: int = 1, sign: bool = False) -> str:
    text = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return text.replace("-", "−")


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fragment(o: Outcome) -> str:
    """The claim as a sentence fragment: "+8.2 points (95 % CI 5.1 to 11.3, 5 units,
    200 images, Holm p = 0.012 over 12): ahead" (over: the comparisons of its family), or
    the mean with what its ± is."""
    c = o.claim
    if o.missing:
        return f"{NOT_COMPUTED} ({o.missing}; `{c.command}`)"
    if c.b is None:
        sd = "" if o.sd is None else f" ± {_num(o.sd)}"
        return (f"{_num(o.mean)} % Dice{sd} (± : sd of the {o.units} unit means, ddof=1; "
                f"{o.images}/{o.total} images counted)")
    if o.ci_low is None:
        return (f"{_num(o.diff, sign=True)} points ({o.units} units, {o.images} images: "
                f"no interval): {o.verdict}")
    return (f"{_num(o.diff, sign=True)} points (95 % CI {_num(o.ci_low)} to "
            f"{_num(o.ci_high)}, {o.units} units, {o.images} images, Holm p "
            f"{'' if o.p_holm < 0.001 else '= '}{_p(o.p_holm)} over {o.family_size}): "
            f"{o.verdict}")


def render(claim: Claim | str, root: str | Path = ".") -> str:
    """One claim's Markdown fragment, computed from the committed rows under ``root``."""
    if isinstance(claim, Claim):
        ledger = Ledger(root, {**CLAIMS, claim.id: claim})
        return ledger.render(claim.id)
    return Ledger(root).render(claim)


# ------------------------------------------------------------------ blocks
@dataclass(frozen=True)
class Comparisons:
    """A table of comparisons, one row per claim, and a line saying how to read it."""
    name: str
    claims: tuple[str, ...]

    def render(self, ledger: Ledger) -> str:
        lines = ["| comparison (A vs B) | A − B, points | 95 % CI | units (images) | "
                 "Holm p | verdict |", "|---|---|---|---|---|---|"]
        families: dict[str, int] = {}
        for cid in self.claims:
            o = ledger.outcome(cid)
            families[o.claim.family] = o.family_size
            if o.missing:
                lines.append(f"| {o.claim.title()} | {NOT_COMPUTED} | | | | "
                             f"`{o.claim.command}` |")
                continue
            ci = "–" if o.ci_low is None else f"{_num(o.ci_low)} to {_num(o.ci_high)}"
            lines.append(f"| {o.claim.title()} | {_num(o.diff, sign=True)} | {ci} | "
                         f"{o.units} ({o.images}) | {_p(o.p_holm)} | {o.verdict} |")
        fam = "; ".join(f"`{f}`: {n}" for f, n in families.items())
        lines.append("")
        lines.append(f"*A − B: the mean over units of each unit's mean paired Dice "
                     f"difference (points); unit: one fold of one fold seed and draw of the "
                     f"shots; 95 % t interval over units; Holm over the comparisons of the "
                     f"family ({fam}); ahead/behind only where the interval excludes 0 and "
                     f"Holm p < {ALPHA}, else no difference shown.*")
        return "\n".join(lines)

    def claim_ids(self) -> tuple[str, ...]:
        return self.claims


@dataclass(frozen=True)
class Means:
    """A table of quoted means: ``rows`` of cells, each a claim id (its mean ± sd),
    ``"n:"`` + a claim id (its images counted), or fixed text (``"="`` + text)."""
    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    show_units: bool = False

    def render(self, ledger: Ledger) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        units: set[int] = set()
        for row in self.rows:
            cells = []
            for cell in row:
                if cell.startswith("="):
                    cells.append(cell[1:])
                    continue
                o = ledger.outcome(cell.removeprefix("n:"))
                if o.missing:
                    cells.append(NOT_COMPUTED)
                elif cell.startswith("n:"):
                    cells.append(f"{o.images}/{o.total}")
                else:
                    units.add(o.units)
                    sd = "" if o.sd is None else f" ± {_num(o.sd)}"
                    units_text = f" ({o.units})" if self.show_units else ""
                    cells.append(f"{_num(o.mean)}{sd}{units_text}")
            lines.append("| " + " | ".join(cells) + " |")
        n = "/".join(str(u) for u in sorted(units)) or "no"
        lines.append("")
        lines.append(f"*Dice %: mean over the counted test images ± the sd of the {n} unit "
                     f"means (unit: one fold of one fold seed and draw of the shots; "
                     f"ddof=1)" + ("; in brackets, the units" if self.show_units else "")
                     + ".*")
        return "\n".join(lines)

    def claim_ids(self) -> tuple[str, ...]:
        return tuple(c.removeprefix("n:") for row in self.rows for c in row
                     if not c.startswith("="))


@dataclass(frozen=True)
class Cost:
    """What regenerating committed study folders costs, from their ``provenance.json``
    (the folds' own clocks)."""
    name: str
    folders: tuple[tuple[str, str], ...]

    def render(self, ledger: Ledger) -> str:
        parts = []
        for backbone, study in self.folders:
            path = ledger.root / REFERENCE / backbone / study / "provenance.json"
            who = f"{BACKBONE_NAMES.get(backbone, backbone)} `{study}/`"
            if not path.is_file():
                parts.append(f"{who}: {NOT_COMPUTED}")
                continue
            studies = json.loads(path.read_text()).get("studies", {})
            each = [f"{name} {_minutes(sum(s.get('seconds', {}).values()))}"
                    for name, s in studies.items()]
            total = sum(sum(s.get("seconds", {}).values()) for s in studies.values())
            parts.append(f"{who} {_minutes(total)} ({', '.join(each)})")
        return ("*CPU time to regenerate, by the folds' own clocks (`provenance.json`): "
                + "; ".join(parts) + ".*")

    def claim_ids(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class CommittedTable:
    """Columns of a table the study's writer committed (``file``, under each backbone's
    folder), quoted as they stand: the tables are the rows' summaries (a test recomputes
    them), so quoting them keeps the page to the rows."""
    name: str
    file: str
    backbones: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    note: str

    def render(self, ledger: Ledger) -> str:
        lines = ["| backbone | " + " | ".join(h for _, h in self.columns) + " |",
                 "|" + "---|" * (len(self.columns) + 1)]
        for backbone in self.backbones:
            name = BACKBONE_NAMES.get(backbone, backbone)
            path = ledger.root / REFERENCE / backbone / self.file
            if not path.is_file():
                lines.append(f"| {name} | {NOT_COMPUTED} |" + " |" * (len(self.columns) - 1))
                continue
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    lines.append(f"| {name} | " + " | ".join(
                        row.get(c, "") for c, _ in self.columns) + " |")
        return "\n".join(lines + ["", f"*{self.note}*"])

    def claim_ids(self) -> tuple[str, ...]:
        return ()


def _minutes(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


# ------------------------------------------------------------------ the declared claims
def _cmp(cid, backbone, study, a, b, family, label="") -> Claim:
    return Claim(cid, backbone, study, a, b, family, label)


def _declare() -> tuple[dict[str, Claim], dict[str, object]]:
    claims: list[Claim] = []
    blocks: list[object] = []
    backbones = ("vit_t", "medsam_lite")

    # the reference sweeps: means per (preset, k, variant), one fold seed, 5 units
    for b in backbones:
        for preset in ("paper", "corrected"):
            for k in ("10", "20", "40", "all"):
                for v in ("linear", "point", "box", "point_box"):
                    claims.append(Claim(f"ref-{b}-{preset}-k{k}-{v}", b, "",
                                        Arm(v, k, preset)))
        variants = ("linear", "point", "box", "point_box")
        rows = tuple((f"={p}", f"={k}", *(f"ref-{b}-{p}-k{k}-{v}" for v in variants),
                      f"n:ref-{b}-{p}-k{k}-point_box")
                     for p in ("paper", "corrected") for k in ("10", "20", "40", "all"))
        header = ("preset", "k", "linear", "point", "box", "point + box", "images counted")
        blocks.append(Means(f"reference-{b}", header, rows))
    paper_isic = {"linear": "(62.69)", "point": "(61.23)", "box": "(47.99)",
                  "point_box": "62.78"}
    blocks.append(Means(
        "readme-k20", ("k = 20", "paper, SAM ViT-B", "MobileSAM, `paper`",
                       "MobileSAM, `corrected`", "LiteMedSAM, `paper`",
                       "LiteMedSAM, `corrected`"),
        tuple((f"={VARIANT_NAMES[v]}", f"={paper_isic[v]}",
               *(f"ref-{b}-{p}-k20-{v}" for b in backbones for p in ("paper", "corrected")))
              for v in ("linear", "point", "box", "point_box"))
        + (("=images counted", "=", *(f"n:ref-{b}-{p}-k20-point_box"
                                      for b in backbones for p in ("paper", "corrected"))),)))

    # what the sweeps show: one family, the README's and docs/reference.md's table
    sweep = [
        ("vit_t", Arm("point_box", "20", "paper"), Arm("linear", "20", "paper")),
        ("vit_t", Arm("point_box", "20", "paper"), Arm("box", "20", "paper")),
        ("vit_t", Arm("linear", "20", "corrected"), Arm("linear", "20", "paper")),
        ("vit_t", Arm("point_box", "20", "corrected"), Arm("linear", "20", "corrected")),
        ("vit_t", Arm("point_box", "20", "corrected"), Arm("point_box", "20", "paper")),
        ("medsam_lite", Arm("point_box", "20"), Arm("box", "20")),
        ("medsam_lite", Arm("linear", "20"), Arm("box", "20")),
        ("medsam_lite", Arm("linear", "20", "corrected"), Arm("linear", "20", "paper")),
        ("medsam_lite", Arm("box", "20", "corrected"), Arm("box", "20", "paper")),
        ("vit_t", Arm("point_box", "all"), Arm("point_box", "10")),
        ("vit_t", Arm("linear", "all"), Arm("linear", "10")),
        ("medsam_lite", Arm("box", "all"), Arm("box", "10")),
        ("medsam_lite", Arm("linear", "all"), Arm("linear", "10")),
    ]
    ids = []
    for i, (b, a, c) in enumerate(sweep):
        ids.append(f"sweep-{i + 1:02d}")
        claims.append(_cmp(ids[-1], b, "", a, c, "sweep"))
    blocks.append(Comparisons("sweep", tuple(ids)))

    # the ablations: one fold seed, 5 units (the shots: 3 draws, 15)
    ab_means = [("self-prompt, point + box (the paper's method)", "point_box", "62.78"),
                ("self-prompt, box", "box", ""), ("the coarse mask alone", "linear", ""),
                ("self-prompt, one box per connected component", "box_cc", ""),
                ("decoder fine-tuned on the k shots, self-prompted box", "ft_box", "55.01"),
                ("decoder fine-tuned, self-prompted point + box", "ft_point_box", ""),
                ("SAM without a prompt", "no_prompt", "52.66"),
                ("SAM, one point from the true mask", "gt_point", ""),
                ("SAM, point + box from the true mask (upper bound)", "gt_point_box",
                 "86.86"),
                ("SAM, box from the true mask", "gt_box", "")]
    for b in backbones:
        for _, v, _ in ab_means:
            claims.append(Claim(f"abl-{b}-{v}", b, "ablations", Arm(v)))
    blocks.append(Means("ablations-methods",
                        ("method", "MobileSAM", "LiteMedSAM", "paper (SAM ViT-B)"),
                        tuple((f"={label}", *(f"abl-{b}-{v}" for b in backbones),
                               f"={paper}") for label, v, paper in ab_means)))
    prompts = {"medsam_lite": ("box", ("gt_box", "linear", "box_cc", "point_box", "box_neg",
                                       "peaks3_box", "mask", "box_mask", "box_refine",
                                       "ft_box")),
               "vit_t": ("point_box", ("gt_point_box", "linear", "box", "box_cc", "box_neg",
                                       "peaks3_box", "points_cc", "mask", "box_mask",
                                       "box_refine", "ft_box", "ft_point_box"))}
    for b, (ref, variants) in prompts.items():
        ids = []
        for v in variants:
            ids.append(f"abl-{b}-{v}-vs-{ref}")
            claims.append(_cmp(ids[-1], b, "ablations", Arm(v), Arm(ref), f"ablations-{b}"))
        ids.append(f"abl-{b}-gt_point_box-vs-gt_box")
        claims.append(_cmp(ids[-1], b, "ablations", Arm("gt_point_box"), Arm("gt_box"),
                           f"ablations-{b}"))
        blocks.append(Comparisons(f"ablations-{b}", tuple(ids)))
    ids = []
    for preset in ("logreg_scaled", "mlp", "knn", "logreg_balanced"):
        for v in ("linear", "box"):
            ids.append(f"abl-classifier-{preset}-{v}")
            claims.append(_cmp(ids[-1], "medsam_lite", "ablations",
                               Arm(v, preset=f"corrected+classifier={preset}"),
                               Arm(v), "ablations-classifiers"))
    for t in ("0.3", "0.7"):
        for v in ("linear", "box"):
            ids.append(f"abl-threshold-{t}-{v}")
            claims.append(_cmp(ids[-1], "medsam_lite", "ablations",
                               Arm(v, preset=f"corrected+threshold={t}"), Arm(v),
                               "ablations-classifiers"))
    blocks.append(Comparisons("ablations-classifiers", tuple(ids)))
    for k in ("1", "2", "5", "10", "20", "40", "all"):
        for v in ("box", "linear"):
            claims.append(Claim(f"abl-shots-k{k}-{v}", "medsam_lite", "ablations",
                                Arm(v, k, draws=None)))
    blocks.append(Means("ablations-shots", ("k", "box", "coarse mask"),
                        tuple((f"={k}", f"abl-shots-k{k}-box", f"abl-shots-k{k}-linear")
                              for k in ("1", "2", "5", "10", "20", "40", "all")),
                        show_units=True))
    blocks.append(Cost("ablations-cost", tuple((b, "ablations") for b in
                                               ("medsam_lite", "vit_t"))))
    blocks.append(Cost("beyond-cost", tuple((b, "beyond") for b in ("medsam_lite", "vit_t"))))

    # beyond the paper (regenerated: every fold seed of the committed rows counts)
    ids = []
    for b in ("medsam_lite", "vit_t"):
        for k in ("1", "2", "5", "10", "20"):
            for shots in ("medoids", "kcenter"):
                for v in ("box", "linear"):
                    ids.append(f"sel-{b}-k{k}-{shots}-{v}")
                    claims.append(_cmp(ids[-1], b, "beyond", Arm(v, k, shots=shots),
                                       Arm(v, k, draws=None), "beyond-selection"))
    blocks.append(Comparisons("beyond-selection", tuple(ids)))
    ids = []
    # auto against the prompt its backbone was trained with and against the fixed recipe
    # the ablations found best on LiteMedSAM (its gap to the oracle: table_auto_oracle)
    # MobileSAM's auto study ran at k = 1, 5 and 20 only (its cost: docs/reference.md)
    for b, own, ks in (("medsam_lite", "box", ("1", "2", "5", "10", "20")),
                       ("vit_t", "point_box", ("1", "5", "20"))):
        for k in ks:
            for a, c in (("auto", own), ("auto", "box_cc")):
                ids.append(f"auto-{b}-k{k}-{a}-vs-{c}")
                claims.append(_cmp(ids[-1], b, "beyond", Arm(a, k), Arm(c, k), "beyond-auto"))
    blocks.append(Comparisons("beyond-auto", tuple(ids)))
    blocks.append(CommittedTable(
        "beyond-auto-oracle", "beyond/table_auto_oracle.csv", ("medsam_lite", "vit_t"),
        (("k", "k"), ("auto", "auto"), ("own", "trained prompt"), ("own_dice", "its Dice"),
         ("oracle", "oracle"), ("oracle_dice", "its Dice"), ("gap", "auto − oracle")),
        "Dice % pooled over the test images of every unit; trained prompt: the prompt the "
        "backbone was trained with, at 0.5; oracle: the best of the 36 fixed candidates on "
        "these test images, a bound no user could pick, so auto − oracle is at most 0 and "
        "carries no test (`beyond/table_auto_oracle.csv`)."))
    ids = []
    for b in ("medsam_lite",):       # PerSAM-F trains per image: one backbone's worth
        for k in ("1", "20"):
            for v in ("persam", "persam_f", "persam_aligned", "persam_noguide"):
                ids.append(f"persam-{b}-k{k}-{v}")
                claims.append(_cmp(ids[-1], b, "beyond", Arm(v, k), Arm("box", k),
                                   "beyond-persam"))
    blocks.append(Comparisons("beyond-persam", tuple(ids)))

    blocks.append(Comparisons("readme-findings", tuple(f"sweep-{i:02d}"
                                                       for i in (1, 4, 6, 7))))
    by_id = {c.id: c for c in claims}
    assert len(by_id) == len(claims), "two claims share an id"
    return by_id, {blk.name: blk for blk in blocks}


CLAIMS, BLOCKS = _declare()


# ------------------------------------------------------------------ pages
def rewrite(text: str, ledger: Ledger, page: str = "") -> str:
    """``text`` with every generated block recomputed."""
    def one(m: re.Match) -> str:
        name = m.group(2)
        if name not in BLOCKS:
            raise ValueError(f"{page or 'page'}: unknown claims block '{name}' "
                             f"(selfprompt.evaluation.claims.BLOCKS)")
        return f"{m.group(1)}{BLOCKS[name].render(ledger)}\n{m.group(4)}"
    return MARKER.sub(one, text)


def blocks_of(text: str) -> list[tuple[str, str]]:
    """(block name, its current content), in page order."""
    return [(m.group(2), m.group(3)) for m in MARKER.finditer(text)]


def stale(root: str | Path = ".", pages: tuple[str, ...] = PAGES) -> list[str]:
    """One line per generated block whose text differs from what the rows give."""
    ledger = Ledger(root)
    out = []
    for page in pages:
        text = (Path(root) / page).read_text()
        fresh = blocks_of(rewrite(text, ledger, page))
        for (name, content), (_, new) in zip(blocks_of(text), fresh):
            if new != content:
                out.append(f"{page}: block '{name}' is stale: run python -m selfprompt "
                           f"reference claims (make claims)")
    return out


def write(root: str | Path = ".", pages: tuple[str, ...] = PAGES) -> list[str]:
    """Rewrite the pages' blocks in place; the pages that changed."""
    ledger = Ledger(root)
    changed = []
    for page in pages:
        path = Path(root) / page
        text = path.read_text()
        new = rewrite(text, ledger, page)
        if new != text:
            path.write_text(new)
            changed.append(page)
    return changed


__all__ = ["Arm", "Claim", "Ledger", "Outcome", "Comparisons", "Means", "Cost", "CLAIMS",
           "BLOCKS", "CommittedTable", "render", "fragment", "rewrite", "stale", "write"]
