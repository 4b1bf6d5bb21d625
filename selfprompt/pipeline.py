"""One image through the method: classifier -> coarse mask -> prompts -> SAM's masks.

These functions are the method itself; the protocol, the notebooks and the explorer
all call them, so what a student sees step by step is what ``make reproduce`` runs.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from .classifier import LinearPixelClassifier, make_classifier
from .decode import PromptDecoder
from .embeddings import to_float32
from .frame import (GRID, IMG_SIZE, content_fraction, grid_to_image, labels_aligned,
                    labels_stretched)
from .metrics import dice, iou
from .presets import VARIANTS, Preset
from .prompts import Prompts, make_prompts


def training_labels(mask: np.ndarray, preset: Preset,
                    img_size: int = IMG_SIZE) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels ``(n,)`` of one training image's cells, and which cells they belong to.

    ``stretched`` labels pair every cell with the squeezed mask (the authors', D4):
    all 4096 cells, ``keep`` is None. ``aligned`` labels pair each cell with the mask
    under it in the encoder's padded frame (side ``img_size``: ``Backbone.img_size``)
    and leave out cells that are mostly padding.
    """
    if preset.labels == "stretched":
        return labels_stretched(mask).ravel(), None
    labels, valid = labels_aligned(mask, img_size)
    keep = valid.ravel()
    return labels.ravel()[keep], keep


#: Largest training matrix (float32 samples x 256) fitted in memory, in bytes. Up to
#: it the classifier is scikit-learn's own ``fit`` on one matrix, exactly the authors'
#: call; above it (k = all on Kvasir-SEG: 800 x 4096 x 256 x 4 B = 3.1 GiB) the same
#: model is fitted by :meth:`LinearPixelClassifier.fit_stream`, one image at a time,
#: so that memory does not grow with the data set. ``SELFPROMPT_FIT_IN_MEMORY_GIB``
#: overrides it (a bit-exact replay of the authors' k = all fit needs ~3.5 GiB).
IN_MEMORY_LIMIT = 1 << 30


def fit_memory_limit() -> int:
    """:data:`IN_MEMORY_LIMIT`, or ``$SELFPROMPT_FIT_IN_MEMORY_GIB`` GiB when set."""
    value = os.environ.get("SELFPROMPT_FIT_IN_MEMORY_GIB")
    if not value:
        return IN_MEMORY_LIMIT
    try:
        return int(float(value) * (1 << 30))
    except ValueError:
        raise ValueError(f"SELFPROMPT_FIT_IN_MEMORY_GIB must be a number of GiB, "
                         f"not {value!r}") from None


