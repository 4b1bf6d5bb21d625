"""The fused TinyViT encoder (``selfprompt.models.tinyvit``): the same function as LiteMedSAM's
own encoder to the last bits, a copy that leaves the shared model untouched, cached
apart, and chosen only when asked for (the reference's encoder stays the default)."""
import warnings

import numpy as np
import pytest
import torch

from selfprompt.models.backbone import load_backbone
from selfprompt.embeddings import EmbeddingCache
from selfprompt.models.encoder import ImageEncoder
from selfprompt.models.tinyvit import fold_batch_norms, fused_copy, has_tinyvit


@pytest.fixture(scope="module")
def lite():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("medsam_lite", device="cpu")


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    img[50:150, 80:220] = (200, 90, 80)                 # a lesion-like patch
    return img


def test_fused_embedding_equals_the_exact_one_to_rounding(lite, image):
    exact = ImageEncoder(lite)(image)
    fused = ImageEncoder(lite, fused=True)(image)
    scale = np.abs(exact).max()
    assert np.abs(fused - exact).max() <= 2e-5 * scale
    # below the float16 cache's own rounding (2.4e-4 at 0.5): cached, most values are
    # the same; the others lie near a rounding boundary (measured: 2 %)
    assert np.abs(fused - exact).max() < np.spacing(np.float16(scale)) / 8
    assert (exact.astype(np.float16) != fused.astype(np.float16)).mean() < 0.05


def test_tinyvit_stays_exact_by_default_and_fused_is_cached_apart(lite, tmp_path):
    assert has_tinyvit(lite.sam.image_encoder)
    default, fused = ImageEncoder(lite), ImageEncoder(lite, fused=True)
    assert default.numerics == "" and not default.fused
    assert fused.numerics == "fused" and fused.fused
    a = EmbeddingCache.for_backbone(tmp_path, lite, encoder=default).dir
    b = EmbeddingCache.for_backbone(tmp_path, lite, encoder=fused).dir
    assert a != b and b.name.endswith("-fused")


def test_the_shared_model_is_left_untouched(lite, image):
    """The decoder shares the backbone's Sam: the fused copy must not change it."""
    before = ImageEncoder(lite)(image)
    state = {k: v.clone() for k, v in lite.sam.image_encoder.state_dict().items()}
    ImageEncoder(lite, fused=True)(image)
    after = lite.sam.image_encoder.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    np.testing.assert_array_equal(ImageEncoder(lite)(image), before)


def test_every_batch_norm_after_a_convolution_is_folded(lite):
    fused = fused_copy(lite.sam.image_encoder)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    seq = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    seq[1].running_mean.uniform_(-1, 1)
    seq[1].running_var.uniform_(0.5, 2)
    x = torch.randn(1, 3, 8, 8)
    want = seq(x)
    assert fold_batch_norms(seq) == 1 and isinstance(seq[1], torch.nn.Identity)
    torch.testing.assert_close(seq(x), want, atol=1e-5, rtol=1e-5)


def test_sams_vits_have_no_tinyvit(tiny_backbone):
    assert not has_tinyvit(tiny_backbone.sam.image_encoder)
    assert ImageEncoder(tiny_backbone).fused  # SAM's ViTs: fused by default, as before


def test_every_kind_of_tinyvit_module_runs_fused(lite):
    """Each of TinyViT's module kinds gets its fused forward; the copy's attention bias
    is 4-D (with a 3-D one, PyTorch's CPU attention falls back to its unfused path)."""
    fused = fused_copy(lite.sam.image_encoder)
    routed = {type(m).__name__ for m in fused.modules() if "forward" in vars(m)}
    assert routed == {"PatchEmbed", "MBConv", "PatchMerging", "Attention", "Mlp"}
    attention = [m for m in fused.modules() if type(m).__name__ == "Attention"]
    for m in attention:
        n = m.attention_bias_idxs.shape[0]
        assert m.fused_bias.shape == (1, m.num_heads, n, n)
        assert torch.equal(m.fused_bias[0], m.attention_biases[:, m.attention_bias_idxs])
    assert not any("forward" in vars(m) for m in lite.sam.image_encoder.modules())


def test_vit_t_fused_equals_its_exact_encoder():
    """MobileSAM ships its own copy of TinyViT's classes (a strided patch embedding, no
    LiteMedSAM changes): the same fused forwards apply. Random weights, with batch-norm
    statistics away from their initial values so that folding them is exercised."""
    from pathlib import Path

    from selfprompt.models.backbone import Backbone, build

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sam = build("vit_t")
    with torch.no_grad():
        for m in sam.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
    backbone = Backbone(sam, "vit_t", Path("<random>"), "0" * 64, torch.device("cpu"))
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    fast = ImageEncoder(backbone, fused=True)
    assert {type(m).__name__ for m in fast._encoder.modules() if "forward" in vars(m)} == {
        "PatchEmbed", "MBConv", "PatchMerging", "Attention", "Mlp"}
    exact = ImageEncoder(backbone)(image)
    assert np.abs(fast(image) - exact).max() <= 2e-5 * np.abs(exact).max()


def test_fused_copy_without_onednn_equals_the_exact_encoder(lite, image, monkeypatch):
    """Where oneDNN's fused kernels do not run (a GPU, autocast, a build without them) the
    fused copy takes the plain functions; it must still be the same encoder."""
    import selfprompt.models.onednn as onednn

    exact = ImageEncoder(lite)(image)
    monkeypatch.setattr(onednn, "_HAVE_CONV", False)
    monkeypatch.setattr(onednn, "_HAVE_LINEAR", False)
    plain = ImageEncoder(lite, fused=True)(image)
    assert np.abs(plain - exact).max() <= 2e-5 * np.abs(exact).max()
