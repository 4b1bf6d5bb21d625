"""PerSAM and PerSAM-F: a training-free peer of self-prompting, on cached embeddings.

Zhang et al., *Personalize Segment Anything Model with One Shot* (ICLR 2024; code:
github.com/ZrrSkywalker/Personalize-SAM) also segment from a few labelled images
without training SAM, but with no classifier: the shot's mask picks out a **target
feature** (the mean embedding of its cells), and a test image is segmented from how
much each of its cells resembles it. :class:`PerSAM` and :class:`PerSAMF` are the
models on embeddings; :class:`PerSAMMethod` and :class:`PerSAMFMethod` the estimators the
protocol fits on :class:`~selfprompt.methods.Shots`; the decoder's guided forward is
:mod:`selfprompt.models.guided`.

1. **location prior**: the cosine similarity between the target feature and every
   cell, brought to the image; its maximum is a positive point, its minimum a
   negative one.
2. **target-guided attention**: the similarity map, standardised and squashed by a
   sigmoid, biases the attention of SAM's prompt tokens to the image (in the decoder's
   two-way blocks: the attention weights plus the bias, normalised again by softmax).
3. **target-semantic prompting**: the (unnormalised) target feature is added to the
   prompt tokens before each block and before the final attention.
4. **cascaded post-refinement**: a second decoding with the first one's logits as
   SAM's mask prompt (three masks, the best by SAM's IoU score), a third with that
   mask's box as well.

Steps 2-3 change SAM's decoder. Here they are :func:`guided_decode`, the kit's own
forward over the stock modules of whichever backbone is loaded (SAM, MobileSAM,
LiteMedSAM): without a bias and a target it is SAM's ``MaskDecoder`` (a test holds
the logits equal), so segment_anything is not forked.

**PerSAM-F** (:class:`PerSAMF`) adds two learnable numbers: the weights of SAM's three
multimask outputs (the first is one minus the others), trained on the shots with a
Dice + focal loss from the positive point of each shot's own location prior; at test
time the weighted mask starts the same refinement (box and logits, twice). As in the
authors' ``persam_f.py`` its target feature is the mean of the mean and the maximum
of the shot's cell features, and it uses neither the attention bias nor the target
tokens, nor a negative point.

**k shots** (the paper uses one): each shot gives its own target feature (the mean of
its masked cells' features, ``shot_targets_``); the model's target is their mean,
each shot counting once whatever the size of its lesion, so one large polyp does
not outweigh many small ones; for k = 1 it is exactly PerSAM's. The normalised mean
(``target_``) gives the location prior; the unnormalised one (``target_embedding_``)
the semantic tokens, as in the authors' code.

**Which form is the default.** ``PerSAM()`` and ``PerSAMF()`` (variants ``persam`` and
``persam_f``) are the authors' form: their labelling of a shot's cells
(``cells="authors"``) and, for PerSAM, their stretched attention bias
(``bias_frame="stretched"``). The kit's aligned form is a named option beside it:

- ``cells="authors"`` (:func:`cells_authors`): the authors hand the shot's mask to SAM's
  predictor as if it were an image (0 or 255): resized to the encoder's long side
  (bilinear), normalised as SAM normalises the red channel, zero-padded, then brought
  to 64 x 64 by a bilinear resize that does not smooth (it samples the 2 x 2 pixels at
  each cell's centre), and every cell above zero is the lesion's. In effect a cell is
  the lesion's when its *centre* is: a boundary cell mostly background counts when the
  lesion covers its centre, a thin lesion between centres marks no cell, and cells
  lie in the padded frame, under the features they describe.
  ``cells="aligned"`` (:func:`~selfprompt.frame.labels_aligned`, the kit's labels of
  the ``corrected`` preset): a cell is the lesion's when at least half of its image
  content is. Under either rule a shot that marks no cell falls back to every cell it
  touches (the authors' code would take the mean of no feature: NaN).
- ``bias_frame="stretched"``: the attention bias is the image-sized similarity map
  resized to 64 x 64, as the authors' code does; on a non-square image that stretches it
  over the padding, away from the cells it describes (the same kind of misalignment as
  the self-prompting authors' D4). ``bias_frame="aligned"`` puts it on the padded
  frame's grid, under the cells it describes.

Variants (:data:`PERSAM_VARIANTS`, names in results tables and
:data:`~selfprompt.methods.METHODS`): ``persam`` and ``persam_f``, the authors' form;
``persam_aligned`` (``cells`` and ``bias_frame`` aligned) and ``persam_f_aligned``
(``cells`` aligned; PerSAM-F has no bias), the kit's form; ``persam_noguide``, the
authors' form with ``guidance=False``: the two location-prior points and the cascaded
post-refinement with neither target-guided attention nor target-semantic prompting.
That is the authors' split: the positive-negative location prior prompts SAM, and
their two techniques on top of it are the guidance (target-guided attention and
target-semantic prompting: in their code the two extra arguments of the first decoding
only); ``persam_noguide`` drops both and keeps everything else.

Where the kit still differs from the authors' code, and why:

- k shots (above): each shot's target feature counts once; for k = 1 it is theirs.
- the location prior is brought from the grid to the padded frame in one bilinear step
  (:func:`~selfprompt.frame.grid_to_image`); the authors go through SAM's 256 x 256
  low-resolution frame first. With a 256 frame (LiteMedSAM) that is the same resize; with
  1024 the two differ only in how the kinks between cells are smoothed.
- PerSAM-F's loss is computed on SAM's low-resolution logits (the unpadded part of
  the 256 x 256 frame) against the true mask resized there, not at full image
  resolution: the same weighted sum (it is linear, and so is the upsampling), at a
  memory that grows with k as ``k x 3 x 256 x 256``, not with the images' size.
- an empty mask before a refinement step ends the cascade with an empty mask (the
  authors' code fails on an empty box).
"""
from __future__ import annotations