class TrainingCells:
    """The k shots' training samples, one image's cells at a time.

    ``cells[j]`` is shot ``j``'s block ``(float32 (256, 4096), uint8 labels, keep)``
    (``keep``: which cells are samples, None for all), read from ``embeddings[j]`` when
    asked for (a memory map from the cache: nothing is kept). Labels are made once
    (64 x 64 per image: small).
    """

    def __init__(self, embeddings, masks, preset: Preset, img_size: int = IMG_SIZE) -> None:
        self.embeddings = embeddings
        self.labels = [training_labels(m, preset, img_size) for m in masks]
        if len(self.labels) != len(embeddings):
            raise ValueError(f"{len(embeddings)} embeddings but {len(self.labels)} masks")
        self.n = sum(len(y) for y, _ in self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        features = to_float32(self.embeddings[j])
        y, keep = self.labels[j]
        return features.reshape(features.shape[0], -1), y, keep

    def classes(self) -> np.ndarray:
        return np.unique(np.concatenate([y for y, _ in self.labels]))

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """All samples as one ``(n, 256)`` float32 matrix, filled block by block (never
        a second copy), and their labels: what scikit-learn's ``fit`` takes."""
        X, y, at = None, np.empty(self.n, dtype=np.uint8), 0
        for j in range(len(self)):
            F, yj, keep = self[j]
            if X is None:
                X = np.empty((self.n, F.shape[0]), dtype=np.float32)
            X[at:at + len(yj)] = F.T if keep is None else F.T[keep]
            y[at:at + len(yj)] = yj
            at += len(yj)
        return X, y


def fit_classifier(embeddings, masks, preset: Preset, in_memory_limit: int | None = None,
                   img_size: int = IMG_SIZE) -> LinearPixelClassifier:
    """Fit on the k shots, cells concatenated in the order given (the paper's order).

    ``embeddings`` is a sequence read lazily, one item at a time (``DatasetEmbeddings.take``
    or a list of arrays); ``masks`` any iterable of the same length. Up to
    ``in_memory_limit`` bytes of samples (default :func:`fit_memory_limit`) the fit is
    scikit-learn's on one matrix; above it, streamed from the cache (same model, memory
    independent of k; ``clf.fit_route_`` says which). ``img_size`` is the encoder's
    frame (``Backbone.img_size``), which the ``aligned`` labels depend on.
    """
    cells = TrainingCells(embeddings, masks, preset, img_size)
    if len(cells.classes()) < 2:
        raise ValueError("the k training masks hold only one class: draw other shots or a "
                         "larger k (a linear classifier needs lesion and background cells)")
    limit = fit_memory_limit() if in_memory_limit is None else in_memory_limit
    clf = make_classifier(preset.classifier, preset.threshold, solver=preset.solver)
    if cells.n * 256 * 4 <= limit:
        return clf.fit(*cells.matrix())
    if preset.classifier != "logreg":
        raise ValueError(f"classifier {preset.classifier!r} is fitted in memory only: "
                         f"{cells.n} cells exceed the {limit / 2**30:.1f} GiB limit "
                         "(SELFPROMPT_FIT_IN_MEMORY_GIB raises it)")
    return clf.fit_stream(cells)


def coarse_mask(clf: LinearPixelClassifier, features: np.ndarray, size: tuple[int, int],
                preset: Preset, img_size: int = IMG_SIZE) -> np.ndarray:
    """The classifier's mask at the image's resolution, ``uint8 (H, W)`` in {0, 1}."""
    grid = clf.predict_map(features)
    return grid_to_image(grid, size[0], size[1], aligned=preset.labels == "aligned",
                         img_size=img_size)


def probability_map(clf: LinearPixelClassifier, features: np.ndarray, size: tuple[int, int],
                    preset: Preset, img_size: int = IMG_SIZE) -> np.ndarray:
    """Lesion probability at the image's resolution (smoothly upsampled), for display."""
    grid = clf.probability_map(features).astype(np.float32)
    return grid_to_image(grid, size[0], size[1], aligned=preset.labels == "aligned",
                         smooth=True, img_size=img_size)


def widening_draws(clf: LinearPixelClassifier, features: np.ndarray, size: tuple[int, int],
                   preset: Preset, img_size: int = IMG_SIZE) -> int:
    """How many numbers one image's box widening takes from the random stream: read from
    the coarse mask alone, so the ``paper`` preset's shared stream can be advanced past
    earlier images without decoding them with SAM."""
    coarse = coarse_mask(clf, features, size, preset, img_size)
    return make_prompts(coarse, preset, np.random.RandomState(0)).draws


def classifier_confidence(clf: LinearPixelClassifier, features: np.ndarray,
                          size: tuple[int, int], preset: Preset,
                          img_size: int = IMG_SIZE) -> float:
    """The quality score of the classifier's own mask (``linear``): its mean confidence
    ``max(p, 1 - p)`` over the cells that describe the image (with ``aligned`` labels
    the cells at least half image content; with ``stretched`` ones every cell), in
    [0.5, 1]: near 1 where every cell is clearly lesion or clearly not."""
    p = clf.probability_map(features).astype(np.float64)
    confidence = np.maximum(p, 1 - p)
    if preset.labels == "aligned":
        confidence = confidence[content_fraction(size[0], size[1], img_size) >= 0.5]
    return float(confidence.mean()) if confidence.size else 0.0


@dataclass
class Segmentation:
    """Everything computed for one test image, kept for display and for the table."""

    coarse: np.ndarray
    prompts: Prompts
    masks: dict[str, np.ndarray]
    #: seconds this image took: ``self_prompt`` (the coarse mask, its prompts and the
    #: paper's variants, decoded in one call), then each other variant's own
    seconds: dict[str, float] = field(default_factory=dict)
    #: each variant's quality score in [0, 1] (higher: more trustworthy): SAM's predicted
    #: IoU of the mask it returned (0 for an empty mask nothing decoded; one box per
    #: lesion: the area-weighted mean, :func:`~selfprompt.strategies.quality`), and for
    #: ``linear`` the classifier's mean confidence (:func:`classifier_confidence`)
    quality: dict[str, float] = field(default_factory=dict)

    def scores(self, truth: np.ndarray) -> dict[str, tuple[float, float]]:
        return {v: (dice(m, truth), iou(m, truth)) for v, m in self.masks.items()}


def segment(clf: LinearPixelClassifier, decoder: PromptDecoder, features: np.ndarray,
            size: tuple[int, int], preset: Preset, rng, variants=VARIANTS,
            seed: tuple[int, ...] = (0,)) -> Segmentation:
    """Self-prompt SAM on one image from its cached embedding (the decoder's backbone
    sets the frame).

    ``variants`` may name the paper's four (:data:`~selfprompt.presets.VARIANTS`) and
    the prompt strategies of :data:`~selfprompt.strategies.STRATEGIES` that read the
    coarse mask; those draw from generators seeded by ``seed`` (the protocol passes
    ``(seed, fold, image)``). The methods fitted on the shots besides the classifier
    (the fine-tuned decoder, PerSAM) and the bounds from the true mask are
    :class:`selfprompt.methods.Variants`'s.
    """
    from .strategies import NEEDS_LOGITS, NEEDS_PERSAM, NEEDS_TRUTH, Inputs, run_strategies

    assert features.shape[-1] == GRID
    elsewhere = [v for v in variants if v in NEEDS_TRUTH or v in NEEDS_PERSAM
                 or v.startswith("ft_")]
    if elsewhere:
        raise ValueError(f"variants {elsewhere} need the true mask or a method fitted on "
                         "the shots: segment them with selfprompt.methods.Variants")
    start = time.perf_counter()
    img_size = decoder.backbone.img_size
    coarse = coarse_mask(clf, features, size, preset, img_size)
    prompts = make_prompts(coarse, preset, rng)
    decoder.set_embedding(features, size)
    masks, quality = decoder.variants(prompts, [v for v in variants if v in VARIANTS],
                                      return_scores=True)
    seconds = {"self_prompt": time.perf_counter() - start}
    if "linear" in quality:
        quality["linear"] = classifier_confidence(clf, features, size, preset, img_size)
    others = [v for v in variants if v not in VARIANTS]
    if others:
        logits = clf.logit_map(features) if set(others) & set(NEEDS_LOGITS) else None
        inputs = Inputs(prompts, preset, logits, None, tuple(seed), img_size)
        masks.update(run_strategies(others, decoder, inputs, None, seconds, quality))
    return Segmentation(coarse, prompts, {v: masks[v] for v in variants}, seconds,
                        {v: quality[v] for v in variants})
