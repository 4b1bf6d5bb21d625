"""The clocks and counters under sections 2-4: an encoder's images/s (with its peak GPU
memory), its multiply-adds per image, and the machine's matrix-multiply peak that the
achieved rate is set against.

Both the encoder's speed and the peak are the best of several timed runs: each then says
what the machine does when undisturbed, and their ratio compares like with like.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import torch


def synchronizer(device: torch.device):
    """What waits for a device's queued work before a clock is read (nothing on a CPU)."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def matmul_peak(dtype=torch.float32, n: int = 2048, reps: int = 5, device: str = "cpu") -> float:
    """Best multiply-adds per second of an ``n x n`` matrix product (all threads)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = synchronizer(a.device)
    best = float("inf")
    for _ in range(reps + 1):
        sync()
        t = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - t)
    return n ** 3 / best


def encoder_macs(backbone) -> float:
    """Multiply-adds of the image encoder for one input square (flops / 2): 1024 x 1024
    for SAM, 256 x 256 for LiteMedSAM."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, backbone.img_size, backbone.img_size, device=backbone.device)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        backbone.sam.image_encoder(x)
    return fc.get_total_flops() / 2


class Speed(NamedTuple):
    """What :func:`encoder_speed` measured."""

    images_per_s: float
    embedding: torch.Tensor   # the first image's, for comparisons between rows
    gpu_bytes: int | None     # peak torch.cuda.max_memory_allocated (None on a CPU)
    first_s: float            # the first batch's seconds: set-up (compiling) included


def encoder_speed(backbone, batch: int, precision: str, reps: int, warmup: int,
                  fused: bool | None = None, channels_last: bool = False,
                  compile: bool = False) -> Speed:
    """Images/s of ``ImageEncoder.encode`` (best of ``reps`` timed batches, as the matmul
    peak is a best of several: both then say what the machine does when undisturbed),
    after ``warmup`` batches (at least one when ``compile``)."""
    from selfprompt.models.encoder import ImageEncoder

    enc = ImageEncoder(backbone, batch_size=batch, precision=precision,
                       channels_last=channels_last, fused=fused, compile=compile)
    g = torch.Generator().manual_seed(1)
    side = backbone.img_size
    prepared = [torch.randint(0, 256, (3, side, side), dtype=torch.uint8, generator=g)
                for _ in range(batch)]
    cuda = backbone.device.type == "cuda"
    sync = synchronizer(backbone.device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(backbone.device)
    seconds = []
    for _ in range(max(warmup, 1 if compile else 0) + max(reps, 1)):
        t = time.perf_counter()
        out = enc.encode(prepared)
        sync()
        seconds.append(time.perf_counter() - t)
    return Speed(batch / min(seconds[-max(reps, 1):]), out[0],
                 torch.cuda.max_memory_allocated(backbone.device) if cuda else None,
                 seconds[0])
