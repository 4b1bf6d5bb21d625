"""The paper's fine-tuning baseline: SAM's mask decoder trained on the k shots.

The question it answers: with k labelled images, is it better to fit a tiny linear
model that *prompts* a frozen SAM, or to adapt SAM itself? MedSAM-style fine-tuning
trains the mask decoder with ground-truth boxes as prompts while the image encoder
stays frozen, so it runs on the cached embeddings (no encoder pass, CPU-feasible).

Training, per step one shot: a box from its true mask, widened at random by the
preset's rule (the loose boxes self-prompting gives at test time), SAM's prompt
encoder (frozen) and mask decoder (trained), loss = soft Dice + binary cross-entropy
between SAM's ``(256, 256)`` low-resolution logits and the true mask in the same
padded frame. AdamW; the order of shots, the box widening and torch's generator are
seeded, so a fold's decoder is the same on a rerun of the same machine.
:class:`FineTuned` is the estimator the protocol fits on :class:`~selfprompt.methods.Shots`.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..decode import PromptDecoder
from ..embeddings import to_float32
from ..frame import LOWRES, _to_frame
from ..pipeline import segment
from ..presets import Preset
from ..prompts import bounding_box, widen
from .base import Method, Prediction, Shots
from .self_prompt import SelfPrompting

log = logging.getLogger(__name__)


def lowres_target(mask: np.ndarray) -> np.ndarray:
    """The true mask in SAM's low-resolution padded frame, ``float32 (256, 256)`` in
    {0, 1}: what the decoder's raw logits are compared with."""
    return (_to_frame(mask > 0, LOWRES) >= 0.5).astype(np.float32)


