"""Mask-decoder fine-tuning: it learns, it is seeded, it leaves the original SAM alone."""
import numpy as np
import pytest
import torch

from selfprompt.methods.finetune import DecoderFineTuner, dice_bce, lowres_target


def test_the_target_lies_in_sams_padded_low_resolution_frame():
    mask = np.zeros((300, 600), np.uint8)                     # wide: content is 128 rows
    mask[:, :300] = 255                                       # the left half
    t = lowres_target(mask)
    assert t.shape == (256, 256) and t.dtype == np.float32
    assert t[:128, :128].all() and not t[:128, 128:].any() and not t[128:].any()


def test_loss_is_small_for_a_confident_right_answer_and_large_for_a_wrong_one():
    target = torch.zeros(1, 1, 8, 8)
    target[..., :4] = 1
    right, wrong = 20 * (2 * target - 1), -20 * (2 * target - 1)
    assert dice_bce(right, target) < 0.01 < 1.5 < dice_bce(wrong, target)


@pytest.fixture(scope="module")
def shots(tiny_backbone, synthetic_dir):
    from selfprompt.datasets.reader import open_dataset
    from selfprompt.models.encoder import ImageEncoder

    ds = open_dataset(synthetic_dir)
    encoder = ImageEncoder(tiny_backbone)
    features = [encoder(ds.image(i)) for i in range(2)]
    return features, [ds.mask(i) for i in range(2)]


def test_fine_tuning_lowers_the_loss_and_leaves_the_backbone_unchanged(tiny_backbone, shots):
    before = {k: v.clone() for k, v in tiny_backbone.sam.mask_decoder.state_dict().items()}
    tuner = DecoderFineTuner(epochs=5, lr=1e-3, seed=0).fit(tiny_backbone, *shots)
    assert len(tuner.losses_) == 5 and tuner.losses_[-1] < 0.7 * tuner.losses_[0]
    after = tiny_backbone.sam.mask_decoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    changed = [k for k in before if not torch.equal(before[k], tuner.decoder_state_[k])]
    assert changed                                            # the copy did learn
    tuned = tuner.backbone(tiny_backbone)
    assert tuned.sam.image_encoder is tiny_backbone.sam.image_encoder   # shared, not copied
    assert tuned.sam.mask_decoder is not tiny_backbone.sam.mask_decoder


def test_same_seed_same_decoder_other_seed_another(tiny_backbone, shots):
    a = DecoderFineTuner(epochs=1, seed=3).fit(tiny_backbone, *shots).decoder_state_
    b = DecoderFineTuner(epochs=1, seed=3).fit(tiny_backbone, *shots).decoder_state_
    c = DecoderFineTuner(epochs=1, seed=4).fit(tiny_backbone, *shots).decoder_state_
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_no_lesion_in_any_shot_is_a_clear_error(tiny_backbone, shots):
    features, masks = shots
    with pytest.raises(ValueError, match="every training mask is empty"):
        DecoderFineTuner(epochs=1).fit(tiny_backbone, features, [0 * m for m in masks])
    with pytest.raises(RuntimeError, match="fit the fine-tuner first"):
        DecoderFineTuner().decoder(tiny_backbone)
