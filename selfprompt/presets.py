"""The two ways of computing: as the authors' code did (``paper``) and fixed (``corrected``).

Every difference between them is a named field, so a results table can say exactly
what was computed, and a notebook can show the effect of each defect on its own.
The authors' defects (docs/method.md): D2 empty predictions dropped from means; D4 labels stretched
instead of aligned with the embedding grid; D5 point taken before clean-up; D7 the
fallback box for an empty mask has x and y swapped. D3 (unseeded NumPy, unsorted
files) is fixed in both: ``paper`` replays the authors' draws, but seeded. ``corrected``
also fits its classifier to the optimum (``solver="newton"``), where the authors' L-BFGS
stops at a tolerance whose last iterate depends on the CPU's rounding: ``paper`` keeps
their solver, so its per-image rows vary from machine to machine and ``corrected``'s do not.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

#: What is scored per image: the classifier's own (cleaned) mask, and SAM prompted
#: with the point, the box, or both (the paper's method).
VARIANTS = ("linear", "point", "box", "point_box")


@dataclass(frozen=True)
class Preset:
    name: str
    #: "stretched" (D4: whole mask squeezed to 64 x 64) or "aligned" (SAM's padded frame)
    labels: str
    #: where the point comes from: "raw" coarse mask (D5) or the "cleaned" one
    point_source: str
    #: cleaned mask empty: "swapped" full-image box [0, 0, H, W] (D7) or "none" (no prompt)
    empty_box: str
    #: leave images with an empty cleaned mask out of every mean (D2)
    drop_empty: bool
    #: NumPy draws for box widening: "sequential" (one legacy stream per k, in fold and
    #: image order, as the authors') or "per_image" (seeded by fold and image: order-free)
    rng: str
    #: grey level above which a mask pixel is lesion
    mask_threshold: int = 128
    erode_iterations: int = 3
    dilate_iterations: int = 5
    kernel_size: int = 5
    max_widen: int = 20
    n_points: int = 1
    threshold: float = 0.5
    #: the pixel classifier (``classifier.CLASSIFIERS``): the paper's logistic regression,
    #: or one of the ablations' alternatives
    classifier: str = "logreg"
    #: how the logistic regression is fitted (``classifier.SOLVERS``): "lbfgs" as the authors
    #: did (stops short of the optimum where the CPU's rounding decides), or "newton", run
    #: to the optimum (the same coefficients on any machine)
    solver: str = "lbfgs"

    def with_(self, **changes) -> "Preset":
        """A variant of this preset (the explorer's sliders make these)."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        """The fields, as stored in each fold's JSON (its identity). The fields of
        ``_LATER_FIELDS`` appear only when they differ from their default, so a fold
        stored without them still counts as finished."""
        d = asdict(self)
        for name, default in _LATER_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d


_LATER_FIELDS = {"classifier": "logreg", "solver": "lbfgs"}


PRESETS: dict[str, Preset] = {
    "paper": Preset("paper", labels="stretched", point_source="raw", empty_box="swapped",
                    drop_empty=True, rng="sequential"),
    "corrected": Preset("corrected", labels="aligned", point_source="cleaned", empty_box="none",
                        drop_empty=False, rng="per_image", mask_threshold=127,
                        solver="newton"),
}


def get_preset(name: str | Preset) -> Preset:
    """A preset by name. ``base+field=value+...`` changes fields of a named preset
    (``corrected+classifier=knn``, ``paper+threshold=0.3``): the ablations' presets, and
    the name they carry in tables and folder names."""
    if isinstance(name, Preset):
        return name
    base, *changes = str(name).split("+")
    try:
        preset = PRESETS[base]
    except KeyError:
        raise ValueError(f"unknown preset {base!r}; choose from {', '.join(PRESETS)}") from None
    if not changes:
        return preset
    types = {f.name: f.type for f in fields(Preset) if f.name != "name"}
    values = {}
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep or key not in types:
            raise ValueError(f"{name!r}: {change!r} is not field=value with a field of "
                             f"Preset ({', '.join(types)})")
        kind = {"int": int, "float": float, "bool": _bool}.get(types[key], str)
        try:
            values[key] = kind(value)
        except ValueError:
            raise ValueError(f"{name!r}: {key} takes a {types[key]}, not {value!r}") from None
    return preset.with_(name=str(name), **values)


def _bool(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError(value)
    return value.lower() == "true"
