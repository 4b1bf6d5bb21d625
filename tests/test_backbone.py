"""Checkpoints: tiny built from a seed; wrong, truncated or missing files get clear errors."""
import warnings

import pytest
import torch

from selfprompt.models.backbone import CheckpointError, load_backbone, make_tiny_checkpoint


def load(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone(*args, **kw)


def test_tiny_is_deterministic_in_its_seed(tmp_path, tiny_backbone):
    a = make_tiny_checkpoint(tmp_path / "a.pth", seed=0)
    b = make_tiny_checkpoint(tmp_path / "b.pth", seed=1)
    ba, bb = load("tiny", a, device="cpu"), load("tiny", b, device="cpu")
    assert ba.model_hash == tiny_backbone.model_hash            # same seed, same weights
    assert ba.model_hash != bb.model_hash
    wa = ba.sam.image_encoder.patch_embed.proj.weight
    assert torch.equal(wa, tiny_backbone.sam.image_encoder.patch_embed.proj.weight)


def test_tiny_warns_that_its_masks_mean_nothing(tiny_checkpoint):
    with pytest.warns(UserWarning, match="RANDOM weights"):
        load_backbone("tiny", tiny_checkpoint, device="cpu")


def test_checkpoint_of_another_model_type(tiny_checkpoint):
    with pytest.raises(CheckpointError) as err:
        load("vit_b", tiny_checkpoint, device="cpu")
    msg = str(err.value)
    assert str(tiny_checkpoint) in msg and "holds tiny" in msg and "'vit_b' was asked" in msg


def test_truncated_checkpoint_never_reaches_unpickling(tmp_path, tiny_checkpoint):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint") as err:
        load("tiny", cut, device="cpu")
    assert "Delete it and fetch it again" in str(err.value)


def test_missing_checkpoint_says_how_to_get_it(tmp_path):
    from selfprompt.assets.download import AssetError

    with pytest.raises(AssetError, match="make checkpoints"):
        load("vit_b", tmp_path / "sam_vit_b_01ec64.pth", device="cpu")


def test_unknown_model_type():
    with pytest.raises(CheckpointError, match="unknown model type"):
        load("vit_x", "whatever.pth", device="cpu")
