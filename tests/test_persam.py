"""PerSAM and PerSAM-F (selfprompt.methods.persam): its prior finds a known target, its fit sees
only the shots, its decoder forward is SAM's when unhooked and the authors' when
hooked, and its variants are scored through the protocol beside self-prompting."""
import csv
import json

import cv2
import numpy as np
import pytest
import torch

from selfprompt.methods import persam as ps
from selfprompt.datasets.reader import open_dataset
from selfprompt.decode import PromptDecoder
from selfprompt.embeddings import embed_dataset
from selfprompt.evaluation.protocol import Experiment
from selfprompt.frame import input_size
from selfprompt.methods.persam import PerSAM, PerSAMF, shot_cells
from selfprompt.models import guided
from selfprompt.models.guided import decode, guided_decode
from selfprompt.presets import PRESETS
from selfprompt.strategies import run_strategies

SIZE = (300, 600)       # non-square: with a 1024 frame the content is cell rows 0..31
CELL = 600 / 64         # image pixels per cell side (9.375)


def _features(rng, blocks):
    """Unit-noise cells, with ``(rows, cols, vector)`` blocks set to (near) a vector."""
    f = rng.normal(0, 1, (256, 64, 64)).astype(np.float32)
    for rows, cols, v in blocks:
        f[:, rows, cols] = v[:, None, None] + 0.05 * rng.normal(
            0, 1, (256, rows.stop - rows.start, cols.stop - cols.start))
    return f


def _cells_mask(rows, cols, size=SIZE):
    """The image-size mask covering exactly those cells (frame 1024, image 300 x 600)."""
    m = np.zeros(size, np.uint8)
    m[round(rows.start * CELL):round(rows.stop * CELL),
      round(cols.start * CELL):round(cols.stop * CELL)] = 1
    return m


def test_the_shot_mask_lands_on_the_cells_of_the_padded_frame():
    rows, cols = slice(4, 9), slice(30, 41)
    cells = shot_cells(_cells_mask(rows, cols), 1024)
    expect = np.zeros((64, 64), bool)
    expect[rows, cols] = True
    assert (cells == expect).all()
    tiny = np.zeros(SIZE, np.uint8)
    tiny[50:53, 100:103] = 1                   # no cell half lesion: the touched cell(s)
    assert 1 <= shot_cells(tiny, 1024).sum() <= 4


def _hand_mask():
    """A 300 x 600 image (frame 1024: 9.375 image pixels a cell, content in cell rows
    0..31): a block over image rows and columns 28..65, and a band 4 pixels high (rows
    40..43) from column 66 to 159. Every edge lies 4 pixels or more from a cell centre
    ((i + 0.5) * 9.375)."""
    m = np.zeros(SIZE, np.uint8)
    m[28:66, 28:66] = 1
    m[40:44, 66:160] = 1
    return m


def test_the_authors_mark_the_cells_whose_centre_the_lesion_covers():
    """By hand: the block covers the centres of cells 3..6 (32.8 .. 60.9; 70.3 is out),
    and fills at least half of them (cell 3 is 28.1 .. 37.5); the band covers the centres
    of row 4 (42.2) in columns 7..16 (70.3 .. 154.7) but fills 4 / 9.375 of each: the
    authors mark them, the aligned labels (half the cell) do not. Both lie in the padded
    frame (rows from the top, not stretched over 64 rows)."""
    block = np.zeros((64, 64), bool)
    block[3:7, 3:7] = True
    band = block.copy()
    band[4, 7:17] = True
    assert (shot_cells(_hand_mask(), 1024) == band).all()             # the default
    assert (ps.cells_authors(_hand_mask(), 1024) == band).all()
    assert (shot_cells(_hand_mask(), 1024, "aligned") == block).all()
    with pytest.raises(ValueError, match="cells must be one of"):
        shot_cells(_hand_mask(), 1024, "stretched")


def test_the_authors_cells_are_their_code_s():
    """Their steps on random blobs of several image shapes, rebuilt here from torchvision
    and torch as their predictor runs them (an RGB mask of 0 or 255 through SAM's
    ResizeLongestSide, normalised by SAM's pixel mean and spread, zero-padded, resized to
    64 x 64, red channel > 0)."""
    from torchvision.transforms.functional import resize, to_pil_image

    rng = np.random.default_rng(0)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)
    for size, img_size in (((300, 600), 1024), ((531, 417), 1024), ((300, 600), 256)):
        blobs = cv2.GaussianBlur(rng.normal(0, 1, size), (0, 0), 12)
        mask = blobs > np.quantile(blobs, 0.8)
        rgb = np.repeat(np.where(mask, 255, 0).astype(np.uint8)[..., None], 3, axis=2)
        h, w = input_size(*size, img_size)
        x = torch.as_tensor(np.array(resize(to_pil_image(rgb), [h, w]))).permute(2, 0, 1)
        x = torch.nn.functional.pad((x - mean) / std, (0, img_size - w, 0, img_size - h))
        theirs = torch.nn.functional.interpolate(x[None], size=(64, 64), mode="bilinear")
        theirs = (theirs.squeeze()[0] > 0).numpy()
        assert theirs.any() and (ps.cells_authors(mask, img_size) == theirs).all()


