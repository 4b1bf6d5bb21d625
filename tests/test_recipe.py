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
                                       choose_recipe, inner_splits, option)


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
    first = next(option(p, t) for p in AUTO_PROMPTS for t in AUTO_THRESHOLDS
                 if recipe.scores_[option(p, t)] == best)
    assert recipe.name == first                              # ties: the first listed
    again = choose_recipe(emb.take(shots), masks, corrected, decoder)
    assert (again.name, again.scores_) == (recipe.name, recipe.scores_)
    one = choose_recipe(emb.take(shots[:1]), masks[:1], corrected, decoder)
    assert (one.prompt, one.threshold, one.cv, one.scores_) == ("point_box", 0.5, "none", {})


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
