"""Sections 2-4 for each backbone of the ``--speed`` grid on the CPU and of the
``--gpu-speed`` grid on a GPU: the encoder's images/s per batch size and precision, the
multiply-adds per second that makes against the machine's matrix-multiply peak, and on a
GPU the peak memory, each row with its target where it has one.

Beside the kit's default encoder, a grid times SAM's own encoder code (bit-for-bit
``set_image``), TinyViT's fused copy, and on a GPU the CPU's attention route, so that
each speed-up is measured against what it replaces; half-precision rows also give the
embedding's distance from fp32. The end-to-end rows of each device follow its grid.
"""
from __future__ import annotations

import contextlib

import torch

from benchmarks.bench.common import NO_GPU, backbone_or_row
from benchmarks.bench.end_to_end import end_to_end_rows
from benchmarks.bench.measure import encoder_macs, encoder_speed, matmul_peak
from benchmarks.bench.options import parse_grid
from benchmarks.bench.table import measuring

#: images/s that the bf16 rows at batch 16 or more should reach on an H100/H200
GPU_TARGETS = {"vit_b": 300, "vit_h": 80}


@contextlib.contextmanager
def masked_attention_route():
    """SAM's relative-position bias as an attention mask on every device (the CPU's
    route), for comparison with the GPU's default (the bias inside the products)."""
    import selfprompt.models.encoder as encoder_module

    kept = encoder_module.BIAS_IN_PRODUCTS
    encoder_module.BIAS_IN_PRODUCTS = ()
    try:
        yield
    finally:
        encoder_module.BIAS_IN_PRODUCTS = kept


def variant_rows(args, rows: list, backbone, name: str, variant: tuple, macs: float,
                 peak: float) -> torch.Tensor:
    """Sections 2-4 for one (batch, precision, encoder) of a backbone: images/s, the
    achieved rate against ``peak`` (on a CPU in fp32, against the peak measured around
    the row instead) and on a GPU the peak memory, each with its target where it has
    one. Returns the first image's embedding."""
    b, p, fast = variant
    model, device = backbone.model_type, backbone.device.type
    warm = args.vit_b_warmup if (model == "vit_b" and device == "cpu") else args.warmup
    # on a CPU, fp32 rows are set against the peak measured just before and after them:
    # a shared machine's rate drifts from minute to minute, enough to flip the verdict
    # against a peak measured at another time
    adjacent = device == "cpu" and p == "fp32"
    before = matmul_peak(torch.float32, args.mm_size, reps=3) if adjacent else 0
    with masked_attention_route() if fast == "mask" else contextlib.nullcontext():
        ips, emb, gpu_bytes, _ = encoder_speed(
            backbone, b, p, args.reps, warm, None if fast == "mask" else fast,
            channels_last=device == "cuda" and p != "fp32")
    if adjacent:
        peak = max(before, matmul_peak(torch.float32, args.mm_size, reps=3))
    rows.append(("2", f"{name}: encoder speed", f"{ips:.3g}", "images/s",
                 f"best of {args.reps} after {warm} warm-up"))
    frac = macs * ips / peak
    target = ""
    if model == "vit_b" and device == "cpu" and p == "fp32" and fast is None:
        target = f"; target 70 %: {'met' if frac >= 0.7 else 'NOT met'}"
    if model == "medsam_lite" and device == "cpu" and p == "fp32":
        target = f"; target 60 %: {'met' if frac >= 0.6 else 'NOT met'}"
    goal = GPU_TARGETS.get(model) if device == "cuda" and p != "fp32" else None
    if goal and b >= 16:
        target = f"; target {goal} images/s: {'met' if ips >= goal else 'NOT met'}"
    rows.append(("3", f"{name}: achieved rate", f"{macs * ips / 1e9:.1f}", "GMAC/s",
                 f"{100 * frac:.0f} % of the {p if p != 'fp16' else 'bf16'} matmul peak"
                 + (f" ({peak / 1e9:.0f} GMAC/s, measured around this row)" if adjacent
                    else "") + target))
    if gpu_bytes is not None:
        limit = ""
        if model == "vit_b" and p != "fp32" and b == 32:
            limit = f"; target under 8 GiB: {'met' if gpu_bytes < 8 * 2**30 else 'NOT met'}"
        rows.append(("4", f"{name}: peak GPU memory", f"{gpu_bytes / 2**30:.2f}", "GiB",
                     f"torch.cuda.max_memory_allocated{limit}"))
    return emb


