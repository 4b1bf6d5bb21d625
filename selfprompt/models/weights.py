"""Where each backbone's checkpoint is, how it is fetched, and the checks it passes.

A bad file never reaches ``torch.load``'s unpickling errors: it is checked first
(exists, is a torch zip, has the registered size; its sha256 where asked) and a
published checkpoint of another model is named as such.
"""
from __future__ import annotations

from pathlib import Path

from ..assets import AssetError, CheckpointError, fetch, load_registry, packaged_path
from ..assets.hashing import checkpoint_problem
from ..utils.io import atomic_open
from .registry import build, get_spec, with_weights


def default_checkpoint(model_type: str, checkpoints_dir: Path = Path("checkpoints"),
                       seed: int = 0) -> Path:
    """Where ``make checkpoints`` puts a model type's file (tiny: made on first use; a
    packaged checkpoint: inside its installed package)."""
    spec = get_spec(model_type)
    if spec.weights is None:
        return Path(checkpoints_dir) / f"sam_{model_type}_seed{seed}.pth"
    asset = load_registry()[spec.weights]
    if asset.packaged:  # bundled with its package: nothing to fetch
        if model_type == "medsam_lite":  # its package must import (code and weights)
            from .litemedsam import bundled_checkpoint

            return bundled_checkpoint()
        return packaged_path(asset)
    return Path(checkpoints_dir) / asset.filename


def check_checkpoint(path: Path, model_type: str, full: bool = False) -> None:
    """Check a checkpoint before ``torch.load`` sees it; raise CheckpointError if it is bad.

    Always: exists, is a zip. For a registry file: exact size where known and a zip
    end record (a truncated download has none), and with ``full`` its sha256. A file
    whose name is not in the registry (a custom checkpoint) gets only the first two.
    """
    path = Path(path)
    registry = load_registry()
    checkpoints = with_weights()
    by_file = {a.filename: a for a in registry.values() if a.kind == "checkpoint"}
    asset = by_file.get(path.name)
    fetch_hint = f"`make checkpoints MODEL={model_type}`"
    if not path.is_file():
        wanted = registry[checkpoints[model_type]].filename if model_type in checkpoints else None
        raise CheckpointError(f"checkpoint not found: {path}"
                              + (f" (expected the {model_type} weights {wanted})" if wanted else "")
                              + f". Run {fetch_hint} (or `python -m selfprompt fetch checkpoint "
                              f"--model {model_type}`), or copy the file there.")
    model_of = {name: model for model, name in checkpoints.items()}
    if asset is not None and model_type in checkpoints and checkpoints[model_type] != asset.name:
        raise CheckpointError(f"{path} holds the {model_of.get(asset.name)} weights, but model "
                              f"type {model_type} was asked for: pass the matching model type "
                              f"or the {registry[checkpoints[model_type]].filename} checkpoint.")
    # a file bundled in an installed package (LiteMedSAM) is hashed, never stamped beside
    why = checkpoint_problem(path, asset, full,
                             use_stamp=not (asset is not None and asset.packaged))
    if why is not None:
        what_to_do = f"delete it and run {fetch_hint}" if asset else "check or replace the file"
        raise CheckpointError(f"{path}: {why}, {what_to_do}.")


def fetch_checkpoint(model_type: str, checkpoints_dir: Path = Path("checkpoints"),
                     mirror: str | None = None) -> Path:
    """Fetch (or find) and check the checkpoint of ``model_type``; return its path.

    A packaged checkpoint (``medsam_lite``) is not copied: its installed file is checked
    in full (size, zip, sha256) and its path returned.
    """
    checkpoints = with_weights()
    if model_type not in checkpoints:
        raise AssetError(f"unknown model type {model_type!r}: expected one of "
                         f"{', '.join(checkpoints)}")
    asset = load_registry()[checkpoints[model_type]]
    if asset.packaged:
        path = default_checkpoint(model_type)
        check_checkpoint(path, model_type, full=True)
        return path
    path = fetch(asset, Path(checkpoints_dir), mirror)
    check_checkpoint(path, model_type)
    return path


def make_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """Write the ``tiny`` model's random weights (deterministic in ``seed``) to ``path``."""
    import torch

    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        sam = build("tiny")
    finally:
        torch.random.set_rng_state(gen_state)
    with atomic_open(Path(path), "wb") as f:
        torch.save(sam.state_dict(), f)
    return Path(path)
