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
from ..prompts import bounding_box, widen

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
