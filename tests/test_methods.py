"""The methods as estimators (``selfprompt.methods``): one shape for all, clone works, each
answers what the pipeline computes for its variant, and every mask comes with a quality
score in [0, 1] read from SAM's own IoU prediction (or the classifier's confidence)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from selfprompt.datasets.reader import open_dataset
from selfprompt.decode import PromptDecoder
from selfprompt.embeddings import embed_dataset
from selfprompt.methods import METHODS, Prediction, Shots, make_method
from selfprompt.pipeline import fit_classifier, segment
from selfprompt.presets import get_preset
from selfprompt.methods.recipe import apply_recipe, choose_recipe
from selfprompt.strategies import quality

SHOTS, TEST = (0, 1, 2), 6
#: cheap settings where a method trains
QUICK = {"finetuned": {"epochs": 1}, "persam_f": {"epochs": 5}, "persam_f_aligned": {"epochs": 5}}


@pytest.fixture(scope="module")
def data(tiny_backbone, synthetic_dir, tmp_path_factory):
    ds = open_dataset(synthetic_dir)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path_factory.mktemp("cache"), progress=False)
    decoder = PromptDecoder(tiny_backbone)
    shots = Shots(emb.take(list(SHOTS)), [ds.mask(i, 128) for i in SHOTS], decoder, seed=42)
    return ds, emb, decoder, shots


def test_every_method_is_an_estimator_that_clones(data):
    _, emb, _, shots = data
    for name, cls in METHODS.items():
        est = make_method(name, **QUICK.get(name, {}))
        assert isinstance(est, cls)
        twin = clone(est)
        assert twin is not est and twin.get_params() == est.get_params()
        with pytest.raises(RuntimeError, match="not fitted"):
            twin.predict(emb[TEST], (100, 120))
        assert twin.fit(shots) is twin
        assert not hasattr(clone(twin), "n_shots_")       # clone: parameters, not the fit
        p = twin.predict(emb[TEST], (100, 120), seed=(42, 0, TEST))
        assert isinstance(p, Prediction) and p.mask.dtype == bool
        assert p.mask.shape == (100, 120) and 0.0 <= p.score <= 1.0, (name, p.score)


def test_unknown_names_say_what_exists(data):
    with pytest.raises(ValueError, match="unknown method 'sam2'.*self_prompt"):
        make_method("sam2")
    with pytest.raises(ValueError, match="unknown prompt 'gt_box'"):
        make_method("self_prompt", prompt="gt_box").fit(data[3])    # needs the truth
    with pytest.raises(ValueError, match="3 embeddings but 2 masks"):
        Shots(data[1].take([0, 1, 2]), data[3].masks[:2], data[2])


@pytest.mark.parametrize("prompt", ["linear", "point", "box", "point_box", "box_cc", "mask"])
def test_self_prompt_is_the_pipeline_for_its_variant(data, prompt):
    ds, emb, decoder, shots = data
    preset = get_preset("corrected")
    est = make_method("self_prompt", prompt=prompt).fit(shots)
    size, seed = ds.mask(TEST, 128).shape, (42, 0, TEST)
    clf = fit_classifier(shots.embeddings, shots.masks, preset, img_size=shots.img_size)
    seg = segment(clf, decoder, emb[TEST], size, preset, np.random.default_rng(list(seed)),
                  (prompt,), seed=seed)
    p = est.predict(emb[TEST], size, seed=seed)
    np.testing.assert_array_equal(p.mask, seg.masks[prompt])
    assert p.prompt == prompt and p.score == seg.quality[prompt]
    if prompt == "linear":                 # the classifier's mean confidence max(p, 1 - p)
        assert 0.5 <= p.score <= 1.0


def test_auto_is_its_recipe_applied(data):
    ds, emb, decoder, shots = data
    preset = get_preset("corrected")
    est = make_method("auto").fit(shots)
    recipe = choose_recipe(shots.embeddings, shots.masks, preset, decoder, seed=42)
    assert est.recipe_.as_dict() | {"seconds": 0} == recipe.as_dict() | {"seconds": 0}
    assert est.prompt_ == recipe.prompt and est.threshold_ == recipe.threshold
    clf = fit_classifier(shots.embeddings, shots.masks, preset, img_size=shots.img_size)
    size, seed = ds.mask(TEST, 128).shape, (42, 0, TEST)
    p = est.predict(emb[TEST], size, seed=seed)
    np.testing.assert_array_equal(
        p.mask, apply_recipe(recipe, clf, decoder, emb[TEST], size, preset, seed))
    assert p.prompt == recipe.prompt


def test_batched_decoding_gives_sams_own_iou_and_the_same_masks(data):
    """The quality score of a batched decode is SAM's predicted IoU as its own call gives
    it (up to rounding), and asking for it leaves the masks exactly as they were."""
    from selfprompt.prompts import make_prompts

    ds, emb, _, shots = data
    preset = get_preset("corrected")
    clf = fit_classifier(shots.embeddings, shots.masks, preset, img_size=shots.img_size)
    for i in (3, 4, 5, TEST):
        size = ds.mask(i, 128).shape
        from selfprompt.pipeline import coarse_mask

        prompts = make_prompts(coarse_mask(clf, emb[i], size, preset, shots.img_size), preset,
                               np.random.default_rng(i))
        batched, own = PromptDecoder(shots.decoder.backbone), PromptDecoder(
            shots.decoder.backbone, batched=False)
        for d in (batched, own):
            d.set_embedding(emb[i], size)
        plain = batched.variants(prompts)
        masks, iou = batched.variants(prompts, return_scores=True)
        _, own_iou = own.variants(prompts, return_scores=True)
        for v in ("point", "box", "point_box"):
            np.testing.assert_array_equal(masks[v], plain[v])
            assert iou[v] == pytest.approx(own_iou[v], abs=1e-4), v
        assert iou["linear"] is None


def test_quality_of_several_decodes():
    assert quality("box", []) == 0.0
    assert quality("box_refine", [(0.2, 10), (0.9, 30)]) == 0.9          # the mask kept
    assert quality("box_cc", [(0.2, 10), (0.9, 30)]) == pytest.approx((2 + 27) / 40)