def speed_section(args, rows: list) -> None:
    from selfprompt.models.encoder import ImageEncoder, use_all_cores
    from selfprompt.models.tinyvit import has_tinyvit

    threads = use_all_cores()
    if not args.gpu_only:
        peak32 = matmul_peak(torch.float32, args.mm_size)
        peak16 = matmul_peak(torch.bfloat16, args.mm_size // 2, reps=2)
        rows.append(("3", "CPU fp32 matmul peak (torch.mm)", f"{peak32 / 1e9:.1f}", "GMAC/s",
                     f"{args.mm_size}^3, {threads} threads, best of 5"))
        rows.append(("3", "CPU bf16 matmul peak (torch.mm)", f"{peak16 / 1e9:.1f}", "GMAC/s",
                     f"{args.mm_size // 2}^3, {threads} threads"))
    devices = [] if args.gpu_only else [("cpu", parse_grid(args.speed), args.precisions)]
    if torch.cuda.is_available() and not args.no_gpu:
        devices.append(("cuda", parse_grid(args.gpu_speed), args.precisions))
    else:
        rows.append(("2", "cuda: encoder speed, rate, GPU memory, end to end, compiled",
                     "not measured", "", NO_GPU))
    for device, grid, precisions in devices:
        if device == "cuda":
            peak32 = matmul_peak(torch.float32, 8192, device="cuda")
            peak16 = matmul_peak(torch.bfloat16, 8192, device="cuda")
            rows.append(("3", "GPU fp32 / bf16 matmul peak", f"{peak32 / 1e12:.0f} / "
                         f"{peak16 / 1e12:.0f}", "TMAC/s", torch.cuda.get_device_name()))
        for model, batches in grid.items():
            backbone = macs = None  # the previous model's, freed before this one is built
            with measuring(rows, "3", f"{model} encoder ({device}): built, MACs counted"):
                backbone = backbone_or_row(model, device, rows, f"{model} encoder ({device})")
                if backbone is not None:
                    macs = encoder_macs(backbone)
                    rows.append(("3", f"{model} encoder MACs per image", f"{macs / 1e9:.1f}",
                                 "GMAC", f"FlopCounterMode, {backbone.img_size} x "
                                 f"{backbone.img_size}"))
            if macs is None:
                continue
            # (batch, precision, fused): None is the kit's default (SAM's ViTs fused,
            # TinyViT exact); False SAM's own attention; True TinyViT's fused copy
            variants = [(b, p, None) for p in precisions for b in batches]
            if args.exact_encoder and ImageEncoder(backbone).fused:
                variants.append((batches[0], "fp32", False))
            if has_tinyvit(backbone.sam.image_encoder):
                variants.append((batches[0], "fp32", True))
            elif device == "cuda" and any(b >= 16 for b in batches) and "bf16" in precisions:
                # SAM's ViTs on a GPU: their bias in the attention's products (the
                # default there) against the CPU's route, the bias as a mask
                variants.append((min(b for b in batches if b >= 16), "bf16", "mask"))
            ref = None
            for b, p, fast in variants:
                if p != "fp32" and device == "cpu" and model not in args.cpu_bf16_models:
                    continue  # no bf16 units on most CPUs: 10-100x slower than fp32
                name = f"{model} {device} batch {b} {p}" + {
                    None: "", False: " exact-encoder", True: " fused-encoder",
                    "mask": " bias-as-mask"}[fast]
                emb = None
                with measuring(rows, "2", f"{name}: encoder speed"):
                    emb = variant_rows(args, rows, backbone, name, (b, p, fast), macs,
                                       peak16 if p != "fp32" else peak32)
                if emb is None:
                    continue
                if b == batches[0] and p == "fp32" and fast is None:
                    ref = emb
                elif b == batches[0] and ref is not None:
                    d = (emb - ref).abs()
                    rows.append(("2", f"{name}: embedding vs fp32", f"{d.max().item():.3g}",
                                 "max abs",
                                 f"relative {d.max().item() / ref.abs().max().item():.2g}, "
                                 f"mean abs {d.mean().item():.2g}"))
            del backbone
        grid, images = (args.e2e, args.e2e_images) if device == "cpu" else \
            (args.gpu_e2e, args.gpu_e2e_images)
        with measuring(rows, "2", f"{device}: end to end (embed)"):
            end_to_end_rows(args, rows, device, grid, images)
