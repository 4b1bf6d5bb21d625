"""auto: the prompt and threshold chosen by cross-validation inside the k shots, never
from a test image; recorded in the fold's JSON; the other variants' numbers unchanged."""
import csv
import dataclasses
import json

import numpy as np
import pytest

from selfprompt.datasets.reader import open_dataset
from selfprompt.decode import PromptDecoder
from selfprompt.embeddings import embed_dataset
from selfprompt.evaluation.protocol import Experiment
from selfprompt.presets import PRESETS, VARIANTS
from selfprompt.methods.recipe import (AUTO_PROMPTS, AUTO_THRESHOLDS, apply_recipe,
                                       backbone_prompt, candidate_prompts, choose_recipe,
                                       inner_splits, option, score_options, with_threshold)


def test_inner_splits_are_leave_one_out_up_to_ten_then_five_fold():
    assert inner_splits(1) == []
    loo = inner_splits(10)
    assert len(loo) == 10 and all(len(held) == 1 for _, held in loo)
    five = inner_splits(11, seed=3)
    assert len(five) == 5 and sorted(np.concatenate([h for _, h in five])) == list(range(11))
    assert all((a[1] == b[1]).all() for a, b in zip(five, inner_splits(11, seed=3)))


@pytest.fixture(scope="module")
def data(tiny_backbone, synthetic_dir, tmp_path_factory):
    ds = open_dataset(synthetic_dir)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path_factory.mktemp("cache"), progress=False)
    return ds, emb


def test_the_choice_is_the_best_inner_score_and_deterministic(data, tiny_backbone):
    ds, emb = data
    corrected = PRESETS["corrected"]
    shots = [0, 3, 5, 7]
    masks = [ds.mask(i, corrected.mask_threshold) for i in shots]
    decoder = PromptDecoder(tiny_backbone)
    recipe = choose_recipe(emb.take(shots), masks, corrected, decoder)
    assert recipe.cv == "leave-one-out" and recipe.n_scored_ == 4
    assert set(recipe.scores_) == {option(p, t) for p in AUTO_PROMPTS for t in AUTO_THRESHOLDS}
    best = max(recipe.scores_.values())
    assert recipe.scores_[recipe.name] == best
    # ties: the backbone's own prompt first (tiny: SAM's, point and box), then as listed
    order = ["point_box"] + [p for p in AUTO_PROMPTS if p != "point_box"]
    first = next(option(p, t) for p in order for t in AUTO_THRESHOLDS
                 if recipe.scores_[option(p, t)] == best)
    assert recipe.name == first
    again = choose_recipe(emb.take(shots), masks, corrected, decoder)
    assert (again.name, again.scores_) == (recipe.name, recipe.scores_)
    # the preset's own threshold plays no part: a threshold preset reuses the choice
    from selfprompt.methods import recipe as module
    from selfprompt.presets import get_preset

    chosen = len(module._CHOSEN)
    other = choose_recipe(emb.take(shots), masks, get_preset("corrected+threshold=0.3"), decoder)
    assert other.as_dict() == recipe.as_dict() and len(module._CHOSEN) == chosen
    one = choose_recipe(emb.take(shots[:1]), masks[:1], corrected, decoder)
    assert (one.prompt, one.threshold, one.cv, one.scores_) == ("point_box", 0.5, "none", {})
    assert one.reason.startswith("k = 1")


def test_the_candidates_are_every_self_prompt_in_the_registry(monkeypatch):
    from selfprompt import strategies

    assert candidate_prompts() == AUTO_PROMPTS == (
        "linear", "point", "box", "point_box", "peaks3", "peaks3_box", "points_cc", "box_cc",
        "box_neg", "mask", "box_mask", "box_refine")
    # a strategy registered later joins; bounds, PerSAM, ft_* and no prompt never do
    monkeypatch.setitem(strategies.STRATEGIES, "my_points", ("mine", strategies.peaks3))
    assert candidate_prompts() == AUTO_PROMPTS + ("my_points",)
    assert not {"no_prompt", "gt_box", "persam", "ft_box"} & set(candidate_prompts())


def _spec_decoder(model_type: str):
    """A decoder stand-in naming a registered backbone: the fallback reads its spec only."""
    from types import SimpleNamespace

    return SimpleNamespace(backbone=SimpleNamespace(model_type=model_type, img_size=256,
                                                    model_hash=model_type), batched=True)


@pytest.mark.parametrize("model_type, prompt", [("medsam_lite", "box"), ("vit_t", "point_box")])
def test_too_few_shots_fall_back_to_the_prompt_the_backbone_was_trained_with(model_type, prompt):
    from selfprompt.models.registry import BACKBONES

    assert backbone_prompt(BACKBONES[model_type].trained_with) == prompt
    corrected = PRESETS["corrected"]
    rng = np.random.default_rng(0)
    emb = [rng.normal(size=(256, 64, 64)).astype(np.float16) for _ in range(3)]
    lesion = np.zeros((40, 40), np.uint8)
    lesion[10:20, 10:20] = 1
    one = choose_recipe(emb[:1], [lesion], corrected, _spec_decoder(model_type))
    assert (one.prompt, one.threshold, one.cv, one.n_scored_) == (prompt, 0.5, "none", 0)
    assert one.as_dict()["reason"] == "k = 1: no shot to hold out"
    # three shots, but no split's training shots hold a lesion: no classifier
    blank = [np.zeros((40, 40), np.uint8)] * 3
    none = choose_recipe(emb, blank, corrected, _spec_decoder(model_type))
    assert (none.prompt, none.threshold, none.cv) == (prompt, 0.5, "none")
    assert "both" in none.reason
    with pytest.raises(ValueError, match="trained_with"):
        backbone_prompt("masks")


