"""Batched decoding (``selfprompt.models.batchdecode``): an image's prompts in one decoder call
give what SAM's own calls give, one prompt at a time; the masked fillers change nothing;
each reorganised piece equals the SAM module it stands for."""
import warnings

import numpy as np
import pytest
import torch

from selfprompt.models.backbone import load_backbone
from selfprompt.models import batchdecode
from selfprompt.models.batchdecode import decode_batch
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


@pytest.mark.parametrize("prompts", [PROMPTS, PROMPTS[:1], PROMPTS[1:3], PROMPTS[:3]],
                         ids=["five", "one", "two", "three"])
def test_one_call_equals_sams_own_calls(backbone, prompts):
    """One prompt, two and more: the token-to-image attention takes its other route
    (projecting the shared image once) from three prompts up."""
    d = _decoder(backbone)
    masks, logits = decode_batch(d.predictor, prompts, return_logits=True)
    assert len(masks) == len(logits) == len(prompts)
    for (points, labels, box), mask, low in zip(prompts, masks, logits):
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


def test_batched_by_default_and_sams_own_calls_on_request(backbone):
    d = _decoder(backbone, seed=3)
    assert PromptDecoder(backbone).batched is True
    cleaned = np.zeros((H, W), np.uint8)
    cleaned[60:210, 90:260] = 1
    prompts = Prompts(PROMPTS[2][0], PROMPTS[2][1], PROMPTS[2][2], cleaned, False)
    own = d.variants(prompts)                                    # batched=False: SAM's calls
    for v, ask in (("point", PROMPTS[0]), ("box", PROMPTS[1]), ("point_box", PROMPTS[2])):
        assert np.array_equal(own[v], d.predictor.predict(
            ask[0], ask[1], None if ask[2] is None else ask[2][None],
            multimask_output=False)[0][0]), v


# --- each reorganised piece against the SAM module it replaces (random inputs) ---

def _close(a, b):
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("image_batch, b, t", [(1, 3, 8), (1, 1, 8), (3, 3, 8), (3, 3, 1)],
                         ids=["shared-projected", "one-prompt", "per-prompt", "mask-token"])
def test_token_to_image_routes_equal_sams_attention(backbone, image_batch, b, t):
    layer = backbone.sam.mask_decoder.transformer.final_attn_token_to_image
    g = torch.Generator().manual_seed(4)
    q = torch.randn((b, t, 256), generator=g)
    image = torch.randn((image_batch, 4096, 256), generator=g)
    image_k = image + torch.randn((1, 4096, 256), generator=g)
    with torch.no_grad():
        ours = batchdecode._tokens_to_image(layer, q, image_k, image)
        sams = layer(q=q, k=image_k.expand(b, -1, -1), v=image.expand(b, -1, -1))
    _close(ours, sams)


@pytest.mark.parametrize("image_batch, b, t", [(1, 2, 7), (1, 3, 8), (3, 3, 8), (2, 2, 16)],
                         ids=["shared-token-side", "shared-projected", "per-prompt",
                              "sams-order"])
def test_image_to_token_attention_equals_sams_with_fillers_masked(backbone, image_batch, b, t):
    layer = backbone.sam.mask_decoder.transformer.layers[1].cross_attn_image_to_token
    g = torch.Generator().manual_seed(5)
    image = torch.randn((image_batch, 4096, 256), generator=g)
    tokens = torch.randn((b, t, 256), generator=g)
    bias = torch.zeros((b, t))
    bias[0, 5:] = float("-inf")                  # prompt 0 has 5 real tokens, the rest fillers
    with torch.no_grad():
        ours = batchdecode._image_to_tokens(layer, image, tokens, tokens, bias)
        full = layer(q=image.expand(b, -1, -1), k=tokens, v=tokens)
        short = layer(q=image[:1], k=tokens[:1, :5], v=tokens[:1, :5])
    _close(ours[1:], full[1:])
    _close(ours[:1], short)


def test_per_cell_upscaling_equals_sams_transposed_convolutions(backbone):
    dec = backbone.sam.mask_decoder
    g = torch.Generator().manual_seed(6)
    image = torch.randn((2, 4096, 256), generator=g)
    hyper = torch.randn((2, dec.output_upscaling[3].weight.shape[1]), generator=g)
    with torch.no_grad():
        ours = batchdecode._low_res_logits(dec, image, hyper, 64, 64)
        up = dec.output_upscaling(image.transpose(1, 2).reshape(2, 256, 64, 64))
        sams = (hyper[:, None] @ up.flatten(2)).reshape(2, 1, 256, 256)
    assert ours.shape == (2, 1, 256, 256)
    _close(ours, sams)


def test_a_prompt_without_point_or_box_is_refused(backbone):
    with pytest.raises(ValueError, match="needs a point or a box"):
        decode_batch(_decoder(backbone).predictor, [(None, None, None)])