def dice_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss + binary cross-entropy, the usual pair for a small lesion."""
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return dice + F.binary_cross_entropy_with_logits(logits, target)


class DecoderFineTuner:
    """Fine-tune SAM's mask decoder on k (embedding, mask) pairs.

    Parameters
    ----------
    epochs : int, default=10
        Passes over the k shots (one shot per step): 200 steps for k = 20.
    lr : float, default=1e-4
        AdamW learning rate (MedSAM's).
    weight_decay : float, default=0.01
        AdamW weight decay.
    max_widen : int, default=20
        Box widening during training, as the presets widen self-prompted boxes.
    seed : int, default=0
        Seeds the shot order, the widening and torch's generator.
    progress : bool, default=False
        A tqdm bar over epochs.
    """

    def __init__(self, epochs: int = 10, lr: float = 1e-4, weight_decay: float = 0.01,
                 max_widen: int = 20, seed: int = 0, progress: bool = False) -> None:
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_widen = max_widen
        self.seed = seed
        self.progress = progress

    def get_params(self) -> dict:
        """The settings, as recorded in a fold's JSON."""
        return {"epochs": self.epochs, "lr": self.lr, "weight_decay": self.weight_decay,
                "max_widen": self.max_widen, "seed": self.seed}

    def fit(self, backbone, embeddings, masks) -> "DecoderFineTuner":
        """Train a copy of ``backbone``'s mask decoder; the backbone itself is unchanged.

        ``embeddings``: a sequence of ``(256, 64, 64)`` arrays (read lazily, as
        ``DatasetEmbeddings.take`` gives them); ``masks``: the matching true masks at
        image resolution. Sets ``decoder_state_``, ``losses_`` (mean loss per epoch)
        and ``seconds_``.
        """
        from tqdm.auto import tqdm

        masks = [np.asarray(m) for m in masks]
        if len(masks) != len(embeddings) or not masks:
            raise ValueError(f"{len(embeddings)} embeddings but {len(masks)} masks")
        usable = [j for j, m in enumerate(masks) if m.any()]
        if not usable:
            raise ValueError("every training mask is empty: no box to prompt with")
        t0 = time.perf_counter()
        sam = backbone.sam
        device = next(sam.mask_decoder.parameters()).device
        decoder = copy.deepcopy(sam.mask_decoder).train()
        transform = backbone.transform
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        targets = {j: torch.from_numpy(lowres_target(masks[j]))[None, None].to(device)
                   for j in usable}
        pe = sam.prompt_encoder.get_dense_pe().detach()
        optimiser = torch.optim.AdamW(decoder.parameters(), lr=self.lr,
                                      weight_decay=self.weight_decay)
        self.losses_ = []
        # AdamW's second moments decay into subnormal floats, which x86 CPUs handle in
        # microcode: steps grew several times slower over a fit. Flushed to zero here.
        flush = torch.set_flush_denormal(True)
        try:
            self._epochs(decoder, optimiser, sam, pe, transform, embeddings, masks, usable,
                         targets, rng, device, tqdm)
        finally:
            if flush:
                torch.set_flush_denormal(False)
        self.decoder_state_ = {k: v.detach().clone() for k, v in decoder.state_dict().items()}
        self.n_shots_ = len(usable)
        self.seconds_ = round(time.perf_counter() - t0, 3)
        log.info("decoder fine-tuned on %d shots, %d epochs: loss %.4f -> %.4f (%.0f s)",
                 len(usable), self.epochs, self.losses_[0], self.losses_[-1], self.seconds_)
        return self

    def _epochs(self, decoder, optimiser, sam, pe, transform, embeddings, masks, usable,
                targets, rng, device, tqdm) -> None:
        for _ in tqdm(range(self.epochs), desc="fine-tune decoder", unit="epoch",
                      disable=not self.progress, leave=False):
            total = 0.0
            for j in rng.permutation(usable):
                m = masks[j]
                box = widen(bounding_box(m), *m.shape, rng, self.max_widen)
                box = transform.apply_boxes(box[None].astype(np.float64), m.shape)
                features = torch.from_numpy(to_float32(embeddings[int(j)]))[None].to(device)
                with torch.no_grad():
                    sparse, dense = sam.prompt_encoder(
                        points=None, boxes=torch.as_tensor(box, dtype=torch.float32,
                                                           device=device), masks=None)
                logits, _iou = decoder(image_embeddings=features, image_pe=pe,
                                       sparse_prompt_embeddings=sparse,
                                       dense_prompt_embeddings=dense, multimask_output=False)
                loss = dice_bce(logits, targets[int(j)])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item()
            self.losses_.append(round(total / len(usable), 5))

    def backbone(self, backbone):
        """``backbone`` with the fine-tuned mask decoder (encoder and prompt encoder
        shared, not copied)."""
        if not hasattr(self, "decoder_state_"):
            raise RuntimeError("fit the fine-tuner first")
        sam = copy.copy(backbone.sam)
        sam._modules = dict(sam._modules)  # a shallow copy shares this dict: unshare it
        sam.mask_decoder = copy.deepcopy(backbone.sam.mask_decoder)
        sam.mask_decoder.load_state_dict(self.decoder_state_)
        sam.mask_decoder.eval()
        return dataclasses.replace(backbone, sam=sam)

    def decoder(self, backbone) -> PromptDecoder:
        """A :class:`PromptDecoder` that decodes with the fine-tuned mask decoder."""
        return PromptDecoder(self.backbone(backbone))


# ------------------------------------------------------------------ the estimator
#: the prompts the fine-tuned decoder is scored with (variant ``ft_<prompt>``)
FT_PROMPTS = ("box", "point_box", "no_prompt")


class FineTuned(Method):
    """SAM's mask decoder fine-tuned on the shots (registry name ``finetuned``).

    Parameters
    ----------
    preset : str or Preset, default="corrected"
        The classifier whose coarse mask gives the prompts.
    prompt : {"box", "point_box", "no_prompt"}, default="box"
    epochs, lr, weight_decay, max_widen, seed :
        The fine-tuning's (:class:`DecoderFineTuner`).
    progress : bool, default=False

    Fitted: ``tuner_`` (its losses, seconds), ``decoder_`` (the fine-tuned decoder),
    ``classifier_``. The score is SAM's predicted IoU from the fine-tuned decoder.
    """

    def __init__(self, preset: str | Preset = "corrected", prompt: str = "box",
                 epochs: int = 10, lr: float = 1e-4, weight_decay: float = 0.01,
                 max_widen: int = 20, seed: int = 0, progress: bool = False) -> None:
        self.preset = preset
        self.prompt = prompt
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_widen = max_widen
        self.seed = seed
        self.progress = progress

    def tuner(self):
        """An unfitted :class:`DecoderFineTuner` with
        this estimator's settings."""
        return DecoderFineTuner(self.epochs, self.lr, self.weight_decay, self.max_widen,
                                self.seed, self.progress)

    def fit(self, shots: Shots) -> "FineTuned":
        if self.prompt not in FT_PROMPTS:
            raise ValueError(f"unknown prompt {self.prompt!r} for the fine-tuned decoder; "
                             f"choose from {', '.join(FT_PROMPTS)}")
        base = SelfPrompting(self.preset).fit(shots)
        tuner = self.tuner().fit(shots.decoder.backbone, shots.embeddings, shots.masks)
        return self._set(base, tuner)

    def _set(self, base: SelfPrompting, tuner) -> "FineTuned":
        self.preset_, self.classifier_ = base.preset_, base.classifier_
        self.base_decoder_ = base.decoder_
        self.tuner_ = tuner
        self.decoder_ = tuner.decoder(base.decoder_.backbone)
        self.n_shots_ = base.n_shots_
        return self

    @property
    def variant(self) -> str:
        return f"ft_{self.prompt}"

    def predict(self, features: np.ndarray, size: tuple[int, int], *,
                seed: tuple[int, ...] = (0,)) -> Prediction:
        self._check_fitted("decoder_")
        from ..strategies import Inputs, run_strategies

        v, features, size = self.variant, np.asarray(features, np.float32), tuple(size)
        seg = segment(self.classifier_, self.base_decoder_, features, size, self.preset_,
                      np.random.default_rng(list(seed)), (), seed=tuple(seed))
        self.decoder_.set_embedding(features, size)
        x = Inputs(seg.prompts, self.preset_, None, None, tuple(seed),
                   self.base_decoder_.backbone.img_size)
        quality: dict[str, float] = {}
        mask = run_strategies([v], self.base_decoder_, x, self.decoder_, scores=quality)[v]
        return Prediction(mask, quality[v], v)
