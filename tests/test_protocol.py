"""The protocol: folds and draws are deterministic, disjoint, complete and written out;
fold results are resumable; the paper preset's random stream is replayed exactly."""
import csv
import json

import numpy as np
import pytest

from selfprompt.datasets.reader import open_dataset
from selfprompt.embeddings import embed_dataset
from selfprompt.presets import PRESETS
from selfprompt.evaluation.protocol import Experiment, draw_shots, fold_plan, make_folds, parse_k
from selfprompt.evaluation.results import read_results, summarise


def test_folds_are_deterministic_disjoint_and_cover_every_image():
    folds = make_folds(103, 5, seed=42)
    assert [len(te) for _, te in folds] == [21, 21, 21, 20, 20]
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(103))           # each image tested once
    for tr, te in folds:
        assert not set(tr) & set(te) and len(tr) + len(te) == 103
    again = make_folds(103, 5, seed=42)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    assert any((a[1] != b[1]).any() for a, b in zip(folds, make_folds(103, 5, seed=1)))


def test_shots_come_from_the_training_part_and_replay_the_authors_draws():
    import random

    folds = make_folds(50, 5, seed=42)
    shots = draw_shots(folds, 4, seed=42)
    rnd = random.Random(42)                                     # the authors' sequence
    for (tr, te), s in zip(folds, shots):
        assert s == [int(tr[j]) for j in rnd.sample(range(len(tr)), 4)]
        assert set(s) <= set(tr.tolist()) and not set(s) & set(te.tolist())
    assert all(sorted(s) == sorted(tr.tolist())
               for (tr, _), s in zip(folds, draw_shots(folds, "all", 42)))
    with pytest.raises(ValueError, match="exceeds"):
        draw_shots(folds, 41, 42)
    with pytest.raises(ValueError):
        parse_k("0")


def test_fold_plan_is_json_with_every_index():
    plan = json.loads(json.dumps(fold_plan([f"im{i}" for i in range(20)], ["2", "all"])))
    assert plan["seed"] == 42 and plan["n_images"] == 20 and len(plan["folds"]) == 5
    assert len(plan["shots"]["2"]) == 5 and all(len(s) == 2 for s in plan["shots"]["2"])


@pytest.fixture(scope="module")
def experiment(tiny_backbone, synthetic_dir, tmp_path_factory):
    ds = open_dataset(synthetic_dir)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path_factory.mktemp("cache"), progress=False)
    return lambda out: Experiment(ds, emb, tiny_backbone, out, dataset_name="synthetic",
                                  progress=False)


def test_plan_keeps_the_draws_of_earlier_k_values(experiment, tmp_path):
    exp = experiment(tmp_path)
    exp.write_plan(["2"])
    plan = json.loads(exp.write_plan(["3", "all"]).read_text())
    assert list(plan["shots"]) == ["2", "3", "all"]
    assert plan["shots"]["2"] == draw_shots(exp.folds, 2, exp.seed)


def test_fold_results_table_and_resume(experiment, tmp_path):
    exp = experiment(tmp_path)
    path = exp.run_fold("corrected", 2, 0)
    rows = list(csv.DictReader(open(path)))
    assert list(rows[0]) == ["dataset", "image", "fold", "k", "seed", "preset", "backbone",
                             "variant", "dice", "iou", "empty_prediction", "counted", "draw"]
    assert len(rows) == 2 * 4                                   # 2 test images x 4 variants
    assert {r["variant"] for r in rows} == {"linear", "point", "box", "point_box"}
    assert all(r["counted"] == "True" for r in rows)            # corrected keeps every image
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["model_hash"] == exp.backbone.model_hash and meta["preset"]["labels"] == "aligned"
    stamp = path.stat().st_mtime_ns
    assert exp.run_fold("corrected", 2, 0) == path and path.stat().st_mtime_ns == stamp  # skipped
    path.with_suffix(".json").unlink()                          # interrupted before the marker
    exp.run_fold("corrected", 2, 0)
    assert path.stat().st_mtime_ns != stamp and path.with_suffix(".json").exists()


def test_paper_stream_of_a_single_fold_equals_the_full_sequence(experiment, tmp_path):
    seq = experiment(tmp_path / "seq")
    for f in range(3):
        seq.run_fold("paper", 2, f)
    alone = experiment(tmp_path / "alone")                      # fold 2 first, nothing on disk
    path = alone.run_fold("paper", 2, 2)
    assert path.read_text() == seq.fold_path("paper", "2", 2).read_text()


def test_paper_leaves_empty_predictions_out_of_the_mean_and_says_so():
    rows = [{"dataset": "d", "backbone": "b", "preset": "paper", "k": "2", "variant": "box",
             "fold": 0, "dice": d, "iou": d, "empty_prediction": e, "counted": not e}
            for d, e in [(0.8, False), (0.6, False), (0.0, True)]]
    overall = [s for s in summarise(rows) if s["fold"] == "all"][0]
    assert overall["dice_mean"] == pytest.approx(0.7)
    assert overall["n_counted"] == 2 and overall["n_empty"] == 1 and overall["n_images"] == 3


def test_summary_over_folds(tmp_path, experiment):
    exp = experiment(tmp_path)
    paths = [exp.run_fold("corrected", 2, f) for f in range(5)]
    rows = read_results(paths)
    summary = summarise(rows)
    point_box = [s for s in summary if s["variant"] == "point_box"]
    assert [s["fold"] for s in point_box] == [0, 1, 2, 3, 4, "all"]
    pooled = np.mean([r["dice"] for r in rows if r["variant"] == "point_box"])
    assert point_box[-1]["dice_mean"] == pytest.approx(pooled, abs=1e-4)
    assert point_box[-1]["n_images"] == 10


