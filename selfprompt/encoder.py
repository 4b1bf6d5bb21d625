"""The image encoder, batched: SAM's own pre-processing, many images per forward pass.

``SamPredictor.set_image`` encodes one image at a time. Here the resize runs in data
loader workers and the encoder sees batches, under ``inference_mode``; on a GPU it can
run in bf16/fp16 autocast and ``channels_last``. At batch size 1 in fp32 the result is
bit-for-bit the embedding ``set_image`` computes (a test holds this); other settings
differ by a measured amount (``make bench``).
"""
from __future__ import annotations

import os
from contextlib import nullcontext

import numpy as np
import torch
from segment_anything.utils.transforms import ResizeLongestSide

from .backbone import Backbone

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def use_all_cores() -> None:
    """Let torch use every core the process may run on (its default is physical cores)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    torch.set_num_threads(n)


class ImageEncoder:
    """Turns RGB ``uint8 (H, W, 3)`` images into ``(256, 64, 64)`` embeddings.

    ``passes`` counts images sent through the encoder: the benchmark and the tests use
    it to show that a sweep encodes each image once, and a warm rerun none.
    """

    def __init__(self, backbone: Backbone, batch_size: int = 1, precision: str = "fp32",
                 channels_last: bool = False, compile: bool = False) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, not {precision!r}")
        self.backbone = backbone
        self.batch_size = batch_size
        self.precision = precision
        self.channels_last = channels_last
        self.transform = ResizeLongestSide(backbone.sam.image_encoder.img_size)
        self.passes = 0
        self._encoder = backbone.sam.image_encoder
        if channels_last:
            self._encoder = self._encoder.to(memory_format=torch.channels_last)
        if compile:
            self._encoder = torch.compile(self._encoder)

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """Resize as ``set_image`` does (longest side to 1024); ``uint8 (3, h, w)``, CPU.

        Cheap to run in a worker process; normalisation and padding happen in
        :meth:`encode` on the device.
        """
        resized = self.transform.apply_image(image)
        return torch.as_tensor(resized).permute(2, 0, 1).contiguous()

    @torch.inference_mode()
    def encode(self, prepared: list[torch.Tensor]) -> torch.Tensor:
        """Encode prepared images; returns ``float32 (B, 256, 64, 64)`` on the CPU."""
        sam, device = self.backbone.sam, self.backbone.device
        batch = torch.cat([sam.preprocess(t.to(device)[None]) for t in prepared])
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        dtype = PRECISIONS[self.precision]
        ctx = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
        with ctx:
            features = self._encoder(batch)
        self.passes += len(prepared)
        return features.float().cpu()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """One image to ``float32 (256, 64, 64)``: the interactive path."""
        return self.encode([self.prepare(image)])[0].numpy()
