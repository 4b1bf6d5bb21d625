"""SAM's prompt encoder and mask decoder on a cached embedding.

A stock ``SamPredictor`` whose image state (``features``, ``original_size``,
``input_size``) is set from the cache instead of by ``set_image``: everything after
the encoder is SAM's own code, so decoding a cached embedding gives what
``set_image`` + ``predict`` would (a test holds this), without a second encoder pass
(the authors encode every test image twice, D6).
"""
from __future__ import annotations

import numpy as np
import torch
from segment_anything import SamPredictor

from .models.backbone import Backbone
from .utils.device import keep_freed_memory
from .frame import input_size
from .presets import VARIANTS


def _unit(iou) -> float:
    """SAM's predicted IoU as a quality score: its head is a plain MLP, so clipped to [0, 1]."""
    return min(max(float(iou), 0.0), 1.0)


def _asks(p) -> dict[str, tuple]:
    """The paper's prompt variants of one image's :class:`~selfprompt.prompts.Prompts`
    as ``(points, labels, box)``."""
    return {"point": (p.points, p.labels, None), "box": (None, None, p.box),
            "point_box": (p.points, p.labels, p.box)}


class PromptDecoder:
    """Numpy in, numpy out, like ``SamPredictor``; fed with cached embeddings."""

    def __init__(self, backbone: Backbone, batched: bool = True) -> None:
        keep_freed_memory()  # a decoded image's tensors reuse freed memory: no page faults
        self.backbone = backbone
        self.predictor = SamPredictor(backbone.sam)
        self.predictor.transform = backbone.transform  # LiteMedSAM maps prompts its own way
        #: decode an image's prompt variants in one call, the prompt-independent work done
        #: once (:mod:`selfprompt.models.batchdecode`: equal to SAM's calls up to rounding,
        #: and faster on a CPU); False: SAM's own calls, one per prompt, bit for bit
        self.batched = batched
        #: ``(SAM's predicted IoU, mask area)`` of each :meth:`predict` call since the
        #: image was set: what a variant's quality score is read from
        self.scores: list[tuple[float, int]] = []

    def set_embedding(self, features: np.ndarray, original_size: tuple[int, int]) -> None:
        """Use ``features`` ``(256, 64, 64)`` as the embedding of an ``(H, W)`` image."""
        p = self.predictor
        p.reset_image()
        self.scores = []
        # a copy: cached embeddings are read-only memory maps (and may be float16)
        p.features = torch.from_numpy(np.array(features, dtype=np.float32)).to(p.device)[None]
        p.original_size = tuple(int(v) for v in original_size)
        p.input_size = input_size(*p.original_size, self.backbone.img_size)
        p.is_image_set = True

    def predict(self, points: np.ndarray | None = None, labels: np.ndarray | None = None,
                box: np.ndarray | None = None, mask_input: np.ndarray | None = None,
                return_logits: bool = False):
        """Single-mask prediction (``multimask_output=False``) as ``bool (H, W)``.

        With neither points nor a box nor a mask SAM is run unprompted (its 'no prompt'
        baseline). ``mask_input`` is a ``(256, 256)`` logit map over the padded frame
        (``frame.grid_to_lowres``, or an earlier call's logits). ``return_logits``
        also returns SAM's own ``(256, 256)`` low-resolution logits, which iterative
        refinement feeds back as the next ``mask_input``.
        """
        masks, iou, low = self.predictor.predict(
            point_coords=None if points is None else np.asarray(points, dtype=np.float32),
            point_labels=None if labels is None else np.asarray(labels),
            box=None if box is None else np.asarray(box, dtype=np.float32)[None],
            mask_input=None if mask_input is None else np.asarray(mask_input, np.float32)[None],
            multimask_output=False)
        self.scores.append((_unit(iou[0]), int(masks[0].sum())))
        return (masks[0], low[0]) if return_logits else masks[0]

    def variants(self, prompts, variants=VARIANTS, return_scores: bool = False):
        """SAM's mask for each prompt variant; the ``linear`` one is the cleaned coarse mask.

        A variant whose prompt is missing (an empty coarse mask in the ``corrected``
        preset) gives an empty mask rather than an unprompted SAM guess. With
        ``return_scores`` also SAM's predicted IoU of each decoded mask (0 for an empty
        one, None for ``linear``, which SAM does not decode), as a second dict.
        """
        p = prompts
        asks = _asks(p)
        unknown = [v for v in variants if v != "linear" and v not in asks]
        if unknown:
            raise ValueError(f"unknown variant {unknown[0]!r}; choose from {VARIANTS}")
        prompted = [v for v in variants if v in asks and any(a is not None for a in asks[v])]
        iou: dict[str, float] = {}
        if self.batched and prompted:
            from .models.batchdecode import decode_batch

            batch = decode_batch(self.predictor, [asks[v] for v in prompted],
                                 return_iou=return_scores)
            decoded = dict(zip(prompted, batch[0] if return_scores else batch))
            if return_scores:
                iou = {v: _unit(x) for v, x in zip(prompted, batch[-1])}
        else:
            decoded = {}
            for v in prompted:
                decoded[v] = self.predict(*asks[v])
                iou[v] = self.scores[-1][0]
        out: dict[str, np.ndarray] = {}
        for v in variants:
            out[v] = (p.cleaned.astype(bool) if v == "linear" else decoded[v] if v in decoded
                      else np.zeros(self.predictor.original_size, dtype=bool))
        if not return_scores:
            return out
        return out, {v: None if v == "linear" else iou.get(v, 0.0) for v in variants}

    def variants_of(self, prompt_sets, variants=VARIANTS) -> list[dict[str, np.ndarray]]:
        """:meth:`variants` for several prompt sets of the same image (the coarse masks
        of several thresholds, say): batched, every set's prompts go through the decoder
        in one call; else one :meth:`variants` call per set, as SAM's own calls."""
        prompt_sets = list(prompt_sets)
        if not self.batched:
            return [self.variants(p, variants) for p in prompt_sets]
        unknown = [v for v in variants if v != "linear" and v not in _asks(prompt_sets[0])]
        if unknown:
            raise ValueError(f"unknown variant {unknown[0]!r}; choose from {VARIANTS}")
        where, todo = [], []
        for j, p in enumerate(prompt_sets):
            asks = _asks(p)
            for v in variants:
                if v != "linear" and any(a is not None for a in asks[v]):
                    where.append((j, v))
                    todo.append(asks[v])
        decoded = {}
        if todo:
            from .models.batchdecode import decode_batch

            decoded = dict(zip(where, decode_batch(self.predictor, todo)))
        size = self.predictor.original_size
        return [{v: (p.cleaned.astype(bool) if v == "linear" else decoded[j, v]
                     if (j, v) in decoded else np.zeros(size, dtype=bool))
                 for v in variants} for j, p in enumerate(prompt_sets)]
