"""Shot selection: label-free, training images only, deterministic; kcenter picks diverse
images and medoids representative ones; random is the paper's draw, unchanged."""
import json

import numpy as np
import pytest

from selfprompt.datasets.reader import Dataset, open_dataset
from selfprompt.embeddings import embed_dataset
from selfprompt.evaluation.protocol import Experiment, draw_shots, make_folds
from selfprompt.presets import PRESETS
from selfprompt.shots import SHOT_STRATEGIES, pooled_vector, select_shots


def clustered(sizes=(9, 5, 3), dim=16, seed=0):
    """Embeddings ``(dim, 2, 2)`` in well-separated clusters along the axes; each cluster is
    its centre (its first member) and pairs of members mirrored about it, so the centre
    is the cluster's mean and its medoid. Returns (embeddings, labels)."""
    rng = np.random.default_rng(seed)
    vectors, labels = [], []
    for c, n in enumerate(sizes):
        centre = np.zeros(dim)
        centre[c] = 1.0
        vectors.append(centre)
        for _ in range(n // 2):
            e = rng.normal(0, 0.05, dim)
            vectors += [centre + e, centre - e]
        labels += [c] * n
    embeddings = [np.repeat(v[:, None, None], 4, axis=1).reshape(dim, 2, 2) for v in vectors]
    return embeddings, np.array(labels)


class Poisoned(list):
    """Embeddings of which only the training images may be read."""

    def __init__(self, items, allowed):
        super().__init__(items)
        self.allowed = set(allowed)

    def __getitem__(self, i):
        assert i in self.allowed, f"read embedding {i}, not a training image"
        return super().__getitem__(i)


def test_pooled_vector_is_the_normalised_mean_over_cells():
    f = np.zeros((4, 3, 3), np.float16)
    f[0], f[1] = 3, 4
    np.testing.assert_allclose(pooled_vector(f), [0.6, 0.8, 0, 0])
    assert not pooled_vector(np.zeros((4, 2, 2))).any()


def test_random_is_the_papers_draw_fold_by_fold():
    folds = make_folds(40, 5, seed=42)
    for draw in (0, 1):
        drawn = draw_shots(folds, 3, 42, draw)
        # alone, select_shots draws the first fold's shots from a fresh stream
        assert select_shots(None, folds[0][0], 3, "random", 42, draw) == drawn[0]
    assert draw_shots(folds, 3, 42) == [
        [8, 1, 22], [19, 18, 11], [9, 8, 35], [4, 1, 7], [16, 17, 1]]  # as before select_shots


@pytest.mark.parametrize("strategy", list(SHOT_STRATEGIES))
def test_strategies_read_training_embeddings_only_and_are_deterministic(strategy):
    embeddings, _ = clustered()
    train = [0, 2, 3, 5, 7, 9, 10, 11, 13, 15, 16]
    poisoned = Poisoned(embeddings, train)
    shots = select_shots(poisoned, train, 4, strategy)
    assert len(set(shots)) == 4 and set(shots) <= set(train)
    assert shots == select_shots(poisoned, train, 4, strategy)
    assert sorted(select_shots(poisoned, train, "all", strategy)) == train
    with pytest.raises(ValueError, match="exceeds"):
        select_shots(poisoned, train, 12, strategy)


def test_kcenter_covers_every_cluster_starting_near_the_mean_and_medoids_take_centres():
    embeddings, labels = clustered()
    train = list(range(len(labels)))
    rnd = select_shots(embeddings, train, 3, "random", seed=42)
    kc = select_shots(embeddings, train, 3, "kcenter")
    md = select_shots(embeddings, train, 3, "medoids")
    assert sorted(labels[rnd]) != [0, 1, 2]             # this draw misses a cluster
    assert sorted(labels[kc]) == [0, 1, 2] and labels[kc[0]] == 0   # the largest first
    assert md == [0, 9, 14]                            # each cluster's central member
    assert kc != rnd and md != rnd
    # nested: the first k of k + 1 k-center shots are the k shots
    assert select_shots(embeddings, train, 4, "kcenter")[:3] == kc
    with pytest.raises(ValueError, match="only draw 0"):
        select_shots(embeddings, train, 3, "kcenter", draw=1)
    assert select_shots(embeddings, train, 3, "medoids", draw=1) == md  # clusters are clear
    with pytest.raises(ValueError, match="unknown shot strategy"):
        select_shots(embeddings, train, 3, "best")


def test_medoids_give_k_distinct_shots_when_images_repeat():
    embeddings = [np.ones((4, 2, 2))] * 5 + [np.full((4, 2, 2), -1.0)]
    shots = select_shots(embeddings, range(6), 4, "medoids")
    assert len(set(shots)) == 4 and 5 in shots


@pytest.fixture(scope="module")
def data(tiny_backbone, synthetic_dir, tmp_path_factory):
    ds = open_dataset(synthetic_dir)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path_factory.mktemp("cache"), progress=False)
    return ds, emb


