"""The image encoder, batched: SAM's own pre-processing, many images per forward pass.

``SamPredictor.set_image`` encodes one image at a time. Here the resize runs in data
loader workers and the encoder sees batches, under ``inference_mode``; on a GPU it can
run in bf16/fp16 autocast and ``channels_last``.

By default (``fused=None``, or ``True``) SAM's ViT blocks run a fused path, the same
algebra computed by fused kernels, so it differs in the last bits (vit_b: 4e-6 at
most, far below the float16 cache's own rounding; ``make bench`` measures it):

- attention goes through ``F.scaled_dot_product_attention``, the decomposed
  relative-position bias passed as its ``attn_mask``. SAM's own attention writes each
  global block's whole (heads, 4096, 4096) score and bias tensors to memory and reads
  them back several times, which costs more than the arithmetic; here, on the CPU, the
  bias is built a slice of query rows at a time and consumed at once, and on a GPU it
  goes into the query-key products themselves, so that no mask is needed at all
  (:func:`bias_in_products`);
- on the CPU in float32, the linear layers run through oneDNN with bias and GELU
  inside the matrix product (:func:`selfprompt.models.onednn.linear`).

On a CPU a vit_b image takes about half the time of SAM's own code, and the process
needs less than half its peak memory (``make bench`` measures both; benchmarks/README.md).

TinyViT encoders (``medsam_lite``, ``vit_t``) stay exact by default; ``fused=True``
(``--fused-encoder``) gives them :mod:`selfprompt.models.tinyvit`'s fused copy (batch norms
folded, ``channels_last``, GELUs inside the layers, fused attention), which is faster
on a CPU. ``compile=True`` gains nothing more there and costs its compile time.

``fused=False`` runs SAM's own code: at batch size 1 in fp32 the result is
then bit-for-bit the embedding ``set_image`` computes (a test holds this), for an
exact replay of the authors' pipeline. Other settings differ by a measured amount.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from .backbone import Backbone
from ..utils.device import keep_freed_memory
from .onednn import is_erf_gelu, linear

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def use_all_cores() -> int:
    """Let torch use every core the process may run on (its default is physical cores).

    Returns the thread count set.
    """
    from ..utils.device import usable_cores

    n = usable_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


# Largest attention-mask slice built at once, in elements (16 M: 64 MiB in float32; for
# a vit_b global block, 5 query rows of the 64 x 64 grid). Building the whole mask of a
# global block (heads x 4096 x 4096 floats, 800 MB for vit_b) and reading it back costs
# more memory traffic than the attention's arithmetic. Slices from 1 M to 32 M elements
# all beat the whole mask on a CPU, the larger ones slightly; 16 M is among the fastest.
MASK_CHUNK = 1 << 24


def fused_mlp(mlp: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """SAM's ``MLPBlock.forward`` (lin1, GELU, lin2) with GELU inside the product."""
    return linear(mlp.lin2, linear(mlp.lin1, x, gelu=True))


