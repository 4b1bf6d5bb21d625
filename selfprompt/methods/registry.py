"""One registry: a method's name -> its estimator class, as segment-anything's
``sam_model_registry`` maps a name to a builder."""
from __future__ import annotations

from .auto import Auto
from .base import Method
from .finetune import FineTuned
from .persam import PERSAM_VARIANTS
from .self_prompt import SelfPrompting

#: every method the kit compares, by the name ``make_method`` takes
METHODS: dict[str, type[Method]] = {
    "self_prompt": SelfPrompting,
    "auto": Auto,
    "finetuned": FineTuned,
    # PerSAM in the authors' form (persam, persam_f), the kit's aligned form and the
    # ablation without guidance: each under the variant name results tables carry
    **PERSAM_VARIANTS,
}


def make_method(name: str, **params) -> Method:
    """A fresh, unfitted estimator: ``make_method("self_prompt", prompt="box")``."""
    try:
        cls = METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None
    return cls(**params)
