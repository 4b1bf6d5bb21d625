"""SAM backbones: build one by model type, load its checkpoint safely, know its identity.

``BACKBONES`` maps a model type to the encoder's hyper-parameters, in the manner of
``segment_anything.sam_model_registry``. Besides SAM's ``vit_b`` (the paper's),
``vit_l`` and ``vit_h`` there is ``tiny``: the same architecture with a very small
encoder and random weights from a seed, so that tests, CI and workshops run the whole
pipeline without a download. Its masks mean nothing, and it says so.

Loading never lets a bad file reach ``torch.load``'s unpickling errors: the
checkpoint is checked first (exists, is a torch zip, has the registered size), and a
state dict of the wrong model type is reported as such.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from segment_anything.build_sam import _build_sam
from segment_anything.modeling import Sam

from .device import pick_device

log = logging.getLogger(__name__)

#: model type -> (encoder_embed_dim, encoder_depth, encoder_num_heads, global_attn_indexes)
BACKBONES: dict[str, tuple[int, int, int, list[int]]] = {
    "vit_b": (768, 12, 12, [2, 5, 8, 11]),
    "vit_l": (1024, 24, 16, [5, 11, 17, 23]),
    "vit_h": (1280, 32, 16, [7, 15, 23, 31]),
    "tiny": (32, 1, 1, [0]),
}
OPTIONAL_BACKBONES = {"vit_t": "mobilesam-mirror (module mobile_sam)"}
#: encoder width -> model type, to name the type a wrong checkpoint actually holds
_TYPE_BY_WIDTH = {dims[0]: name for name, dims in BACKBONES.items()}
TINY_WARNING = ("backbone 'tiny' has RANDOM weights: its embeddings and masks mean nothing. "
                "It exists to run the pipeline without downloads (tests, CI, workshops). "
                "Use vit_b (`make checkpoints`) for real results.")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


@dataclass
class Backbone:
    """A loaded SAM with what identifies it: the embedding cache is keyed on ``model_hash``."""

    sam: Sam
    model_type: str
    checkpoint: Path
    model_hash: str
    device: torch.device


def default_checkpoint(model_type: str, checkpoints_dir: Path = Path("checkpoints"),
                       seed: int = 0) -> Path:
    """Where ``make checkpoints`` puts a model type's file (tiny: made on first use)."""
    if model_type == "tiny":
        return Path(checkpoints_dir) / f"sam_tiny_seed{seed}.pth"
    from .download import CHECKPOINTS, load_registry

    if model_type not in CHECKPOINTS:
        raise CheckpointError(f"unknown model type {model_type!r}; known: "
                              f"{', '.join(list(BACKBONES) + list(OPTIONAL_BACKBONES))}")
    return Path(checkpoints_dir) / load_registry()[CHECKPOINTS[model_type]].filename


def build(model_type: str) -> Sam:
    """The architecture of ``model_type`` with untrained weights, on the CPU, in eval mode."""
    if model_type == "vit_t":
        try:
            with warnings.catch_warnings():  # timm: "Overwriting tiny_vit_* in registry"
                warnings.simplefilter("ignore", UserWarning)
                from mobile_sam import sam_model_registry as mobile_registry
        except ImportError as err:
            raise CheckpointError("backbone 'vit_t' (MobileSAM) needs the optional package "
                                  "mobilesam-mirror: `pip install mobilesam-mirror timm` "
                                  "(or `make install-extras`)") from err
        return mobile_registry["vit_t"]().eval()
    if model_type not in BACKBONES:
        raise CheckpointError(f"unknown model type {model_type!r}; known: "
                              f"{', '.join(list(BACKBONES) + list(OPTIONAL_BACKBONES))}")
    dim, depth, heads, global_attn = BACKBONES[model_type]
    return _build_sam(dim, depth, heads, global_attn, checkpoint=None).eval()


def make_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """Write the ``tiny`` model's random weights (deterministic in ``seed``) to ``path``."""
    from .io import atomic_open

    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        sam = build("tiny")
    finally:
        torch.random.set_rng_state(gen_state)
    with atomic_open(Path(path), "wb") as f:
        torch.save(sam.state_dict(), f)
    return Path(path)


def _load_state_dict(path: Path, model_type: str) -> dict:
    from .download import check_checkpoint

    if model_type != "tiny":
        check_checkpoint(path, model_type)  # size and zip magic before unpickling
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
        return _TYPE_BY_WIDTH.get(int(pos.shape[-1]), f"a ViT of width {int(pos.shape[-1])}")
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
    from .download import file_sha256

    path = Path(checkpoint) if checkpoint else default_checkpoint(model_type, checkpoints_dir, seed)
    if model_type == "tiny":
        warnings.warn(TINY_WARNING, stacklevel=2)
        log.warning(TINY_WARNING)
        if not path.exists():  # deterministic in seed: as good as fetching it
            make_tiny_checkpoint(path, seed)
    sam = build(model_type)
    state = _load_state_dict(path, model_type)
    try:
        sam.load_state_dict(state)
    except RuntimeError as err:
        held = _held_type(state)
        raise CheckpointError(
            f"{path}: this checkpoint holds {held}, but model type {model_type!r} was asked "
            f"for. Pass --backbone {held.split()[0]} or the {model_type} checkpoint "
            f"(`make checkpoints MODEL={model_type}`).") from err
    dev = pick_device(device if device is None else str(device))
    return Backbone(sam.to(dev).eval(), model_type, path, file_sha256(path), dev)