def test_the_defaults_are_the_authors_form():
    from selfprompt.methods import METHODS
    from selfprompt.strategies import NEEDS_PERSAM, STRATEGIES

    model = PerSAM()
    assert (model.bias_frame, model.cells, model.guidance) == ("stretched", "authors", True)
    assert PerSAMF().cells == "authors" and not PerSAMF().guidance
    forms = {n: METHODS[n]().get_params() for n in NEEDS_PERSAM}
    assert forms["persam"] == {"bias_frame": "stretched", "cells": "authors", "guidance": True,
                               "refine": True}
    assert forms["persam_aligned"] == {**forms["persam"], "bias_frame": "aligned",
                                       "cells": "aligned"}
    assert forms["persam_noguide"] == {**forms["persam"], "guidance": False}
    assert forms["persam_f"] == {"epochs": 1000, "lr": 1e-3, "refine": True, "cells": "authors"}
    assert forms["persam_f_aligned"] == {**forms["persam_f"], "cells": "aligned"}
    assert all(n in STRATEGIES for n in NEEDS_PERSAM)
    with pytest.raises(ValueError, match="bias_frame must be one of"):
        PerSAM(bias_frame="padded")


def test_the_prior_points_at_the_target_and_away_from_it():
    rng = np.random.default_rng(0)
    v = rng.normal(0, 1, 256).astype(np.float32)
    shot = _features(rng, [(slice(3, 9), slice(5, 12), v)])
    model = PerSAM().fit([shot], [_cells_mask(slice(3, 9), slice(5, 12))], img_size=1024)
    assert model.n_shots_ == 1
    assert model.target_ @ (v / np.linalg.norm(v)) > 0.999
    # test image: the target at cell rows 18..25, cols 40..49; its opposite elsewhere
    test = _features(rng, [(slice(18, 26), slice(40, 50), v), (slice(2, 6), slice(2, 6), -v)])
    prior = model.location_prior(test, SIZE)
    assert prior.shape == SIZE
    (px, py), (nx, ny) = model.points(prior)[0]
    assert 18 * CELL <= py < 26 * CELL and 40 * CELL <= px < 50 * CELL
    assert 2 * CELL <= ny < 6 * CELL and 2 * CELL <= nx < 6 * CELL   # outside the target
    aligned = PerSAM(bias_frame="aligned").fit(
        [shot], [_cells_mask(slice(3, 9), slice(5, 12))], 1024).attention_bias(test, prior)
    assert aligned.shape == (64, 64) and aligned[20, 45] > 0.9 and aligned[4, 4] < 0.1
    # the authors' stretched bias (the default) puts the target lower: image rows span
    # all 64 cells
    stretched = model.attention_bias(test, prior)
    assert stretched[44, 45] > 0.9 and stretched[20, 45] < 0.7   # background: ~sigmoid(0)


def test_fit_uses_the_shots_given_each_counted_once():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, (2, 256)).astype(np.float32)
    big, small = (slice(2, 20), slice(2, 30)), (slice(25, 28), slice(50, 53))
    fa = _features(rng, [(*big, a)])
    fb = _features(rng, [(*small, b)])
    fc = _features(rng, [(*small, -a)])          # not a shot: must play no part
    masks = [_cells_mask(*big), _cells_mask(*small)]
    model = PerSAM().fit([fa, fb], masks, 1024)
    assert np.allclose(model.shot_targets_, [a, b], atol=0.1)
    assert np.allclose(model.target_embedding_, (a + b) / 2, atol=0.1)
    model_c = PerSAM().fit([fa, fc], masks, 1024)
    assert not np.allclose(model_c.target_, model.target_, atol=0.1)
    f = PerSAMF().__class__._pool(fa.reshape(256, -1)[:, shot_cells(masks[0]).ravel()].T)
    assert np.allclose(f, (fa.reshape(256, -1)[:, shot_cells(masks[0]).ravel()].max(1)
                           + a) / 2, atol=0.05)
    empty = np.zeros(SIZE, np.uint8)
    assert PerSAM().fit([fc, fa], [empty, masks[0]], 1024).shots_used_ == [1]
    with pytest.raises(ValueError, match="empty"):
        PerSAM().fit([fa], [empty], 1024)