def test_one_pass_scoring_equals_segmenting_at_each_threshold(data, tiny_backbone):
    """The inner CV's shortcut (one probability map, the paper's prompts of every threshold
    in one decoder call) scores each option as the pipeline's own segment() does."""
    from selfprompt.metrics import dice
    from selfprompt.pipeline import fit_classifier, segment

    ds, emb = data
    corrected = PRESETS["corrected"]
    masks = [ds.mask(i, corrected.mask_threshold) for i in (0, 3, 5)]
    clf = fit_classifier(emb.take([0, 3]), masks[:2], corrected,
                         img_size=tiny_backbone.img_size)
    features, truth = np.asarray(emb[5], np.float32), masks[2]
    decoder = PromptDecoder(tiny_backbone, batched=False)      # SAM's calls: bit for bit
    got = score_options(clf, decoder, features, truth, corrected, AUTO_PROMPTS,
                        AUTO_THRESHOLDS, (42, 0, 2))
    for t in AUTO_THRESHOLDS:
        seg = segment(with_threshold(clf, t), decoder, features, truth.shape, corrected,
                      np.random.default_rng([42, 0, 2]), AUTO_PROMPTS, seed=(42, 0, 2))
        for p in AUTO_PROMPTS:
            assert got[option(p, t)] == dice(seg.masks[p], truth), option(p, t)
    batched = score_options(clf, PromptDecoder(tiny_backbone), features, truth, corrected,
                            AUTO_PROMPTS, AUTO_THRESHOLDS, (42, 0, 2))
    assert batched == pytest.approx(got, abs=1e-3)


@pytest.mark.parametrize("preset", ["corrected", "paper"])
def test_auto_never_reads_a_test_mask_and_leaves_the_other_variants_alone(
        data, tiny_backbone, tmp_path, preset):
    ds, emb = data
    plain = Experiment(ds, emb, tiny_backbone, tmp_path / "plain", progress=False)
    auto = dataclasses.replace(plain, out_dir=tmp_path / "auto", variants=VARIANTS + ("auto",))
    p, fold = PRESETS[preset], 1
    test = set(auto.folds[fold][1].tolist())
    read = []

    def poisoned(i, threshold):                  # test images' masks: garbage, and noted
        read.append(i)
        if i in test:
            return np.random.default_rng(i).integers(0, 2, (32, 32), dtype=np.uint8)
        return ds.mask(i, threshold)

    auto.mask = poisoned
    recipe = auto.fitted(p, "4", fold).auto_.recipe_
    assert read and not set(read) & test and set(read) <= set(auto.shots("4", fold))
    honest = dataclasses.replace(plain, variants=("auto",))
    assert honest.fitted(p, "4", fold).auto_.recipe_.as_dict()["scores"] == recipe.scores_

    auto.mask = lambda i, threshold: ds.mask(i, threshold)   # scoring reads the truth
    path = auto.run_fold(p, 4, fold)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["auto"]["prompt"] == recipe.prompt and meta["auto"]["threshold"] == recipe.threshold
    assert meta["auto"]["scores"] == recipe.scores_ and "auto" in meta["seconds"]
    assert set(meta["seconds_per_image"]) == {"self_prompt", "auto"}   # its cost an image
    assert meta["auto"]["cv"] == "leave-one-out"
    assert meta["auto"] != {} and "auto" in auto.identity(p, "4", fold)
    rows = list(csv.DictReader(open(path)))
    assert [r["variant"] for r in rows[:5]] == list(VARIANTS) + ["auto"]
    base = list(csv.DictReader(open(plain.run_fold(p, 4, fold))))
    # the four paper variants (and the paper preset's shared box stream) are untouched
    assert [r for r in rows if r["variant"] != "auto"] == base
    # auto's mask is the recipe applied to the test image
    i = int(auto.folds[fold][1][0])
    clf = auto.fitted(p, "4", fold).classifier_
    truth = ds.mask(i, p.mask_threshold)
    want = apply_recipe(recipe, clf, auto.decoder, np.asarray(emb[i], np.float32),
                        truth.shape, p, (auto.seed, fold, i))
    from selfprompt.metrics import dice

    assert float(rows[4]["dice"]) == pytest.approx(dice(want, truth), abs=1e-6)


@pytest.mark.parametrize("kind", ["logreg", "knn"])
def test_one_probability_map_cut_at_each_threshold_is_the_classifiers_own_mask(kind):
    from selfprompt.classifier import make_classifier
    from selfprompt.methods.recipe import _Cut

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 256)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=3000) > 0.5).astype(np.uint8)
    features = rng.normal(size=(256, 64, 64)).astype(np.float32)
    clf = make_classifier(kind).fit(X, y)
    cut = _Cut(clf, features)
    assert np.array_equal(cut.logits(), clf.logit_map(features))
    for t in AUTO_THRESHOLDS:
        assert np.array_equal(cut(t), with_threshold(clf, t).predict_map(features)), t