def test_a_fold_computed_with_other_settings_is_not_taken_as_finished(experiment, tmp_path):
    corrected = PRESETS["corrected"]
    first = experiment(tmp_path)
    path = first.run_fold(corrected, 2, 1)
    assert first.finished(corrected, "2", 1) is not None
    other = experiment(tmp_path)
    other.seed = 7                                  # same folder, another seed
    assert other.finished(corrected, "2", 1) is None
    other.run_fold(corrected, 2, 1)                 # recomputed, not skipped
    assert json.loads(path.with_suffix(".json").read_text())["seed"] == 7
    assert first.finished(corrected, "2", 1) is None


def test_bad_fold_and_k_are_clear_errors(experiment, tmp_path):
    exp = experiment(tmp_path)
    with pytest.raises(ValueError, match="fold 5 does not exist"):
        exp.run_fold("corrected", 2, 5)
    assert parse_k("010") == "10" and parse_k(" all") == "all"


def test_repeated_draws_keep_the_folds_and_draw_other_shots():
    folds = make_folds(60, 5, seed=42)
    first, again, other = (draw_shots(folds, 5, 42, d) for d in (0, 0, 1))
    assert first == draw_shots(folds, 5, 42) == again                # draw 0: the paper's
    assert other != first
    for (tr, _), s in zip(folds, other):
        assert set(s) <= set(tr.tolist()) and len(set(s)) == 5
    with pytest.raises(ValueError, match="draw must be"):
        draw_shots(folds, 5, 42, -1)


def test_a_repeated_draw_and_a_partial_fold_are_stored_apart_and_said_so(experiment, tmp_path):
    import dataclasses

    exp = experiment(tmp_path)
    part = dataclasses.replace(exp, draw=1, test_per_fold=1)
    path = part.run_fold("corrected", 2, 0)
    assert path == tmp_path / "corrected" / "k2" / "draw1" / "fold0.csv"
    rows = read_results([path])
    assert len(rows) == len(part.variants) and {r["draw"] for r in rows} == {1}
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["draw"] == 1 and meta["test_per_fold"] == 1 and meta["n_test"] == 1
    assert part.shots("2", 0) == draw_shots(part.folds, 2, 42, 1)[0] != exp.shots("2", 0)
    assert "draw" not in exp.identity(PRESETS["corrected"], "2", 0)   # old folds still match


def test_unknown_variants_are_refused_before_any_work(experiment, tmp_path):
    import dataclasses

    with pytest.raises(ValueError, match="unknown variants"):
        dataclasses.replace(experiment(tmp_path), variants=("box", "boxes"))


def test_decoding_is_recorded_and_either_way_scores_the_same(tiny_backbone, synthetic_dir,
                                                             tmp_path):
    """The batched decoder (default) and SAM's own calls give the same Dice up to float
    rounding; each fold says which it used, and a fold written one way stays finished
    for the other (the choice is not part of a fold's identity)."""
    ds = open_dataset(synthetic_dir)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path / "cache", progress=False)
    runs = {}
    for decoding in ("batched", "sam"):
        exp = Experiment(ds, emb, tiny_backbone, tmp_path / decoding, dataset_name="synthetic",
                         progress=False, decoding=decoding)
        path = exp.run_fold("corrected", 2, 0)
        assert json.loads(path.with_suffix(".json").read_text())["decoding"] == decoding
        runs[decoding] = [float(r["dice"]) for r in csv.DictReader(open(path))]
        other = Experiment(ds, emb, tiny_backbone, tmp_path / decoding,
                           dataset_name="synthetic", progress=False,
                           decoding={"batched": "sam", "sam": "batched"}[decoding])
        assert other.finished(PRESETS["corrected"], "2", 0) is not None
    np.testing.assert_allclose(runs["batched"], runs["sam"], atol=1e-3)
    with pytest.raises(ValueError, match="decoding must be"):
        Experiment(ds, emb, tiny_backbone, tmp_path, progress=False, decoding="fast")


def test_folds_run_side_by_side_keep_every_k_in_the_plan(experiment, tmp_path, monkeypatch):
    """`make reproduce JOBS=n`: folds of different k write folds.json at the same time.
    Each reads the old plan, adds its k and writes it back, slowly here so that the two
    overlap; the lock makes the second wait, so neither k is lost."""
    import threading
    import time

    from selfprompt.evaluation import protocol

    write = protocol.atomic_write_text

    def slow_write(path, text):
        time.sleep(0.3)
        write(path, text)

    monkeypatch.setattr(protocol, "atomic_write_text", slow_write)
    exps = [experiment(tmp_path), experiment(tmp_path)]
    threads = [threading.Thread(target=e.write_plan, args=([k],))
               for e, k in zip(exps, ("2", "3"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert list(json.loads((tmp_path / "folds.json").read_text())["shots"]) == ["2", "3"]


def test_the_run_folder_counts_a_fold_only_with_its_json_and_the_same_identity(tmp_path):
    """The store alone, without computing anything: CSV first, JSON last, identity kept."""
    from selfprompt.evaluation.protocol import RunFolder

    store = RunFolder(tmp_path, draw=2)
    path = store.fold_path("corrected", "2", 1)
    assert path == tmp_path / "corrected" / "k2" / "draw2" / "fold1.csv"
    assert store.finished(path, {"seed": 42}) is None
    store.write_fold(path, [], {"seed": 42, "box_draws": 0})
    assert store.finished(path, {"seed": 42})["box_draws"] == 0
    assert store.finished(path, {"seed": 7}) is None
    path.with_suffix(".json").unlink()                          # interrupted before the marker
    assert store.finished(path, {"seed": 42}) is None
