"""``selfprompt.SelfPrompt``: fit on one's own labelled images (paths or arrays), predict
the others with a quality score, save to one small file and load it again, checked
against the backbone's checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest

import selfprompt as sp
from selfprompt.assets.registry import CheckpointError
from selfprompt.datasets.reader import read_image, read_mask

FIT, HELD = slice(0, 3), (5, 7)


@pytest.fixture(scope="module")
def pairs(synthetic_dir):
    images = sorted((synthetic_dir / "images").iterdir())
    masks = sorted((synthetic_dir / "masks").iterdir())
    return images, masks


def _model(tiny_checkpoint, tmp_path, **kw):
    return sp.SelfPrompt(backbone="tiny", checkpoint=tiny_checkpoint, cache=tmp_path / "cache",
                         **kw)


@pytest.mark.parametrize("prompt", ["auto", "box"])
def test_fit_predict_save_load(pairs, tiny_checkpoint, tmp_path, prompt):
    images, masks = pairs
    model = _model(tiny_checkpoint, tmp_path, prompt=prompt).fit(images[FIT], masks[FIT])
    assert model.n_shots_ == 3 and model.backbone_.model_type == "tiny"
    assert model.prompt_ == (model.method_.recipe_.prompt if prompt == "auto" else prompt)
    preds = [model.predict(images[i]) for i in HELD]
    for i, p in zip(HELD, preds):
        assert p.mask.shape == read_mask(masks[i]).shape and p.mask.dtype == bool
        assert 0.0 <= p.score <= 1.0 and p.prompt == model.prompt_
    path = model.save(tmp_path / "model.npz")
    assert path.stat().st_size < 64 * 1024                        # weights, not a backbone
    with np.load(path, allow_pickle=False) as z:                  # no pickle inside
        settings = json.loads(str(z["settings"]))
    assert settings["checkpoint_sha256"] == model.backbone_.model_hash
    assert ("recipe" in settings) == (prompt == "auto")
    again = sp.SelfPrompt.load(path, checkpoint=tiny_checkpoint, cache=tmp_path / "cache")
    assert again.prompt_ == model.prompt_ and again.n_shots_ == 3
    for i, p in zip(HELD, preds):
        q = again.predict(images[i])
        np.testing.assert_array_equal(q.mask, p.mask)
        assert q.score == p.score and q.prompt == p.prompt


def test_arrays_embeddings_and_paths_agree(pairs, tiny_checkpoint, tmp_path):
    images, masks = pairs
    by_path = _model(tiny_checkpoint, tmp_path, prompt="point_box").fit(images[FIT], masks[FIT])
    arrays = _model(tiny_checkpoint, tmp_path, prompt="point_box").fit(
        [read_image(p) for p in images[FIT]], [read_mask(p) * 255 for p in masks[FIT]])
    embedded = _model(tiny_checkpoint, tmp_path, prompt="point_box").fit_embeddings(
        [by_path.embed(p) for p in images[FIT]], [read_mask(p) for p in masks[FIT]])
    i = HELD[0]
    want = by_path.predict(images[i])
    for model in (arrays, embedded):
        got = model.predict(read_image(images[i]))
        np.testing.assert_array_equal(got.mask, want.mask)
        assert got.score == pytest.approx(want.score, abs=1e-6)
    e = by_path.embed(images[i])
    got = by_path.predict_embedding(e, read_mask(masks[i]).shape)
    np.testing.assert_array_equal(got.mask, want.mask)
    assert e.shape == (256, 64, 64) and e.dtype == np.float32


def test_bad_input_is_one_clear_line_before_any_encoding(pairs, tiny_checkpoint, tmp_path):
    images, masks = pairs
    model = _model(tiny_checkpoint, tmp_path)
    small = np.zeros((10, 10), np.uint8)
    with pytest.raises(ValueError, match=rf"{images[1].name}: the mask is 10x10 but its image"):
        model.fit(images[:2], [masks[0], small])
    assert not list((tmp_path / "cache").rglob("*.npy"))          # nothing was encoded
    with pytest.raises(ValueError, match="3 images but 2 masks"):
        model.fit(images[:3], masks[:2])
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(images[0])
    with pytest.raises(FileNotFoundError, match="nothing.png: cannot read the image"):
        model.fit([tmp_path / "nothing.png"], [small])
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.npz: not a model SelfPrompt.save wrote"):
        sp.SelfPrompt.load(tmp_path / "junk.npz")


def test_a_model_loads_only_on_its_own_checkpoint(pairs, tiny_checkpoint, tmp_path):
    from selfprompt.models.backbone import make_tiny_checkpoint

    images, masks = pairs
    model = _model(tiny_checkpoint, tmp_path, prompt="box").fit(images[FIT], masks[FIT])
    path = model.save(tmp_path / "m.npz")
    other = make_tiny_checkpoint(tmp_path / "other.pth", seed=1)
    with pytest.raises(CheckpointError) as err:
        sp.SelfPrompt.load(path, checkpoint=other)
    line = str(err.value)
    assert "\n" not in line and model.backbone_.model_hash in line
    assert sp.SelfPrompt.load(path, checkpoint=tiny_checkpoint).prompt_ == "box"


@pytest.mark.slow
def test_on_real_polyps_the_api_is_the_method(kvasir_dir, tmp_path):
    """LiteMedSAM on Kvasir-SEG: the API's prediction is what the method's estimator
    gives from the cached embeddings, it survives save and load, and it segments."""
    from selfprompt.decode import PromptDecoder
    from selfprompt.methods import Shots, make_method
    from selfprompt.metrics import dice

    images = sorted((kvasir_dir / "images").iterdir())[:8]
    masks = [kvasir_dir / "masks" / p.name for p in images]
    model = sp.SelfPrompt(prompt="box").fit(images[:5], masks[:5])
    shots = Shots([model.embed(p) for p in images[:5]], [read_mask(m) for m in masks[:5]],
                  PromptDecoder(model.backbone_), seed=42)
    method = make_method("self_prompt", prompt="box").fit(shots)
    again = sp.SelfPrompt.load(model.save(tmp_path / "polyps.npz"))
    scores = []
    for image, mask in zip(images[5:], masks[5:]):
        p, truth = model.predict(image), read_mask(mask)
        q = method.predict(model.embed(image), truth.shape, seed=(42,))
        np.testing.assert_array_equal(p.mask, q.mask)
        np.testing.assert_array_equal(again.predict(image).mask, p.mask)
        scores.append(dice(p.mask, truth))
    assert np.mean(scores) > 0.5, scores
