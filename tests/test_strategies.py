"""Prompt strategies and baselines: each asks SAM what it says it asks, with known prompts.

A recording decoder stands in for SAM where the question is *which prompt* a variant
sends (exact coordinates, call order); the tiny SAM runs where the question is how the
variants fit into the pipeline (shapes, seeds, determinism).
"""
import numpy as np
import pytest

from selfprompt import strategies
from selfprompt.datasets.reader import open_dataset
from selfprompt.embeddings import embed_dataset
from selfprompt.frame import LOWRES, grid_to_lowres
from selfprompt.pipeline import segment
from selfprompt.presets import PRESETS, VARIANTS
from selfprompt.prompts import bounding_box, make_prompts
from selfprompt.evaluation.protocol import Experiment
from selfprompt.strategies import (STRATEGIES, Inputs, _components, negative_points,
                                   run_strategies)


class Recorder:
    """Answers every prompt with a fixed mask and remembers what it was asked."""

    def __init__(self, shape, answer=None):
        self.shape, self.calls = shape, []
        self.answer = np.zeros(shape, bool) if answer is None else answer

    def predict(self, points=None, labels=None, box=None, mask_input=None, return_logits=False):
        self.calls.append({"points": points, "labels": labels, "box": box,
                           "mask_input": mask_input})
        low = np.full((LOWRES, LOWRES), float(len(self.calls)), np.float32)
        return (self.answer, low) if return_logits else self.answer

    def variants(self, prompts, variants):
        return {v: self.predict(box=prompts.box) for v in variants}


def inputs(coarse, truth=None, logits=None, preset="corrected"):
    p = PRESETS[preset]
    prompts = make_prompts(coarse, p, np.random.default_rng(0))
    return Inputs(prompts, p, logits, truth, (42, 0, 7), img_size=256)


def two_blobs(shape=(200, 300)):
    m = np.zeros(shape, np.uint8)
    m[30:80, 30:90] = 1       # 50 x 60
    m[120:170, 200:280] = 1   # 50 x 80
    return m


def test_ground_truth_prompts_are_the_truths_deepest_point_and_widened_box():
    truth = np.zeros((100, 120), np.uint8)
    truth[20:61, 30:71] = 1                                    # a 41 x 41 square
    coarse = np.zeros_like(truth)                              # the classifier saw nothing
    d = Recorder(truth.shape)
    run_strategies(["gt_point", "gt_box", "gt_point_box"], d, inputs(coarse, truth))
    point, box, both = d.calls
    assert point["points"].tolist() == [[50, 40]] and point["box"] is None
    x0, y0, x1, y1 = box["box"]
    assert 30 - 20 < x0 <= 30 and 20 - 20 < y0 <= 20            # widened by 0..19 px
    assert 70 <= x1 < 70 + 20 and 60 <= y1 < 60 + 20
    assert both["points"].tolist() == [[50, 40]] and both["box"] is not None


def test_ground_truth_prompts_without_a_lesion_give_an_empty_mask_not_a_guess():
    d = Recorder((50, 50), answer=np.ones((50, 50), bool))
    empty = np.zeros((50, 50), np.uint8)
    out = run_strategies(["gt_point", "gt_box"], d, inputs(empty, truth=empty))
    assert not d.calls and not any(m.any() for m in out.values())


def test_no_prompt_sends_nothing():
    d = Recorder((50, 50))
    run_strategies(["no_prompt"], d, inputs(np.zeros((50, 50), np.uint8)))
    assert d.calls == [{"points": None, "labels": None, "box": None, "mask_input": None}]


def test_components_drop_specks_and_come_largest_first():
    m = two_blobs()
    m[5:7, 5:7] = 1                                            # a 4-pixel speck
    parts = _components(m)
    assert [int(p.sum()) for p in parts] == [4000, 3000]


def test_one_box_per_lesion_and_the_masks_are_united():
    coarse = two_blobs()
    x = inputs(coarse)
    halves = [np.zeros(coarse.shape, bool), np.zeros(coarse.shape, bool)]
    halves[0][:, :150], halves[1][:, 150:] = True, True

    class TwoAnswers(Recorder):
        def predict(self, **kw):
            super().predict(**kw)
            return halves[len(self.calls) - 1]

    d = TwoAnswers(coarse.shape)
    out = run_strategies(["box_cc"], d, x)["box_cc"]
    assert out.all()                                           # union of both answers
    boxes = [c["box"] for c in d.calls]
    # cleaned blobs grow by ~4 px; each box holds one blob and not the other
    assert boxes[0][0] >= 150 and boxes[1][2] < 150


def test_negative_points_lie_in_the_box_and_as_far_as_possible_from_the_lesion():
    cleaned = np.zeros((100, 200), np.uint8)
    cleaned[20:80, 20:100] = 1
    pts = negative_points(cleaned, np.array([10, 10, 190, 90]), n=2)
    assert len(pts) == 2
    for x, y in pts:
        assert 10 <= x <= 190 and 10 <= y <= 90 and cleaned[y, x] == 0
    # the middle of the box's lesion-free part: 40 px from the lesion and the box's edge
    assert pts[0].tolist() == [140, 50]


