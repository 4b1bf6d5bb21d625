"""``vit_t`` (MobileSAM): a pinned dependency with the same interface as SAM's backbones."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


def test_vit_t_missing_says_how_to_add_it(monkeypatch):
    import sys

    from selfprompt.models.backbone import CheckpointError, build

    monkeypatch.setitem(sys.modules, "mobile_sam", None)  # import fails as if absent
    with pytest.raises(CheckpointError, match="pip install mobilesam-mirror==1.0.0 timm"):
        build("vit_t")


def test_vit_t_encodes_and_decodes():
    from selfprompt.models.backbone import Backbone, _held_type, build
    from selfprompt.decode import PromptDecoder
    from selfprompt.models.encoder import ImageEncoder

    torch.manual_seed(0)
    sam = build("vit_t")
    assert _held_type(sam.state_dict()).startswith("vit_t")
    backbone = Backbone(sam, "vit_t", Path("<random>"), "0" * 64, torch.device("cpu"))
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    encoder = ImageEncoder(backbone)
    assert not encoder.fused and encoder.numerics == ""  # TinyViT: nothing to fuse
    features = encoder(image)
    assert features.shape == (256, 64, 64) and features.dtype == np.float32
    assert np.isfinite(features).all()
    decoder = PromptDecoder(backbone)
    decoder.set_embedding(features, image.shape[:2])
    mask = decoder.predict(box=np.array([10, 10, 90, 70]))
    assert mask.shape == (96, 128) and mask.dtype == bool


def test_vit_t_checkpoint_in_vit_b_is_named(tmp_path):
    from selfprompt.models.backbone import _held_type, build

    state = build("vit_t").state_dict()
    assert _held_type(state) == "vit_t (MobileSAM)"
