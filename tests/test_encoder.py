"""The default fused encoder path computes SAM's attention and MLPs, block by block.

The ``tiny`` backbone has a single global block; here a small ViT built by
``segment_anything``'s own builder has a windowed block (14 x 14 windows over the
64 x 64 grid, padded to 70 x 70) and a global one, with random (non-zero) relative
position tables, so every term of SAM's attention is exercised.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from segment_anything.build_sam import _build_sam

import selfprompt.models.encoder as encoder_module
from selfprompt.models.backbone import Backbone
from selfprompt.models.encoder import ImageEncoder


@pytest.fixture(scope="module")
def windowed_backbone() -> Backbone:
    torch.manual_seed(0)
    sam = _build_sam(32, 2, 2, [1], checkpoint=None).eval()
    with torch.no_grad():
        for name, p in sam.image_encoder.named_parameters():
            if "rel_pos" in name:            # zero at init: would hide a wrong bias
                p.normal_(0, 0.5)
    assert [b.window_size for b in sam.image_encoder.blocks] == [14, 0]
    return Backbone(sam, "test", Path("<random>"), "0" * 64, torch.device("cpu"))


@pytest.fixture(scope="module")
def image_batch() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return [torch.randint(0, 256, (3, 1024, 1024), dtype=torch.uint8, generator=g)
            for _ in range(2)]


def test_fused_path_matches_sams_code(windowed_backbone, image_batch):
    stock = ImageEncoder(windowed_backbone, batch_size=2, fused=False).encode(image_batch)
    fast = ImageEncoder(windowed_backbone, batch_size=2, fused=True)
    out = fast.encode(image_batch)
    assert out.shape == stock.shape == (2, 256, 64, 64)
    torch.testing.assert_close(out, stock, atol=1e-4, rtol=1e-4)


def test_mask_chunking_does_not_change_the_result(windowed_backbone, image_batch,
                                                  monkeypatch):
    fast = ImageEncoder(windowed_backbone, batch_size=2, fused=True)
    whole = fast.encode(image_batch)                       # the default chunk
    # slices of 3 query rows of the 64-row global grid and of 11 rows of the 14-row
    # windows: both end in a shorter slice
    monkeypatch.setattr(encoder_module, "MASK_CHUNK", 3 * 2 * 2 * 64 * 64 * 64)
    sliced = fast.encode(image_batch)
    torch.testing.assert_close(sliced, whole, atol=1e-5, rtol=1e-5)


def test_bias_in_products_matches_sams_code(windowed_backbone, image_batch, monkeypatch):
    """The GPU's attention route (the bias inside the products, no mask), run here on the
    CPU: windowed (14 x 14, 64 + 14 + 14 padded to 96) and global (64 + 64 + 64) blocks."""
    stock = ImageEncoder(windowed_backbone, batch_size=2, fused=False).encode(image_batch)
    monkeypatch.setattr(encoder_module, "BIAS_IN_PRODUCTS", ("cpu",))
    calls = []
    real = encoder_module.bias_in_products
    monkeypatch.setattr(encoder_module, "bias_in_products",
                        lambda *a: calls.append(a[0].shape) or real(*a))
    out = ImageEncoder(windowed_backbone, batch_size=2, fused=True).encode(image_batch)
    assert sorted(c[2] for c in calls) == [14 * 14, 64 * 64]   # both blocks took it
    torch.testing.assert_close(out, stock, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("H, W, d", [(5, 7, 16), (3, 3, 8)])
def test_bias_in_products_is_softmax_with_the_decomposed_bias(H, W, d):
    """Against the definition, on a grid that is not square and sizes that need padding."""
    g = torch.Generator().manual_seed(5)
    B, heads = 2, 3
    q, k, v = (torch.randn(B, heads, H * W, d, generator=g) for _ in range(3))
    rel_h = torch.randn(B, heads, H, W, H, generator=g)
    rel_w = torch.randn(B, heads, H, W, W, generator=g)
    bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(B, heads, H * W, H * W)
    want = torch.softmax(0.3 * q @ k.transpose(-1, -2) + bias, dim=-1) @ v
    got = encoder_module.bias_in_products(q, k, v, rel_h, rel_w, 0.3)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_fused_path_leaves_the_model_untouched(windowed_backbone, image_batch):
    fast = ImageEncoder(windowed_backbone, fused=True)
    fast.encode(image_batch[:1])
    attn = windowed_backbone.sam.image_encoder.blocks[1].attn
    assert "forward" not in vars(attn)                     # the patch is removed after use


def test_fused_path_covers_attention_and_mlp_blocks(windowed_backbone, image_batch):
    from segment_anything.modeling.common import MLPBlock

    fast = ImageEncoder(windowed_backbone, fused=True)
    routed = {type(m).__name__ for m, _ in fast._fused}
    assert routed == {"Attention", "MLPBlock"}
    fast.encode(image_batch[:1])
    mlps = [m for m in windowed_backbone.sam.image_encoder.modules() if isinstance(m, MLPBlock)]
    assert mlps and all("forward" not in vars(m) for m in mlps)