def sdpa_attention(attn: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """SAM's ``image_encoder.Attention.forward`` through ``scaled_dot_product_attention``.

    Same algebra: softmax(q k^T / sqrt(d) + B_h + B_w) v, with the decomposed
    relative-position terms B_h, B_w computed from the unscaled q as SAM does. On the
    CPU the bias is built and consumed a few query rows at a time (``MASK_CHUNK``),
    never whole; on a GPU it goes into the products (:func:`bias_in_products`).
    """
    from segment_anything.modeling.image_encoder import get_rel_pos

    B, H, W, _ = x.shape
    heads = attn.num_heads
    qkv = linear(attn.qkv, x).reshape(B, H * W, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, H*W, d)
    if not attn.use_rel_pos:
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
    else:
        d = q.shape[-1]
        r_q = q.reshape(B, heads, H, W, d)
        rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, get_rel_pos(H, H, attn.rel_pos_h))
        rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, get_rel_pos(W, W, attn.rel_pos_w))
        route = bias_in_products if q.device.type in BIAS_IN_PRODUCTS else bias_as_mask
        out = route(q, k, v, rel_h, rel_w, attn.scale)
    out = out.view(B, heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
    return linear(attn.proj, out)


def bias_as_mask(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor,
                 rel_w: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(scale q k^T + B_h + B_w) v, the bias as ``scaled_dot_product_attention``'s
    mask, built and consumed a few query rows at a time (``MASK_CHUNK``), never whole.
    Arguments as for :func:`bias_in_products`."""
    B, heads, _, _ = q.shape
    H, W = rel_h.shape[-1], rel_w.shape[-1]
    rel_h = rel_h.contiguous().unsqueeze(-1)  # (B, heads, H, W, H, 1)
    rel_w = rel_w.contiguous().unsqueeze(-2)  # (B, heads, H, W, 1, W)
    rows = max(1, min(H, MASK_CHUNK // (B * heads * W * H * W)))
    out = torch.empty_like(q)
    mask = q.new_empty(B, heads, rows, W, H, W)
    for r0 in range(0, H, rows):
        r1 = min(H, r0 + rows)
        m = mask[:, :, : r1 - r0]
        torch.add(rel_h[:, :, r0:r1], rel_w[:, :, r0:r1], out=m)
        out[:, :, r0 * W:r1 * W] = F.scaled_dot_product_attention(
            q[:, :, r0 * W:r1 * W], k, v, scale=scale,
            attn_mask=m.view(B, heads, (r1 - r0) * W, H * W))
    return out


#: devices on which SAM's relative-position bias goes into the attention's products
#: (:func:`bias_in_products`) rather than a mask. Not the CPU: there PyTorch's fused
#: kernel then pays for three times the query-key products, which is slower than the
#: mask slices. On a GPU it lets the flash kernel run with no mask, where the mask route
#: writes and reads back the bias of every (query, key) pair (6 GB a global block at
#: batch 16 in bf16); ``benchmarks/gpu.sh`` times both routes.
BIAS_IN_PRODUCTS = ("cuda",)


def bias_in_products(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor,
                     rel_w: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(scale q k^T + B_h + B_w) v with no attention mask: the bias terms ride in
    the products.

    SAM's bias for query i and key j is ``rel_h[i, row(j)] + rel_w[i, col(j)]``. Append
    to each query its ``H + W`` bias terms, and to each key the one-hot indicators of
    its row and column: the dot product of the two is then ``scale q.k`` plus exactly
    that bias, so ``scaled_dot_product_attention`` (scale 1) needs no mask and may
    choose its flash kernel. Head dimensions are padded with zeros to a multiple of 8,
    ``v`` included (flash kernels want one head size for all three): 64 + 64 + 64 in
    vit_b's global blocks, 64 + 14 + 14 (+ 4) in its windows.

    ``q, k, v (B, heads, H*W, d)``; ``rel_h (B, heads, H, W, H)``, ``rel_w (B, heads, H,
    W, W)`` as SAM's ``add_decomposed_rel_pos`` computes them, from the unscaled ``q``.
    """
    B, heads, n, d = q.shape
    H, W = rel_h.shape[-1], rel_w.shape[-1]
    size = -(-(d + H + W) // 8) * 8
    eye_h = torch.eye(H, dtype=q.dtype, device=q.device)
    eye_w = torch.eye(W, dtype=q.dtype, device=q.device)
    key_rows = eye_h.repeat_interleave(W, 0).expand(B, heads, n, H)   # key j = (row, col)
    key_cols = eye_w.repeat(H, 1).expand(B, heads, n, W)
    qa = F.pad(torch.cat([q * scale, rel_h.reshape(B, heads, n, H),
                          rel_w.reshape(B, heads, n, W)], -1), (0, size - d - H - W))
    ka = F.pad(torch.cat([k, key_rows, key_cols], -1), (0, size - d - H - W))
    out = F.scaled_dot_product_attention(qa, ka, F.pad(v, (0, size - d)), scale=1.0)
    return out[..., :d]


def _fused_forwards(encoder: torch.nn.Module) -> list[tuple[torch.nn.Module, object]]:
    """(module, replacement forward) for SAM's ViT attention and MLP blocks; empty for
    an encoder without them (MobileSAM's TinyViT)."""
    from segment_anything.modeling.common import MLPBlock
    from segment_anything.modeling.image_encoder import Attention

    attention = [m for m in encoder.modules() if isinstance(m, Attention)]
    if not attention:
        return []
    mlps = [m for m in encoder.modules() if isinstance(m, MLPBlock)
            and is_erf_gelu(m.act)]
    return [(m, sdpa_attention) for m in attention] + [(m, fused_mlp) for m in mlps]


class ImageEncoder:
    """Turns RGB ``uint8 (H, W, 3)`` images into ``(256, 64, 64)`` embeddings.

    Resizing, normalisation and padding are the backbone's own (``backbone.transform``
    and ``sam.preprocess``): SAM's for the ViTs, LiteMedSAM's reference for ``medsam_lite``.

    ``passes`` counts images sent through the encoder: the benchmark and the tests use
    it to show that a sweep encodes each image once, and a warm rerun none.

    On the CPU the encoder uses every core the process may run on (:func:`use_all_cores`).
    ``fused`` (``False`` for bit-for-bit ``set_image``) is described in the module's
    docstring for SAM's ViTs; for TinyViT encoders (``medsam_lite``, ``vit_t``) it
    means :mod:`selfprompt.models.tinyvit`'s fused copy. The default (None) fuses SAM's ViTs
    and leaves TinyViT exact: the committed ``medsam_lite`` reference and its cache
    were made with the exact encoder, and a default that changed them would make
    ``make verify-reference`` approximate on the machine that wrote them.
    """

    def __init__(self, backbone: Backbone, batch_size: int = 1, precision: str = "fp32",
                 channels_last: bool = False, compile: bool = False,
                 fused: bool | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, not {precision!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.backbone = backbone
        self.batch_size = batch_size
        self.precision = precision
        self.channels_last = channels_last
        self.transform = backbone.transform  # SAM's resize, or LiteMedSAM's
        self.passes = 0
        if backbone.device.type == "cpu":
            use_all_cores()
            keep_freed_memory()  # freed tensors stay mapped: no page faults per image
        from .tinyvit import fused_copy, has_tinyvit

        self._encoder = backbone.sam.image_encoder
        tinyvit = has_tinyvit(self._encoder)
        fused = not tinyvit if fused is None else fused
        self._fused = _fused_forwards(self._encoder) if fused else []
        if fused and tinyvit:
            self._encoder = fused_copy(self._encoder)  # a copy: the decoder's Sam is shared
            channels_last = self.channels_last = True
        self.fused = bool(self._fused) or (fused and tinyvit)  # False: nothing to route
        if channels_last:
            self._encoder = self._encoder.to(memory_format=torch.channels_last)
        if compile:
            self._encoder = torch.compile(self._encoder)

    @property
    def numerics(self) -> str:
        """How this encoder's arithmetic differs from ``set_image`` ("" = it does not).

        Part of the cache's key: a bf16 or fused embedding is never served to a run that
        expects the exact one, nor the other way round.
        """
        parts = [] if self.precision == "fp32" else [self.precision]
        return "-".join(parts + (["fused"] if self.fused else []))

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """Resize as the backbone's reference does (SAM's ``set_image``: longest side to
        1024; LiteMedSAM: to 256, area resize); ``uint8 (3, h, w)``, CPU.

        Cheap to run in a worker process; normalisation and padding happen in
        :meth:`encode` on the device.
        """
        resized = self.transform.apply_image(image)
        return torch.as_tensor(resized).permute(2, 0, 1).contiguous()

    @contextmanager
    def _fused_path(self):
        """Route SAM's attention and MLP blocks through the fused forwards for the
        duration of one forward pass.

        The backbone's modules are shared (the decoder holds the same ``Sam``), so the
        patch is an instance attribute set and removed around the call, never left behind.
        """
        for m, forward in self._fused:
            m.forward = forward.__get__(m)
        try:
            yield
        finally:
            for m, _ in self._fused:
                del m.forward

    @torch.inference_mode()
    def encode(self, prepared: list[torch.Tensor]) -> torch.Tensor:
        """Encode prepared images; returns ``float32 (B, 256, 64, 64)`` on the CPU."""
        sam, device = self.backbone.sam, self.backbone.device
        # pinned loader batches (on a GPU) are copied without blocking the host
        batch = torch.cat([sam.preprocess(t.to(device, non_blocking=t.is_pinned())[None])
                           for t in prepared])
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        dtype = PRECISIONS[self.precision]
        ctx = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
        with ctx, self._fused_path():
            features = self._encoder(batch)
        self.passes += len(prepared)
        return features.float().cpu()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """One image to ``float32 (256, 64, 64)``: the interactive path."""
        return self.encode([self.prepare(image)])[0].numpy()