def test_box_with_negative_points_labels_them_zero():
    coarse = two_blobs()
    d = Recorder(coarse.shape)
    run_strategies(["box_neg"], d, inputs(coarse))
    call = d.calls[0]
    assert call["labels"].tolist() == [1, 0, 0] and call["box"] is not None


def test_refinement_feeds_sams_logits_back_with_the_same_box():
    coarse = two_blobs()
    d = Recorder(coarse.shape)
    run_strategies(["box_refine"], d, inputs(coarse))
    assert len(d.calls) == 3 and d.calls[0]["mask_input"] is None
    assert d.calls[1]["mask_input"][0, 0] == 1 and d.calls[2]["mask_input"][0, 0] == 2
    assert all((c["box"] == d.calls[0]["box"]).all() for c in d.calls)


def test_classifier_logits_become_a_mask_prompt_on_the_padded_frame():
    grid = np.full((64, 64), -5, np.float32)
    grid[10:20, 30:40] = 5
    low = grid_to_lowres(grid, 300, 600, aligned=True, img_size=256)   # content: 128 rows
    assert low.shape == (256, 256)
    assert (low[45:75, 125:155] > 0).all() and low[30, 100] < 0
    assert (low[128:] == -20).all()                            # padding says "no lesion"
    stretched = grid_to_lowres(grid, 300, 600, aligned=False, img_size=256)
    assert (stretched[128:] == -20).all() and (stretched[25:35, 125:155] > 0).all()
    coarse = two_blobs()
    d = Recorder(coarse.shape)
    run_strategies(["mask", "box_mask"], d, inputs(coarse, logits=grid))
    assert d.calls[0]["box"] is None and d.calls[0]["mask_input"].shape == (256, 256)
    assert d.calls[1]["box"] is not None


def test_unknown_and_unavailable_variants_say_what_is_missing():
    d = Recorder((50, 50))
    with pytest.raises(ValueError, match="unknown variant 'boxx'"):
        run_strategies(["boxx"], d, inputs(np.zeros((50, 50), np.uint8)))
    with pytest.raises(ValueError, match="needs a fine-tuned decoder"):
        run_strategies(["ft_box"], d, inputs(two_blobs()))


def test_every_strategy_runs_on_sam_and_leaves_the_papers_variants_unchanged(tiny_backbone):
    from selfprompt.classifier import LinearPixelClassifier
    from selfprompt.decode import PromptDecoder

    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (256, 64, 64)).astype(np.float32)
    labels = (features[3] > 0.5).ravel().astype(int)
    clf = LinearPixelClassifier().fit(features.reshape(256, -1).T, labels)
    decoder = PromptDecoder(tiny_backbone)
    truth = two_blobs((240, 320))
    size, preset = truth.shape, PRESETS["corrected"]
    mine = [v for v in STRATEGIES             # those needing fitted state or the truth:
            if not v.startswith("ft_") and v not in strategies.NEEDS_PERSAM   # own tests
            and v not in strategies.NEEDS_TRUTH]

    def run(variants):
        return segment(clf, decoder, features, size, preset, np.random.default_rng([42, 0, 1]),
                       variants, seed=(42, 0, 1))

    alone, together = run(VARIANTS), run(VARIANTS + tuple(mine))
    again = run(VARIANTS + tuple(mine))
    assert list(together.masks) == list(VARIANTS) + mine
    for v in VARIANTS:                                         # strategies draw on their own
        assert (alone.masks[v] == together.masks[v]).all()
    for v in mine:
        assert together.masks[v].shape == size and together.masks[v].dtype == bool
        assert (together.masks[v] == again.masks[v]).all()    # seeded: same on a rerun


def test_a_registered_strategy_is_scored_beside_the_others(tiny_backbone, synthetic_dir,
                                                           tmp_path):
    """A strategy of one's own (exercise 7) goes through the protocol like the kit's."""
    calls = []

    def tight_box(d, x):
        """the coarse mask's tight box"""
        calls.append(x.seed)
        box = bounding_box(x.prompts.cleaned)
        return np.zeros(x.size, bool) if box is None else d.predict(box=box)

    strategies.register("tight_box_test", tight_box)
    try:
        assert strategies.STRATEGIES["tight_box_test"][0] == "the coarse mask's tight box"
        with pytest.raises(ValueError, match="exists already"):
            strategies.register("tight_box_test", tight_box)
        with pytest.raises(ValueError, match="exists already"):
            strategies.register("box", tight_box)
        with pytest.raises(ValueError, match="not starting with ft_"):
            strategies.register("ft_mine", tight_box)
        with pytest.raises(TypeError, match="must be a function"):
            strategies.register("mine2", "not a function")
        ds = open_dataset(synthetic_dir)
        emb, _ = embed_dataset(ds, tiny_backbone, tmp_path / "cache", progress=False)
        exp = Experiment(ds, emb, tiny_backbone, tmp_path / "runs", progress=False,
                         variants=("box", "tight_box_test"))
        rows = exp.score(PRESETS["corrected"], "2", 0)[0]
        mine = [r for r in rows if r["variant"] == "tight_box_test"]
        assert len(mine) == len([r for r in rows if r["variant"] == "box"]) == len(calls) > 0
    finally:
        strategies.STRATEGIES.pop("tight_box_test", None)