import time

import cv2
import numpy as np
import torch

from ..embeddings import to_float32
from ..frame import GRID, IMG_SIZE, LOWRES, _to_frame, grid_to_image, input_size, labels_aligned
from ..models.guided import decode
from ..prompts import bounding_box
from .base import Method, Prediction, Shots

BIAS_FRAMES = ("stretched", "aligned")
#: how a shot's mask marks its cells: the authors' (centre) rule, or the kit's aligned labels
CELL_RULES = ("authors", "aligned")
#: SAM's pixel mean of the red channel: the authors' mask, normalised as an image, is
#: positive where it is above it
_RED_MEAN = 123.675


# ------------------------------------------------------------------ the shots
def cells_authors(mask: np.ndarray, img_size: int = IMG_SIZE) -> np.ndarray:
    """``bool (64, 64)``: the cells the authors' code marks for a shot's mask, in the
    encoder's padded frame. The mask (0 or 255) is resized like SAM's image (PIL
    bilinear to the long side ``img_size``), normalised as SAM's red channel, padded
    with zeros and brought to 64 x 64 by torch's bilinear resize (no antialiasing:
    each cell reads the 2 x 2 pixels at its centre); a cell is marked above zero.
    SAM's division by the channel's spread does not change the sign, so it is left out."""
    from PIL import Image

    h, w = input_size(*mask.shape[:2], img_size)
    resized = Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8)).resize(
        (w, h), Image.BILINEAR)
    frame = np.zeros((img_size, img_size), np.float32)
    frame[:h, :w] = np.asarray(resized, np.float32) - _RED_MEAN
    cells = torch.nn.functional.interpolate(torch.from_numpy(frame)[None, None],
                                            size=(GRID, GRID), mode="bilinear",
                                            align_corners=False)
    return cells[0, 0].numpy() > 0


def shot_cells(mask: np.ndarray, img_size: int = IMG_SIZE, cells: str = "authors") -> np.ndarray:
    """``bool (64, 64)``: the cells a shot's mask marks, in the encoder's padded frame, by
    ``cells``: the authors' rule (:func:`cells_authors`) or the kit's aligned labels
    (:func:`~selfprompt.frame.labels_aligned`); every touched cell when none is marked."""
    if cells not in CELL_RULES:
        raise ValueError(f"cells must be one of {CELL_RULES}, not {cells!r}")
    marked = (cells_authors(mask, img_size) if cells == "authors"
              else labels_aligned(mask, img_size)[0].astype(bool))
    if marked.any():
        return marked
    frac = cv2.resize(_to_frame(mask > 0, img_size), (GRID, GRID), interpolation=cv2.INTER_AREA)
    return frac > 0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