def test_the_experiment_chooses_shots_without_reading_a_mask(data, tiny_backbone,
                                                             tmp_path, monkeypatch):
    ds, emb = data
    exp = Experiment(ds, emb, tiny_backbone, tmp_path, progress=False, shot_strategy="kcenter")

    def no_mask(*args, **kwargs):
        raise AssertionError("a mask was read while choosing shots")

    monkeypatch.setattr(Dataset, "mask", no_mask)
    for fold, (train, _) in enumerate(exp.folds):
        shots = exp.shots("3", fold)
        assert set(shots) <= set(train.tolist()) and len(set(shots)) == 3
        assert shots == select_shots(emb, train, 3, "kcenter")


def test_chosen_shots_are_stored_apart_and_random_keeps_its_identity(data, tiny_backbone,
                                                                     tmp_path):
    ds, emb = data
    corrected = PRESETS["corrected"]
    paper = Experiment(ds, emb, tiny_backbone, tmp_path, progress=False)
    assert "shot_strategy" not in paper.identity(corrected, "2", 0)
    assert paper.fold_path("corrected", "2", 0) == tmp_path / "corrected" / "k2" / "fold0.csv"
    for strategy in ("kcenter", "medoids"):
        exp = Experiment(ds, emb, tiny_backbone, tmp_path, progress=False,
                         shot_strategy=strategy, test_per_fold=1)
        path = exp.run_fold(corrected, 2, 0)
        assert path == tmp_path / "corrected" / "k2" / strategy / "fold0.csv"
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["shot_strategy"] == strategy
        assert meta["shots"] == [ds.samples[i].name for i in exp.shots("2", 0)]
        assert path.read_text().splitlines()[0].endswith(",draw,shots")
        assert paper.finished(corrected, "2", 0) is None     # not taken for the paper's
    from selfprompt.evaluation.results import load_runs

    rows = load_runs(tmp_path)                                   # kept apart when pooled
    assert {r["shots"] for r in rows} == {"kcenter", "medoids"} and len(rows) == 2 * 4
    paper.run_fold(corrected, 2, 0)
    from selfprompt.evaluation.results import collect, summarise

    # the summary (and every table built on it) gives each way of choosing lines of its own
    lines = {s["variant"]: s for s in summarise(load_runs(tmp_path)) if s["fold"] == "all"}
    assert {"box", "box (kcenter shots)", "box (medoids shots)"} <= set(lines)
    assert lines["box (medoids shots)"]["n_images"] == 1       # nothing pooled across them
    assert lines["box"]["n_images"] == len(paper.folds[0][1])
    assert "| box (medoids shots) |" in collect(tmp_path)[2].read_text()
    with pytest.raises(ValueError, match="unknown shot strategy"):
        Experiment(ds, emb, tiny_backbone, tmp_path, progress=False, shot_strategy="best")


def test_the_strategies_named_for_help_are_the_strategies():
    from selfprompt.cli.method import AUTO, SHOT_STRATEGIES as named
    from selfprompt.methods.recipe import AUTO as auto

    assert named == tuple(SHOT_STRATEGIES) and AUTO == auto
