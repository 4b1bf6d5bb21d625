"""selfprompt: self-prompting SAM for few-shot medical image segmentation.

Wu, Zhang, Elbatel, "Self-Prompting Large Vision Models for Few-Shot Medical Image
Segmentation", MICCAI DART 2023. SAM stays frozen; a linear classifier on its
embedding makes a coarse mask, from which a point and a box prompt SAM itself.

The method is the top of the package, in the order it runs:

- ``embeddings``: every image through SAM's encoder once, cached on disk;
- ``frame``: where each 64 x 64 embedding cell lies on the image (the padded frame);
- ``classifier``: the linear pixel classifier fitted on the k shots' cells;
- ``prompts``: the point and the box taken from the classifier's coarse mask;
- ``decode``: SAM's prompt encoder and mask decoder on a cached embedding;
- ``pipeline``: one image through all of it; ``metrics``: Dice and IoU;
- ``presets``: the authors' computation (``paper``) and the corrected one;
- ``strategies``: other prompts and the baselines, as extra variants;
- ``shots``: which k images to label, chosen from the embeddings alone;
- ``api``: ``SelfPrompt``, the method on one's own images (fit, predict, save).

Around it, in subpackages: ``methods`` (every method the kit compares as one
estimator: the paper's, ``auto``, the fine-tuned decoder, PerSAM; their registry),
``models`` (the backbone registry, encoders, weights),
``datasets`` (reading, layouts, the public sets), ``assets`` (checked downloads),
``evaluation`` (the k-shot protocol, ablations, reports, the committed reference),
``own`` (one's own images: which to label, masks for the rest), ``teaching``
(notebook helpers, explorer, exercises, classroom check, book, bundle) and ``utils``.
``python -m selfprompt`` is the command line for all of it.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .utils.lazy import lazy_exports

# The method's steps by name (``import selfprompt as sp``), imported on first use so
# that ``import selfprompt`` and the command line's --help do not pay for torch.
_EXPORTS = {
    # a backbone and a data set
    "BACKBONES": "models.registry", "Backbone": "models.backbone",
    "load_backbone": "models.backbone", "CheckpointError": "assets.registry",
    "AssetError": "assets.registry", "Dataset": "datasets.reader",
    "DatasetError": "datasets.layouts", "open_dataset": "datasets.reader",
    "validate": "datasets.reader", "make_synthetic": "datasets.synthetic",
    # the method
    "embed_dataset": "embeddings", "cache_folder": "utils.paths",
    "LinearPixelClassifier": "classifier", "fit_classifier": "pipeline",
    "coarse_mask": "pipeline", "make_prompts": "prompts", "PromptDecoder": "decode",
    "segment": "pipeline", "dice": "metrics", "iou": "metrics",
    "PRESETS": "presets", "Preset": "presets", "get_preset": "presets",
    # the protocol
    "Experiment": "evaluation.protocol", "make_folds": "evaluation.protocol",
    "draw_shots": "evaluation.protocol",
    # beyond the paper: which images to label, and a recipe chosen on them
    "select_shots": "shots", "SHOT_STRATEGIES": "shots", "choose_recipe": "methods.recipe",
    # one's own images: fit on the labelled ones, predict the rest; every method compared
    "SelfPrompt": "api", "Prediction": "methods.base", "METHODS": "methods.registry",
    "make_method": "methods.registry",
}
__all__ = sorted(_EXPORTS) + ["print_config", "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


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
