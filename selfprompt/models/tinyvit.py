"""TinyViT encoders (LiteMedSAM's ``medsam_lite``, MobileSAM's ``vit_t``) fused for
inference on a CPU.

Why: LiteMedSAM is the backbone students run on laptops, and its encoder spends most
of its time outside matrix products. Its first stage works at 256 x 256 with up to 256
channels: every batch norm, GELU and depthwise convolution there streams a 64 MiB
tensor through memory, and convolutions in PyTorch's default (NCHW) layout are
reordered for oneDNN and back around each call, so the exact encoder reaches only
about half of the CPU's fp32 matrix-multiply peak.

The fused copy computes the same function in fewer passes over memory:

- each batch norm is folded into the convolution before it (inference statistics are
  constants, so ``conv`` then ``bn`` is one ``conv`` with rescaled weights and a bias);
- convolutions run in ``channels_last``, oneDNN's native layout, with no reorders;
- each GELU, and MBConv's residual sum, run inside the convolution or linear layer
  before them (:mod:`selfprompt.models.onednn`);
- attention goes through ``F.scaled_dot_product_attention`` with the learned
  position bias as its additive mask, built once as a 4-D tensor so that PyTorch's
  fused CPU kernel runs (with a 3-D mask it falls back to separate kernels).

The fused copy is faster than the exact encoder and closer to the matmul peak
(``make bench`` measures both; benchmarks/README.md). It differs from the original in
the last bits only (max abs 3e-6 on embeddings of magnitude 0.7, far
below the float16 cache's own rounding of 2.4e-4 there; ``make bench`` and the tests
measure it). The original modules are left untouched: the copy is the encoder's own,
the decoder keeps sharing the backbone's ``Sam``.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .onednn import conv2d, is_erf_gelu, linear


def _is_tinyvit_attention(m: nn.Module) -> bool:
    return all(hasattr(m, a) for a in ("attention_biases", "attention_bias_idxs", "qkv",
                                       "proj", "norm", "key_dim", "d", "dh", "scale"))


def has_tinyvit(encoder: nn.Module) -> bool:
    """True for an encoder with TinyViT attention blocks (and so a fused copy)."""
    return any(_is_tinyvit_attention(m) for m in encoder.modules())


def fold_batch_norms(module: nn.Module) -> int:
    """Fold every ``BatchNorm2d`` that directly follows a ``Conv2d`` among a module's
    children into that convolution (in place, eval mode); returns how many."""
    n = 0
    for parent in module.modules():
        names = list(dict(parent.named_children()))
        for a, b in zip(names, names[1:]):
            conv, bn = getattr(parent, a), getattr(parent, b)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(parent, a, fuse_conv_bn_eval(conv, bn))
                setattr(parent, b, nn.Identity())
                n += 1
    return n


def _conv(m: nn.Module) -> nn.Conv2d:
    """The convolution of a ``Conv2d_BN`` whose batch norm is folded (or a plain one)."""
    return m if isinstance(m, nn.Conv2d) else m.c


def _folded(*modules: nn.Module) -> bool:
    """Whether each is a convolution, or a ``Conv2d_BN`` whose batch norm is folded
    away: then :func:`_conv` is the whole of it."""
    return all(isinstance(m, nn.Conv2d) or (
        isinstance(getattr(m, "c", None), nn.Conv2d)
        and all(isinstance(c, nn.Identity) for n, c in m.named_children() if n != "c"))
        for m in modules)


def _attention_forward(self, x: torch.Tensor) -> torch.Tensor:
    """TinyViT's windowed attention in one fused kernel; the bias as additive mask.

    The mask is 4-D (``fused_bias``, built once): with a 3-D one PyTorch's CPU
    ``scaled_dot_product_attention`` falls back to its unfused path, several times
    slower on a 64 x 64 map's 25 windows.
    """
    b, n, _ = x.shape
    q, k, v = linear(self.qkv, self.norm(x)).view(b, n, self.num_heads, -1).split(
        [self.key_dim, self.key_dim, self.d], dim=3)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                         v.transpose(1, 2), scale=self.scale,
                                         attn_mask=self.fused_bias.to(q.dtype))
    return linear(self.proj, out.transpose(1, 2).reshape(b, n, self.dh))


def _mlp_forward(self, x: torch.Tensor) -> torch.Tensor:
    """TinyViT's MLP (norm, fc1, GELU, fc2; dropout is off in eval) with GELU fused."""
    return linear(self.fc2, linear(self.fc1, self.norm(x), gelu=True))


def _mbconv_forward(self, x: torch.Tensor) -> torch.Tensor:
    """MBConv (expand, depthwise, project, + input, GELU) in three oneDNN calls."""
    y = conv2d(_conv(self.conv1), x, gelu=True)
    y = conv2d(_conv(self.conv2), y, gelu=True)
    return conv2d(_conv(self.conv3), y, gelu=True, add=x)


def _patch_merging_forward(self, x: torch.Tensor) -> torch.Tensor:
    """PatchMerging with GELU fused; tokens are read as a ``channels_last`` map, no copy."""
    if x.ndim == 3:
        h, w = self.input_resolution
        x = x.view(len(x), h, w, -1).permute(0, 3, 1, 2)
    x = conv2d(_conv(self.conv1), x, gelu=True)
    x = conv2d(_conv(self.conv2), x, gelu=True)
    return conv2d(_conv(self.conv3), x).flatten(2).transpose(1, 2)


def _patch_embed_forward(self, x: torch.Tensor) -> torch.Tensor:
    """PatchEmbed (convolution, GELU, convolution) with the GELU fused."""
    first, _, second = self.seq
    return conv2d(_conv(second), conv2d(_conv(first), x, gelu=True))


def _fusable(m: nn.Module) -> object | None:
    """The fused forward for one of TinyViT's modules, or None to keep its own.

    Modules are recognised by class name and parts (LiteMedSAM and MobileSAM each ship
    their own copy of TinyViT's classes), and only where every activation is erf-GELU,
    the one oneDNN applies, and every batch norm is folded.
    """
    name = type(m).__name__
    if _is_tinyvit_attention(m):
        return _attention_forward
    if name == "Mlp" and is_erf_gelu(getattr(m, "act", None)) and hasattr(m, "norm"):
        return _mlp_forward
    if name == "MBConv" and all(is_erf_gelu(getattr(m, a, None))
                                for a in ("act1", "act2", "act3")) \
            and _folded(m.conv1, m.conv2, m.conv3):
        return _mbconv_forward
    if name == "PatchMerging" and is_erf_gelu(getattr(m, "act", None)) \
            and _folded(m.conv1, m.conv2, m.conv3):
        return _patch_merging_forward
    if name == "PatchEmbed" and len(getattr(m, "seq", ())) == 3 and is_erf_gelu(m.seq[1]) \
            and _folded(m.seq[0], m.seq[2]):
        return _patch_embed_forward
    return None


def fused_copy(encoder: nn.Module) -> nn.Module:
    """An inference copy of a TinyViT encoder: batch norms folded, ``channels_last``,
    GELUs and residual sums inside the layers before them, fused attention. Feed it
    ``channels_last`` input for the full effect."""
    fused = copy.deepcopy(encoder).eval()
    fold_batch_norms(fused)
    for m in fused.modules():
        forward = _fusable(m)
        if forward is _attention_forward:
            bias = m.attention_biases[:, m.attention_bias_idxs][None]
            m.register_buffer("fused_bias", bias.detach().clone(), persistent=False)
        if forward is not None:
            m.forward = forward.__get__(m)
    for p in fused.parameters():
        p.requires_grad_(False)
    return fused.to(memory_format=torch.channels_last)
