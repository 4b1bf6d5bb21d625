"""A loaded backbone: SAM (or a SAM-family model) with what identifies it.

Which backbones exist, and how each is built, is :data:`~selfprompt.models.registry.BACKBONES`;
where their weights are and how they are checked, :mod:`selfprompt.models.weights`.
Loading reports a state dict of the wrong model type as such, not as a wall of
missing keys.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from segment_anything.modeling import Sam

from ..assets import CheckpointError, file_sha256, load_registry
from ..utils.device import pick_device
from .registry import BACKBONES, TINY_WARNING, build, get_spec, with_weights
from .weights import check_checkpoint, default_checkpoint, make_tiny_checkpoint

log = logging.getLogger(__name__)


@dataclass
class Backbone:
    """A loaded SAM with what identifies it: the embedding cache is keyed on ``model_hash``."""

    sam: Sam
    model_type: str
    checkpoint: Path
    model_hash: str
    device: torch.device

    @property
    def img_size(self) -> int:
        """Side of the encoder's padded input square: 1024 for SAM, 256 for LiteMedSAM."""
        return int(self.sam.image_encoder.img_size)

    @property
    def transform(self):
        """How images are resized and prompts mapped into the encoder's frame."""
        return resize_transform(self.model_type, self.img_size)


def resize_transform(model_type: str, img_size: int):
    """SAM's ``ResizeLongestSide``, or LiteMedSAM's variant of it (OpenCV area resize,
    prompts mapped as its reference inference maps them)."""
    if model_type == "medsam_lite":
        from .litemedsam import LiteResize

        return LiteResize(img_size)
    from segment_anything.utils.transforms import ResizeLongestSide

    return ResizeLongestSide(img_size)


def _load_state_dict(path: Path, model_type: str) -> dict:
    if model_type != "tiny":
        # size and zip magic before unpickling; the bundled LiteMedSAM file is small
        # (39 MB) and never downloaded, so its full sha256 is checked every time
        check_checkpoint(path, model_type, full=get_spec(model_type).bundled)
    elif not path.exists():
        raise CheckpointError(f"{path}: tiny checkpoint missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged archive
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({err.__class__.__name__}: "
                              f"{str(err).splitlines()[0][:200]}). Delete it and fetch it again "
                              f"with `make checkpoints MODEL={model_type}`.") from err
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a SAM state dict")
    return state


def _held_type(state: dict) -> str:
    pos = state.get("image_encoder.pos_embed")
    if pos is not None:
        width = int(pos.shape[-1])
        by_width = {spec.width: name for name, spec in BACKBONES.items() if spec.width}
        return by_width.get(width, f"a ViT of width {width}")
    if any(k.startswith("image_encoder.layers.") for k in state):
        return "vit_t (MobileSAM)"
    return "not a SAM model"


def load_backbone(model_type: str = "vit_b", checkpoint: str | Path | None = None,
                  device: str | torch.device | None = None,
                  checkpoints_dir: Path = Path("checkpoints"), seed: int = 0) -> Backbone:
    """Build ``model_type``, load ``checkpoint`` into it and move it to ``device``.

    ``checkpoint=None`` takes the file ``make checkpoints`` writes. For ``tiny`` a
    missing file is generated from ``seed`` (then loaded like any other checkpoint).
    A checkpoint of another model type is reported as such, not as a wall of missing keys.
    """
    path = Path(checkpoint) if checkpoint else default_checkpoint(model_type, checkpoints_dir, seed)
    spec = get_spec(model_type)
    if model_type == "tiny":
        warnings.warn(TINY_WARNING, stacklevel=2)
        log.warning(TINY_WARNING)
        if not path.exists():  # deterministic in seed: as good as fetching it
            make_tiny_checkpoint(path, seed)
    sam = build(model_type)
    state = _load_state_dict(path, model_type)
    # never stamp a file inside an installed package: hash it (the bundled file is small)
    model_hash = file_sha256(path, use_stamp=not spec.bundled)
    _check_known_hash(path, model_type, model_hash)
    try:
        sam.load_state_dict(state)
    except RuntimeError as err:
        held = _held_type(state)
        raise CheckpointError(
            f"{path}: this checkpoint holds {held}, but model type {model_type!r} was asked "
            f"for. Pass --backbone {held.split()[0]} or the {model_type} checkpoint "
            f"(`make checkpoints MODEL={model_type}`).") from err
    dev = pick_device(device if device is None else str(device))
    return Backbone(sam.to(dev).eval(), model_type, path, model_hash, dev)


def _check_known_hash(path: Path, model_type: str, model_hash: str) -> None:
    """A published checkpoint of another model type is named as such.

    MobileSAM and LiteMedSAM share TinyViT's parameter names and shapes, so one loads
    into the other without a single missing key: only the file's hash tells them apart.
    """
    registry = load_registry()
    for model, name in with_weights().items():
        asset = registry[name]
        if asset.sha256 == model_hash and model != model_type:
            raise CheckpointError(f"{path} is the published {model} checkpoint "
                                  f"({asset.filename}), but model type {model_type!r} was "
                                  f"asked for: pass --backbone {model}.")