class PerSAM:
    """PerSAM, fitted on k shots' cached embeddings, scikit-learn style.

    Parameters
    ----------
    bias_frame : {"stretched", "aligned"}, default="stretched"
        Where the attention bias lies: stretched over the whole grid as the authors'
        code resizes it, or on the padded frame's grid, under the cells it describes.
    guidance : bool, default=True
        Use target-guided attention and target-semantic prompting in the first pass
        (False: the location prior's points and the refinement alone; the authors'
        ablation without guidance).
    refine : bool, default=True
        Run the two cascaded post-refinement passes.
    cells : {"authors", "aligned"}, default="authors"
        Which cells a shot's mask marks (:func:`shot_cells`): the authors' rule or the
        kit's aligned labels.
    """

    name = "persam"

    def __init__(self, bias_frame: str = "stretched", guidance: bool = True,
                 refine: bool = True, cells: str = "authors") -> None:
        if bias_frame not in BIAS_FRAMES:
            raise ValueError(f"bias_frame must be one of {BIAS_FRAMES}, not {bias_frame!r}")
        if cells not in CELL_RULES:
            raise ValueError(f"cells must be one of {CELL_RULES}, not {cells!r}")
        self.bias_frame = bias_frame
        self.guidance = guidance
        self.refine = refine
        self.cells = cells

    def get_params(self) -> dict:
        return {"bias_frame": self.bias_frame, "guidance": self.guidance,
                "refine": self.refine, "cells": self.cells}

    # ---------------------------------------------------------------- fitting
    @staticmethod
    def _pool(cells: np.ndarray) -> np.ndarray:
        """One shot's target feature from its masked cells ``(n, C)``: their mean."""
        return cells.mean(axis=0)

    def fit(self, embeddings, masks, img_size: int = IMG_SIZE, decoder=None) -> "PerSAM":
        """Target features from the shots: ``embeddings`` a sequence of ``(C, 64, 64)``
        arrays (read one at a time), ``masks`` their true masks. Shots with an empty
        mask are skipped. Sets ``shot_targets_ (n, C)``, ``target_embedding_`` (their
        mean), ``target_`` (normalised), ``n_shots_``, ``img_size_``, ``seconds_``."""
        t0 = time.perf_counter()
        masks = [np.asarray(m) for m in masks]
        if len(masks) != len(embeddings):
            raise ValueError(f"{len(embeddings)} embeddings but {len(masks)} masks")
        targets, self.shots_used_ = [], []
        for j, m in enumerate(masks):
            if not m.any():
                continue
            cells = shot_cells(m, img_size, self.cells).ravel()
            f = to_float32(embeddings[j])
            targets.append(self._pool(f.reshape(f.shape[0], -1)[:, cells].T))
            self.shots_used_.append(j)
        if not targets:
            raise ValueError("every shot's mask is empty: PerSAM has no target feature")
        self.shot_targets_ = np.stack(targets).astype(np.float32)
        self.target_embedding_ = self.shot_targets_.mean(axis=0)
        self.target_ = _unit(self.target_embedding_)
        self.n_shots_ = len(targets)
        self.img_size_ = img_size
        self.seconds_ = round(time.perf_counter() - t0, 3)
        return self

    # ---------------------------------------------------------------- the prior
    def similarity(self, features: np.ndarray) -> np.ndarray:
        """Cosine similarity of every cell to the target: ``float32 (64, 64)``."""
        f = np.asarray(features, np.float32).reshape(len(self.target_), -1)
        norms = np.maximum(np.linalg.norm(f, axis=0), 1e-12)
        return (self.target_ @ f / norms).reshape(GRID, GRID).astype(np.float32)

    def location_prior(self, features: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The similarity at the image's resolution (bilinear, the padding cut off)."""
        return grid_to_image(self.similarity(features), size[0], size[1], aligned=True,
                             smooth=True, img_size=self.img_size_)

    @staticmethod
    def points(prior: np.ndarray, negative: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The prior's maximum (label 1) and, with ``negative``, its minimum (label 0),
        as ``(x, y)`` pixels."""
        at = [np.unravel_index(int(np.argmax(prior)), prior.shape)]
        if negative:
            at.append(np.unravel_index(int(np.argmin(prior)), prior.shape))
        pts = np.array([[x, y] for y, x in at], dtype=np.int64)
        return pts, np.array([1, 0][:len(at)], dtype=np.int64)

    def attention_bias(self, features: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """``float32 (64, 64)``: the similarity standardised by the image's prior (mean,
        standard deviation), then a sigmoid; on the padded frame's grid, or stretched
        from the image as the authors do (``bias_frame``)."""
        mu, sd = float(prior.mean()), max(float(prior.std(ddof=1)), 1e-12)
        if self.bias_frame == "aligned":
            z = (self.similarity(features) - mu) / sd
        else:
            z = cv2.resize((prior - mu) / sd, (GRID, GRID), interpolation=cv2.INTER_LINEAR)
        return (1 / (1 + np.exp(-z))).astype(np.float32)

    # ---------------------------------------------------------------- prediction
    def _image(self, decoder, features, size):
        """Set (or read) the decoder's image: ``(features (C, 64, 64), size (H, W))``."""
        if not hasattr(self, "target_"):
            raise RuntimeError(f"fit {type(self).__name__} on the shots first")
        if features is None:
            p = decoder.predictor
            return p.features[0].cpu().numpy(), tuple(p.original_size)
        decoder.set_embedding(features, size)
        return np.asarray(features, np.float32), tuple(size)

    def predict(self, decoder, features: np.ndarray | None = None,
                size: tuple[int, int] | None = None) -> np.ndarray:
        """The mask of one image, ``bool (H, W)``. ``decoder``: a
        :class:`~selfprompt.decode.PromptDecoder`; with ``features`` and ``size`` it is
        given that embedding, without them it decodes the one it holds."""
        return self.predict_scored(decoder, features, size)[0]

    def predict_scored(self, decoder, features: np.ndarray | None = None,
                       size: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
        """:meth:`predict`'s mask and SAM's predicted IoU of it (its last decoding's)."""
        features, size = self._image(decoder, features, size)
        prior = self.location_prior(features, size)
        pts, labels = self.points(prior)
        hooks = ({"bias": self.attention_bias(features, prior).ravel(),
                  "target": self.target_embedding_} if self.guidance else {})
        masks, iou, low = decode(decoder, pts, labels, multimask=False, **hooks)
        return self._cascade(decoder, pts, labels, masks[0], low[0], box_first=False,
                             score=min(max(float(iou[0]), 0.0), 1.0))

    def _cascade(self, decoder, pts, labels, mask, low, box_first: bool,
                 score: float) -> tuple[np.ndarray, float]:
        """PerSAM's post-refinement: decode again with the last logits as SAM's mask prompt
        (three masks, the best by SAM's score), then with its box too; ``box_first``: the
        box in both passes (PerSAM-F). Returns the mask and SAM's score of it (``score``:
        the first pass's, kept without refinement)."""
        if not self.refine:
            return mask, score
        p = decoder.predictor
        for step in range(2):
            box = bounding_box(mask) if (box_first or step == 1) else None
            if (box_first or step == 1) and box is None:
                return np.zeros_like(mask, dtype=bool), 0.0
            masks, scores, lows = p.predict(
                point_coords=np.asarray(pts, np.float32), point_labels=labels,
                box=None if box is None else box.astype(np.float32),
                mask_input=low[None], multimask_output=True)
            best = int(np.argmax(scores))
            mask, low = masks[best], lows[best]
            score = min(max(float(scores[best]), 0.0), 1.0)
        return mask, score


def _dice_focal(logits: torch.Tensor, target: torch.Tensor, shot: torch.Tensor, n: int,
                alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """PerSAM-F's loss, per shot and averaged over shots: Dice (smoothed by 1) + sigmoid
    focal loss (RetinaNet's, mean over the shot's pixels). ``logits``, ``target``,
    ``shot`` (which shot each pixel is) are flat over all shots' pixels."""
    p = torch.sigmoid(logits)

    def per_shot(x):
        return torch.zeros(n, dtype=x.dtype).index_add_(0, shot, x)

    dice = 1 - (2 * per_shot(p * target) + 1) / (per_shot(p) + per_shot(target) + 1)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    focal = (alpha * target + (1 - alpha) * (1 - target)) * ce * (1 - p_t) ** gamma
    pixels = per_shot(torch.ones_like(target))
    return (dice + per_shot(focal) / pixels).mean()


class PerSAMF(PerSAM):
    """PerSAM-F: PerSAM's prior (positive point only) and two trained weights over SAM's
    three multimask outputs, then the refinement with box and logits.

    Parameters
    ----------
    epochs : int, default=1000
        AdamW steps over all shots at once (the authors' 1000, one shot per step there).
    lr : float, default=1e-3
        AdamW's learning rate, annealed to 0 on a cosine (the authors' schedule).
    refine : bool, default=True
        Run the two post-refinement passes.
    cells : {"authors", "aligned"}, default="authors"
        Which cells a shot's mask marks (:func:`shot_cells`).
    """

    name = "persam_f"

    def __init__(self, epochs: int = 1000, lr: float = 1e-3, refine: bool = True,
                 cells: str = "authors") -> None:
        super().__init__(guidance=False, refine=refine, cells=cells)
        self.epochs = epochs
        self.lr = lr

    def get_params(self) -> dict:
        return {"epochs": self.epochs, "lr": self.lr, "refine": self.refine,
                "cells": self.cells}

    @staticmethod
    def _pool(cells: np.ndarray) -> np.ndarray:
        """PerSAM-F's target feature of one shot: mean of its cells' mean and maximum."""
        return cells.mean(axis=0) / 2 + cells.max(axis=0) / 2

    def fit(self, embeddings, masks, img_size: int = IMG_SIZE, decoder=None) -> "PerSAMF":
        """The target features (:meth:`PerSAM.fit`), then the three output weights:
        each shot decoded once from its own prior's positive point (``decoder`` holds
        the backbone), the loss of the weighted logits minimised against its mask.
        Adds ``weights_ (3,)`` and ``losses_`` (first and last)."""
        if decoder is None:
            raise ValueError("PerSAM-F trains on SAM's outputs: pass the decoder")
        t0 = time.perf_counter()
        masks = [np.asarray(m) for m in masks]
        super().fit(embeddings, masks, img_size)
        logits, targets, shot = [], [], []
        for n, j in enumerate(self.shots_used_):
            m = masks[j]
            features, size = self._image(decoder, to_float32(embeddings[j]), m.shape)
            pts, labels = self.points(self.location_prior(features, size), negative=False)
            _, _, low = decode(decoder, pts, labels, multimask=True)
            h, w = input_size(*m.shape, LOWRES)
            logits.append(low[:, :h, :w].reshape(len(low), -1))
            fg = cv2.resize((m > 0).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
            targets.append((fg >= 0.5).astype(np.float32).ravel())
            shot.append(np.full(h * w, n, np.int64))
        logits = torch.from_numpy(np.concatenate(logits, axis=1))        # (3, pixels)
        target, shot = torch.from_numpy(np.concatenate(targets)), torch.from_numpy(
            np.concatenate(shot))
        w = torch.nn.Parameter(torch.full((len(logits) - 1,), 1 / len(logits)))
        opt = torch.optim.AdamW([w], lr=self.lr, eps=1e-4)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.epochs)
        losses, threads = [], torch.get_num_threads()
        # a thousand steps on a few hundred thousand numbers: a second thread costs its
        # synchronisation at every step and gives little, more so on a busy CPU
        torch.set_num_threads(1)
        try:
            for _ in range(self.epochs):
                weights = torch.cat([1 - w.sum(0, keepdim=True), w])
                loss = _dice_focal(weights @ logits, target, shot, self.n_shots_)
                opt.zero_grad()
                loss.backward()
                opt.step()
                schedule.step()
                losses.append(loss.item())
        finally:
            torch.set_num_threads(threads)
        self.weights_ = torch.cat([1 - w.sum(0, keepdim=True), w]).detach().numpy()
        self.losses_ = [round(losses[0], 5), round(losses[-1], 5)] if losses else []
        self.seconds_ = round(time.perf_counter() - t0, 3)
        return self

    def predict_scored(self, decoder, features: np.ndarray | None = None,
                       size: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
        """The mask and its score: SAM's after refinement; without it the trained weights'
        mean of the three outputs' predicted IoUs."""
        features, size = self._image(decoder, features, size)
        pts, labels = self.points(self.location_prior(features, size), negative=False)
        _, iou, low = decode(decoder, pts, labels, multimask=True)
        low = np.tensordot(self.weights_, low, axes=1).astype(np.float32)   # (256, 256)
        score = float(np.clip(np.dot(self.weights_, iou), 0.0, 1.0))
        p = decoder.predictor
        mask = (p.model.postprocess_masks(torch.from_numpy(low)[None, None].to(p.device),
                                          p.input_size, p.original_size)[0, 0]
                > p.model.mask_threshold).cpu().numpy()
        return self._cascade(decoder, pts, labels, mask, low, box_first=True, score=score)


# ------------------------------------------------------------------ the estimators
class PerSAMMethod(Method):
    """PerSAM (registry name ``persam``): the shots' target feature, its location prior,
    target-guided attention and cascaded refinement; no classifier.

    Parameters: as :class:`PerSAM` (``bias_frame``, ``guidance``, ``refine``,
    ``cells``; by default the authors' form). Fitted: ``model_`` (the fitted PerSAM).
    The score is SAM's predicted IoU of the mask the last refinement step kept.
    """

    name = "persam"

    def __init__(self, bias_frame: str = "stretched", guidance: bool = True,
                 refine: bool = True, cells: str = "authors") -> None:
        self.bias_frame = bias_frame
        self.guidance = guidance
        self.refine = refine
        self.cells = cells

    def model(self):
        """The unfitted model (:class:`PerSAM`) with these settings."""
        return PerSAM(**self.get_params())

    def fit(self, shots: Shots) -> "PerSAMMethod":
        self.model_ = self.model().fit(shots.embeddings, shots.masks, shots.img_size,
                                       shots.decoder)
        self.decoder_ = shots.decoder
        self.n_shots_ = self.model_.n_shots_
        return self

    def predict(self, features: np.ndarray, size: tuple[int, int], *,
                seed: tuple[int, ...] = (0,)) -> Prediction:
        self._check_fitted("model_")
        mask, score = self.model_.predict_scored(self.decoder_, features, tuple(size))
        return Prediction(np.asarray(mask, bool), score, self.name)


class PerSAMFMethod(PerSAMMethod):
    """PerSAM-F (registry name ``persam_f``): PerSAM's prior and two trained weights over
    SAM's three outputs, then refinement. Parameters as :class:`PerSAMF`
    (``epochs``, ``lr``, ``refine``, ``cells``; by default the authors' form). Without
    refinement the score is the weights' mean of the three outputs' predicted IoUs."""

    name = "persam_f"

    def __init__(self, epochs: int = 1000, lr: float = 1e-3, refine: bool = True,
                 cells: str = "authors") -> None:
        self.epochs = epochs
        self.lr = lr
        self.refine = refine
        self.cells = cells

    def model(self):
        return PerSAMF(**self.get_params())


# the kit's forms and the ablation, each under the name results tables carry: the same
# estimators with other defaults, so that a registry name is all a variant needs
class PerSAMAlignedMethod(PerSAMMethod):
    """PerSAM in the kit's aligned form (``persam_aligned``): the shot's cells by the
    aligned labels and the attention bias on the padded frame's grid."""

    name = "persam_aligned"

    def __init__(self, bias_frame: str = "aligned", guidance: bool = True,
                 refine: bool = True, cells: str = "aligned") -> None:
        super().__init__(bias_frame, guidance, refine, cells)


class PerSAMNoGuideMethod(PerSAMMethod):
    """PerSAM in the authors' form without target guidance (``persam_noguide``): the
    location prior's two points and the cascaded refinement alone."""

    name = "persam_noguide"

    def __init__(self, bias_frame: str = "stretched", guidance: bool = False,
                 refine: bool = True, cells: str = "authors") -> None:
        super().__init__(bias_frame, guidance, refine, cells)


class PerSAMFAlignedMethod(PerSAMFMethod):
    """PerSAM-F with the shot's cells by the kit's aligned labels (``persam_f_aligned``)."""

    name = "persam_f_aligned"

    def __init__(self, epochs: int = 1000, lr: float = 1e-3, refine: bool = True,
                 cells: str = "aligned") -> None:
        super().__init__(epochs, lr, refine, cells)


#: variant name -> estimator: the authors' form, the kit's aligned form, the ablation
PERSAM_VARIANTS: dict[str, type[PerSAMMethod]] = {
    "persam": PerSAMMethod,
    "persam_aligned": PerSAMAlignedMethod,
    "persam_noguide": PerSAMNoGuideMethod,
    "persam_f": PerSAMFMethod,
    "persam_f_aligned": PerSAMFAlignedMethod,
}
