"""selfprompt: self-prompting SAM for few-shot medical image segmentation.

Wu, Zhang, Elbatel, "Self-Prompting Large Vision Models for Few-Shot Medical Image
Segmentation", MICCAI DART 2023. SAM stays frozen; a linear classifier on its
embedding makes a coarse mask, from which a point and a box prompt SAM itself.

Modules, in pipeline order: ``datasets`` (pairs, validation; ``layouts`` declares where
images and masks are, ``catalog`` knows the public sets) -> ``backbone`` (SAM,
checkpoints) -> ``encoder`` + ``embeddings`` (batched encoding, cache) ->
``frame`` (padded-frame geometry) -> ``classifier`` -> ``prompts`` -> ``decode`` ->
``metrics``; ``pipeline`` chains them for one image, ``protocol`` runs k-shot folds,
``results`` tabulates, ``download`` fetches assets, ``cli`` is ``python -m selfprompt``.
Beyond the paper's method: ``strategies`` (other prompts, and the no-prompt and
ground-truth baselines, as variants), ``finetune`` (the mask decoder trained on the k
shots), ``ablations`` (studies over them on the protocol's folds, ``make ablations``).
For teaching: ``classroom`` checks a machine before class, ``bundle`` writes and installs
the offline classroom bundle (``make bundle``, ``make install-offline``).
"""
from __future__ import annotations

__version__ = "0.1.0"

# Public names, imported on first use so that `import selfprompt` (and the command
# line's --help) does not pay for torch until something needs it.
_EXPORTS = {
    "BACKBONES": "backbone", "Backbone": "backbone", "CheckpointError": "backbone",
    "load_backbone": "backbone", "LinearPixelClassifier": "classifier",
    "Dataset": "datasets", "DatasetError": "datasets", "open_dataset": "datasets",
    "validate": "datasets", "dice": "metrics", "iou": "metrics", "PRESETS": "presets",
    "Preset": "presets", "get_preset": "presets",
}
__all__ = sorted(_EXPORTS) + ["print_config", "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def print_config(backbone=None) -> None:
    """Versions, device and (when given) the backbone's checkpoint hash: what a result
    depends on, printed at the top of every notebook."""
    import platform

    import cv2
    import numpy as np
    import segment_anything  # noqa: F401
    import sklearn
    import torch

    from .utils.device import pick_device

    print(f"selfprompt {__version__} | python {platform.python_version()} | "
          f"torch {torch.__version__} | numpy {np.__version__} | "
          f"scikit-learn {sklearn.__version__} | opencv {cv2.__version__}")
    print(f"device: {pick_device()} | torch threads: {torch.get_num_threads()}")
    if backbone is not None:
        print(f"backbone: {backbone.model_type} | checkpoint: {backbone.checkpoint.name} | "
              f"sha256: {backbone.model_hash[:16]}...")