def _image(tiny_backbone, seed=0, size=(240, 320)):
    d = PromptDecoder(tiny_backbone, batched=False)
    f = np.random.default_rng(seed).normal(0, 1, (256, 64, 64)).astype(np.float32)
    d.set_embedding(f, size)
    return d, f


def test_the_unhooked_forward_is_sams_decoder(tiny_backbone):
    d, _ = _image(tiny_backbone)
    pts, labels = np.array([[100, 80], [300, 200]]), np.array([1, 0])
    box = np.array([60, 40, 200, 180])
    mask_input = np.random.default_rng(2).normal(0, 3, (256, 256)).astype(np.float32)
    for kw, multimask in (({}, True), ({"box": box}, False), ({"mask_input": mask_input}, True),
                          ({"box": box, "mask_input": mask_input}, False)):
        ours = decode(d, pts, labels, multimask=multimask, **kw)
        sams = d.predictor.predict(
            pts.astype(np.float32), labels, None if "box" not in kw else box[None],
            None if "mask_input" not in kw else mask_input[None], multimask_output=multimask)
        assert ours[2].shape == sams[2].shape == ((3 if multimask else 1), 256, 256)
        assert np.allclose(ours[2], sams[2], atol=1e-5)              # logits
        assert np.allclose(ours[1], sams[1], atol=1e-5)              # IoU scores
        assert (ours[0] == sams[0]).mean() > 0.999
    zero = decode(d, pts, labels, target=np.zeros(256, np.float32))    # a zero target adds 0
    assert np.allclose(zero[2], decode(d, pts, labels)[2], atol=1e-6)


def test_the_target_tokens_are_the_authors(tiny_backbone):
    """The authors add the target in place: it enters the tokens before each block, their
    positional term, and the final attention's query. Rebuilt here with torch hooks on
    SAM's own transformer, independently of guided_decode."""
    d, _ = _image(tiny_backbone)
    sam = tiny_backbone.sam
    t = torch.from_numpy(np.random.default_rng(3).normal(0, 0.5, 256).astype(np.float32))
    pts = torch.tensor([[[40.0, 60.0]]]), torch.tensor([[1]])
    with torch.no_grad():
        sparse, dense = sam.prompt_encoder(points=pts, boxes=None, masks=None)
        pe = sam.prompt_encoder.get_dense_pe()
        ours, _ = guided_decode(sam.mask_decoder, d.predictor.features, pe, sparse, dense,
                                target=t)
        tf = sam.mask_decoder.transformer
        handles = [layer.register_forward_pre_hook(
            lambda m, a, kw: (a, {**kw, "queries": kw["queries"] + t}), with_kwargs=True)
            for layer in tf.layers[1:]]
        handles.append(tf.final_attn_token_to_image.register_forward_pre_hook(
            lambda m, a, kw: (a, {**kw, "q": kw["q"] + t}), with_kwargs=True))
        forward = tf.forward
        tf.forward = lambda img, img_pe, tokens: forward(img, img_pe, tokens + t)
        try:
            ref, _ = sam.mask_decoder.predict_masks(d.predictor.features, pe, sparse, dense)
        finally:
            del tf.forward
            for h in handles:
                h.remove()
        plain, _ = guided_decode(sam.mask_decoder, d.predictor.features, pe, sparse, dense)
    assert np.allclose(ours.numpy(), ref.numpy(), atol=1e-5)
    assert not np.allclose(ours.numpy(), plain.numpy(), atol=1e-3)   # the target did act


def test_the_attention_bias_pulls_the_tokens_to_the_favoured_cells():
    from segment_anything.modeling.transformer import Attention

    torch.manual_seed(0)
    layer = Attention(32, 4, downsample_rate=2)
    q, k = torch.randn(1, 3, 32), torch.randn(1, 10, 32)
    bias = torch.zeros(10)
    bias[7] = 60.0                                 # after softmax + bias: all weight on 7
    out = guided._attend(layer, q, k, k, bias.view(1, 1, 1, 10))
    only7 = layer.out_proj(layer.v_proj(k[:, 7:8])).expand(1, 3, 32)
    assert torch.allclose(out, only7, atol=1e-5)
    assert torch.equal(guided._attend(layer, q, k, k, None), layer(q=q, k=k, v=k))


def test_persam_f_learns_to_weight_the_output_that_fits(monkeypatch):
    """Three fake outputs: only the third matches the shot's mask; the trained weights
    move to it from their start (1/3 each) and still sum to 1."""
    m = np.zeros(SIZE, np.uint8)
    m[80:200, 200:400] = 1
    h, w = input_size(*SIZE, 256)
    truth = np.zeros((256, 256), np.float32)
    truth[:h, :w] = cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5
    fake = np.stack([np.full((256, 256), 2.0), np.full((256, 256), -2.0),
                     np.where(truth > 0, 6.0, -6.0)]).astype(np.float32)

    class Fake:
        def set_embedding(self, features, size):
            pass

    monkeypatch.setattr(ps, "decode", lambda *a, **k: (None, None, fake))
    f = np.random.default_rng(0).normal(0, 1, (256, 64, 64)).astype(np.float32)
    model = PerSAMF(epochs=300).fit([f], [m], 1024, Fake())
    assert model.weights_.shape == (3,) and abs(model.weights_.sum() - 1) < 1e-5
    # lr 1e-3 (the authors'), cosine to 0 over 300 steps: a weight moves ~0.15 at most
    assert model.weights_[2] > 1 / 3 + 0.1 and model.losses_[1] < model.losses_[0]


