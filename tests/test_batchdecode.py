"""Batched decoding (``selfprompt.batchdecode``): an image's prompts in one decoder call
give what SAM's own calls give, one prompt at a time; the masked fillers change nothing."""
import warnings

import numpy as np
import pytest
import torch

from selfprompt.backbone import load_backbone
from selfprompt.batchdecode import decode_batch
from selfprompt.decode import PromptDecoder
from selfprompt.prompts import Prompts

H, W = 300, 420
#: point alone (SAM pads it with its own "not a point" token), box, point + box,
#: two points with a negative one, and a point with a box elsewhere
PROMPTS = [
    (np.array([[150.0, 120.0]]), np.array([1]), None),
    (None, None, np.array([90.0, 60.0, 260.0, 210.0])),
    (np.array([[150.0, 120.0]]), np.array([1]), np.array([90.0, 60.0, 260.0, 210.0])),
    (np.array([[150.0, 120.0], [400.0, 20.0]]), np.array([1, 0]), None),
    (np.array([[30.0, 250.0]]), np.array([1]), np.array([10.0, 200.0, 120.0, 299.0])),
]


def _decoder(backbone, seed=0):
    d = PromptDecoder(backbone, batched=False)
    g = torch.Generator().manual_seed(seed)
    d.set_embedding(torch.randn((256, 64, 64), generator=g).numpy() * 0.5, (H, W))
    return d


@pytest.fixture(scope="module", params=["tiny", "medsam_lite"])
def backbone(request, tiny_checkpoint):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if request.param == "tiny":
            return load_backbone("tiny", tiny_checkpoint, device="cpu")
        return load_backbone("medsam_lite", device="cpu")


def test_one_call_equals_sams_own_calls(backbone):
    d = _decoder(backbone)
    masks, logits = decode_batch(d.predictor, PROMPTS, return_logits=True)
    for (points, labels, box), mask, low in zip(PROMPTS, masks, logits):
        own, own_low = d.predict(points, labels, box, return_logits=True)
        assert own.shape == mask.shape == (H, W)
        np.testing.assert_allclose(low, own_low, atol=2e-4, rtol=1e-4)
        # a pixel may flip only where SAM's own logit is within rounding of the threshold
        flipped = own != mask
        assert flipped.mean() < 1e-4, f"{flipped.sum()} pixels differ"


def test_fillers_are_never_attended_to(backbone):
    """A short prompt decoded alone and beside longer ones (filled up with masked
    tokens) gives the same logits."""
    d = _decoder(backbone, seed=1)
    alone = decode_batch(d.predictor, PROMPTS[:1], return_logits=True)[1][0]
    beside = decode_batch(d.predictor, [PROMPTS[2], PROMPTS[0], PROMPTS[3]],
                          return_logits=True)[1][1]
    np.testing.assert_allclose(beside, alone, atol=2e-4, rtol=1e-4)


def test_variants_batched_or_not_give_the_same_masks(backbone):
    d = _decoder(backbone, seed=2)
    cleaned = np.zeros((H, W), np.uint8)
    cleaned[60:210, 90:260] = 1
    prompts = Prompts(PROMPTS[2][0], PROMPTS[2][1], PROMPTS[2][2], cleaned, False)
    own = d.variants(prompts)
    d.batched = True
    batched = d.variants(prompts)
    assert list(own) == list(batched) == ["linear", "point", "box", "point_box"]
    for v in own:
        assert (own[v] != batched[v]).mean() < 1e-4, v
    empty = Prompts(None, None, None, np.zeros((H, W), np.uint8), True)
    assert not any(m.any() for k, m in d.variants(empty).items())


def test_cpu_decodes_one_prompt_at_a_time_by_default(backbone):
    """CPU results stay SAM's own calls, bit for bit (the committed reference)."""
    assert PromptDecoder(backbone).batched is False


def test_a_prompt_without_point_or_box_is_refused(backbone):
    with pytest.raises(ValueError, match="needs a point or a box"):
        decode_batch(_decoder(backbone).predictor, [(None, None, None)])