def test_the_variants_need_their_model():
    from selfprompt.prompts import make_prompts
    from selfprompt.strategies import Inputs

    p = PRESETS["corrected"]
    x = Inputs(make_prompts(np.zeros((50, 50), np.uint8), p, np.random.default_rng(0)),
               p, None, None, (42, 0, 1))
    with pytest.raises(ValueError, match="needs a fitted persam"):
        run_strategies(["persam"], object(), x)


def test_persam_and_persam_f_run_on_sam(tiny_backbone):
    d, f = _image(tiny_backbone, size=(240, 320))
    truth = np.zeros((240, 320), np.uint8)
    truth[60:160, 100:220] = 1
    for cls in (PerSAM, PerSAMF):
        model = cls().fit([f], [truth], tiny_backbone.img_size, d)
        out = model.predict(d, f, (240, 320))
        assert out.shape == (240, 320) and out.dtype == bool
        assert (model.predict(d) == out).all()          # the embedding the decoder holds


def test_every_persam_variant_runs_through_the_variants_group(
        tiny_backbone, synthetic_dir, tmp_path):
    """The group fits each variant, in its own form, on the shots and decodes it beside the
    paper's variants, in the order asked."""
    from selfprompt.methods import Shots, Variants
    from selfprompt.strategies import NEEDS_PERSAM

    ds = open_dataset(synthetic_dir)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path / "cache", progress=False)
    decoder = PromptDecoder(tiny_backbone)
    shots = Shots(emb.take([0, 1]), [ds.mask(i, 128) for i in (0, 1)], decoder, seed=42)
    group = Variants("corrected", ("box",) + NEEDS_PERSAM).fit(shots)
    assert list(group.persam_) == list(NEEDS_PERSAM)
    assert group.persam_["persam_f"].epochs == 1000
    assert group.persam_["persam_aligned"].model_.cells == "aligned"
    assert group.persam_["persam_noguide"].model_.guidance is False
    truth = ds.mask(5, 128)
    seg = group.segment(np.asarray(emb[5], np.float32), truth.shape,
                        np.random.default_rng(0), (42, 0, 5))
    assert list(seg.masks) == ["box", *NEEDS_PERSAM]
    for v in NEEDS_PERSAM:
        assert seg.masks[v].shape == truth.shape and seg.masks[v].dtype == bool
        assert 0.0 <= seg.quality[v] <= 1.0 and seg.seconds[v] > 0


@pytest.mark.slow
def test_persam_is_scored_through_the_protocol(tiny_backbone, synthetic_dir, tmp_path):
    ds = open_dataset(synthetic_dir)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path / "cache", progress=False)
    exp = Experiment(ds, emb, tiny_backbone, tmp_path / "runs", progress=False,
                     variants=("linear", "box", "persam", "persam_f"), test_per_fold=2)
    path = exp.run_fold("corrected", "2", 0)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["seconds"]["persam_fit"] >= 0 and meta["seconds"]["persam_f_fit"] > 0
    # what each variant costs an image beyond the paper's, from the cached embedding
    assert set(meta["seconds_per_image"]) == {"self_prompt", "persam", "persam_f"}
    assert all(s > 0 for s in meta["seconds_per_image"].values())
    assert abs(sum(meta["persam_f_weights"]) - 1) < 1e-4
    assert meta["persam"]["persam_f"]["epochs"] == 1000
    assert meta["persam"]["persam"]["cells"] == "authors"
    rows = list(csv.DictReader(path.open()))
    by = {v: [r["image"] for r in rows if r["variant"] == v]
          for v in ("linear", "box", "persam", "persam_f")}
    assert by["persam"] == by["persam_f"] == by["linear"] and len(by["persam"]) == 2
    fitted = {n: m.model_ for n, m in exp.fitted("corrected", "2", 0).persam_.items()}
    shots = exp.shots("2", 0)
    again = PerSAM().fit(emb.take(shots), [exp.mask(i, PRESETS["corrected"].mask_threshold)
                                           for i in shots], tiny_backbone.img_size)
    assert fitted["persam"].n_shots_ == 2
    assert np.allclose(fitted["persam"].target_, again.target_)
