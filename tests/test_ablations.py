"""Ablation studies: run on the protocol's folds, resumable, summarised into tables."""
from collections import defaultdict
import json
from pathlib import Path

import numpy as np
import pytest

from selfprompt.evaluation import ablations
from selfprompt.evaluation.ablations import (STUDIES, Study, comparison_table, run_study,
                                             shots_curve, write)
from selfprompt.shots import SHOT_STRATEGIES
from selfprompt.strategies import STRATEGIES
from selfprompt.presets import VARIANTS, get_preset
from selfprompt.evaluation.results import COLUMNS


def test_every_study_names_known_presets_and_variants():
    for study in STUDIES.values():
        for preset in study.presets:
            get_preset(preset)
        assert set(study.variants) <= set(VARIANTS) | set(STRATEGIES) | {"auto"}, study.name
        assert set(study.shot_strategies) <= set(SHOT_STRATEGIES), study.name
    for _, _, study, variant in ablations.COMPARISON:
        assert study is None or variant in STUDIES[study].variants


def row(k, variant, fold, draw, dice, preset="corrected"):
    return {"dataset": "d", "image": f"{fold}-{draw}-{dice}", "fold": fold, "k": k,
            "seed": 42, "preset": preset, "backbone": "b", "variant": variant, "dice": dice,
            "iou": dice, "empty_prediction": False, "counted": True, "draw": draw}


def test_shots_curve_separates_the_spread_over_folds_from_the_spread_over_draws():
    # draw 0: folds at 0.4 and 0.6; draw 1: folds at 0.6 and 0.8 (one image each)
    rows = [row("5", "box", f, d, 0.4 + 0.2 * f + 0.2 * d) for f in (0, 1) for d in (0, 1)]
    (c,) = shots_curve(rows)
    sd = round(100 * np.std([0.4, 0.6], ddof=1), 2)          # samples of two: ddof=1
    assert c["dice"] == 60.0 and c["sd_folds"] == sd and c["sd_draws"] == sd
    assert (c["min_unit"], c["max_unit"], c["draws"], c["folds"]) == (40.0, 80.0, 2, 2)
    # another cross-validation seed's fold 0 is another fold, not more images of fold 0
    (c,) = shots_curve(rows + [{**r, "seed": 7, "dice": r["dice"] + 0.1} for r in rows])
    assert (c["folds"], c["draws"], c["sd_folds"]) == (4, 2, sd)


@pytest.fixture(scope="module")
def studies(tiny_backbone, synthetic_dir, tmp_path_factory):
    from selfprompt.datasets.reader import open_dataset
    from selfprompt.embeddings import embed_dataset

    ds = open_dataset(synthetic_dir)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path_factory.mktemp("cache"), progress=False)
    root = tmp_path_factory.mktemp("ablations")
    small = {"baselines": Study("baselines", "?", ("corrected",), ("2",),
                                ("box", "point_box", "no_prompt", "gt_point_box")),
             "shots": Study("shots", "?", ("corrected",), ("1", "all"), ("linear",), (0, 1))}
    paths = {name: run_study(s, ds, emb, tiny_backbone, root, "synthetic", folds=[0, 1],
                             test_per_fold=1, progress=False) for name, s in small.items()}
    return root, paths, (ds, emb)


def test_a_study_writes_one_resumable_fold_per_cell(studies, tiny_backbone):
    root, paths, (ds, emb) = studies
    # k = all has one draw only (every training image, whatever the seed)
    assert len(paths["baselines"]) == 2 and len(paths["shots"]) == 2 * 2 + 2
    assert not (root / "shots" / "corrected" / "kall" / "draw1").exists()
    assert (root / "shots" / "corrected" / "k1" / "draw1" / "fold0.csv").exists()
    stamp = [p.stat().st_mtime_ns for p in paths["baselines"]]
    again = run_study(Study("baselines", "?", ("corrected",), ("2",),
                            ("box", "point_box", "no_prompt", "gt_point_box")),
                      ds, emb, tiny_backbone, root, "synthetic", folds=[0, 1],
                      test_per_fold=1, progress=False)
    assert [p.stat().st_mtime_ns for p in again] == stamp     # finished: not recomputed


def test_write_fills_the_comparison_and_keeps_every_row_and_fold(studies, tmp_path):
    root, _, _ = studies
    paths = write(root, tmp_path / "out", k="2")
    table = {r["variant"]: r for r in comparison_table(root, k="2")}
    assert table["no_prompt"]["ours"] is not None and table["no_prompt"]["paper"] == 52.66
    assert table["no_prompt"]["diff"] == round(table["no_prompt"]["ours"] - 52.66, 2)
    assert "make ablations STUDIES=finetune" in table["ft_box"]["note"]
    page = paths["page"].read_text()         # the page says what its ± and p-values are
    assert "ddof=1" in page and "Holm" in page and "95 % t interval" in page
    baselines = {r["variant"]: r for r in ablations.variant_table(
        root, "baselines", ("baselines", "point_box"))}
    assert baselines["point_box"]["diff"] is None           # not against itself
    box = baselines["box"]
    assert box["versus"] == "point_box" and box["units"] == 2 and box["images"] == 2
    assert box["verdict"] in ("ahead", "behind", "no difference shown")
    import gzip

    lines = gzip.decompress(paths["results"].read_bytes()).decode().splitlines()
    assert len(lines) == 1 + 2 * 4 + 6                         # header + rows, none lost
    folds = [json.loads(x) for x in paths["folds"].read_text().splitlines()]
    assert {f["study"] for f in folds} == {"baselines", "shots"} and len(folds) == 8
    assert all(f["test_per_fold"] == 1 for f in folds)
    prov = json.loads(paths["provenance"].read_text())
    assert prov["studies"]["shots"]["folds"] == 6 and prov["test_per_fold"] == [1]
    # seconds an image, by part: the mean over the studies' folds (one image each here)
    base = [f["seconds_per_image"] for f in folds if f["study"] == "baselines"]
    assert prov["studies"]["baselines"]["seconds_per_image"] == {
        part: pytest.approx(np.mean([b[part] for b in base]), abs=1e-4)
        for part in ("gt_point_box", "no_prompt", "self_prompt")}
    assert prov["command"].startswith("make reference-ablations")
    beyond = json.loads(write(root, tmp_path / "beyond", k="2", studies=("selection",))
                        ["provenance"].read_text())
    assert beyond["command"].startswith("make reference-beyond")
    page = paths["page"].read_text()
    assert "## shots" in page and "figures/shots.png" in page
    assert (tmp_path / "out" / "figures" / "shots.png").exists()
    assert np.isfinite([r["dice"] for r in ablations.shots_curve(
        ablations.study_rows(root, "shots"))]).all()


def test_the_main_report_shows_the_comparison_of_every_finished_ablation(studies, tmp_path):
    from selfprompt.evaluation.report import ablation_sections

    root, _, _ = studies
    (tmp_path / "synthetic").mkdir()
    (tmp_path / "synthetic" / "tiny").symlink_to(root, target_is_directory=True)
    (tmp_path / "notebooks" / "x").mkdir(parents=True)         # notebook runs: not reported
    (section,) = ablation_sections(tmp_path, k="2")
    assert section.startswith("## The paper's comparison: synthetic, tiny")
    assert "| SAM without a prompt | no_prompt | 52.66 |" in section
    assert ablation_sections(tmp_path / "nothing") == []


REFERENCE = Path(__file__).resolve().parents[1] / "reports" / "reference" / "kvasir" / "medsam_lite"


def test_committed_ablations_repeat_the_reference_sweep_image_for_image():
    """The studies re-decode the paper's variants on the reference's folds and shots: every
    such row must equal the committed sweep's (same code path, seeds and cache)."""
    from selfprompt.evaluation.reference import read_results_gz

    sweep = {(r["preset"], r["k"], r["image"], r["variant"]): r["dice"]
             for r in read_results_gz(REFERENCE / "results.csv.gz")}
    rows = [r for r in read_results_gz(REFERENCE / "ablations" / "results.csv.gz")
            if r["draw"] == 0 and (r["preset"], r["k"], r["image"], r["variant"]) in sweep]
    assert len(rows) >= 1000
    assert all(r["dice"] == sweep[(r["preset"], r["k"], r["image"], r["variant"])] for r in rows)


def _runs_from_committed(results_gz: Path, studies: dict, runs: Path) -> list[str]:
    """A run folder rebuilt from committed per-image rows, one fold file per study (each
    row once, filed under every study whose presets, k, variants, draws and shots it
    fits), for the tables to be computed again; returns the studies that got rows."""
    import csv

    from selfprompt.evaluation.reference import read_results_gz
    from selfprompt.evaluation.results import SHOTS_COLUMN

    rows = {(r["preset"], r["k"], r.get("seed"), r["draw"], r["fold"], r["image"],
             r["variant"], r.get(SHOTS_COLUMN) or "random"): r
            for r in read_results_gz(results_gz)}.values()
    filled = []
    for name, study in studies.items():
        mine = [r for r in rows if r["preset"] in study.presets and r["k"] in study.ks
                and r["variant"] in study.variants and r["draw"] in study.draws
                and (r.get(SHOTS_COLUMN) or "random") in study.shot_strategies
                and r.get("seed", 42) in (study.seeds or (42,))]
        # a study scored every one of its variants on each of its images: an image that
        # lacks one was another study's (which scored more test images, or other variants)
        seen = defaultdict(set)
        for r in mine:
            seen[(r["preset"], r["k"], r.get("seed"), r["draw"], r["fold"],
                  r.get(SHOTS_COLUMN) or "random", r["image"])].add(r["variant"])
        mine = [r for r in mine if seen[(r["preset"], r["k"], r.get("seed"), r["draw"],
                                         r["fold"], r.get(SHOTS_COLUMN) or "random",
                                         r["image"])] >= set(study.variants)]
        if not mine:
            continue
        filled.append(name)
        path = runs / name / "fold0.csv"
        path.parent.mkdir(parents=True)
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS + [SHOTS_COLUMN])
            w.writeheader()
            w.writerows(mine)
        path.with_suffix(".json").write_text("{}")
    return filled


def test_committed_ablation_tables_are_the_summaries_of_the_committed_rows(tmp_path):
    import csv

    # a row two studies share (the same image, variant, k and draw) is the same number in
    # both (the test above), so each is kept once
    _runs_from_committed(REFERENCE / "ablations" / "results.csv.gz", STUDIES, tmp_path / "runs")
    for name in ("comparison", "strategies", "classifiers", "shots"):
        table = {"comparison": lambda: comparison_table(tmp_path / "runs"),
                 "strategies": lambda: ablations.variant_table(tmp_path / "runs", "strategies",
                                                               ("baselines", "box")),
                 "classifiers": lambda: ablations.variant_table(
                     tmp_path / "runs", "classifiers", versus_preset="corrected"),
                 "shots": lambda: shots_curve(ablations.study_rows(tmp_path / "runs", "shots"))
                 }[name]()
        with open(REFERENCE / "ablations" / f"table_{name}.csv", newline="") as f:
            committed = list(csv.DictReader(f))
        fmt = (lambda v: "" if v is None else str(v))
        mean = "ours" if name == "comparison" else "dice"
        assert [fmt(r[mean]) for r in table] == [r[mean] for r in committed], name


def test_selection_keeps_shot_strategies_apart_and_auto_choices_are_counted(tmp_path):
    rows = [row("5", "box", f, d, 0.5 + 0.1 * d) for f in range(2) for d in range(2)]
    rows += [{**row("5", "box", f, 0, 0.9), "shots": "kcenter"} for f in range(2)]
    curve = ablations.selection_curve(rows)
    assert [(c["shots"], c["dice"], c["draws"]) for c in curve] == [
        ("random", 55.0, 2), ("kcenter", 90.0, 1)]
    for fold, (prompt, t) in enumerate([("box", 0.5), ("box", 0.5), ("linear", 0.3)]):
        path = tmp_path / "auto" / "corrected" / "k10" / f"fold{fold}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"preset": {"name": "corrected"}, "k": "10", "auto": {
            "prompt": prompt, "threshold": t, "scores": {f"{prompt}@{t:g}": 0.6},
            "seconds": 2.0}}))
    choices = ablations.auto_choices(tmp_path)
    assert [(c["choice"], c["folds"]) for c in choices] == [("box@0.5", "2/3"),
                                                            ("linear@0.3", "1/3")]
    assert choices[0]["inner_dice"] == 60.0 and choices[0]["seconds_per_fold"] == 2.0


def test_a_selection_study_runs_each_strategy_apart_and_tabulates_them(
        studies, tiny_backbone, tmp_path):
    _, _, (ds, emb) = studies
    study = Study("selection", "?", ("corrected",), ("2",), ("linear",), draws=(0, 1),
                  shot_strategies=("random", "kcenter"))
    paths = run_study(study, ds, emb, tiny_backbone, tmp_path, "synthetic", folds=[0],
                      test_per_fold=1, progress=False)
    base = tmp_path / "selection" / "corrected" / "k2"
    assert paths == [base / "fold0.csv", base / "draw1" / "fold0.csv",
                     base / "kcenter" / "fold0.csv"]
    curve = ablations.selection_curve(ablations.study_rows(tmp_path, "selection"))
    assert [(c["shots"], c["draws"], c["images"]) for c in curve] == [
        ("random", 2, 2), ("kcenter", 1, 1)]


def _row(fold, image, variant, dice, shots=None, draw=0, k="5"):
    row = {"preset": "corrected", "k": k, "fold": fold, "image": image, "variant": variant,
           "dice": dice, "counted": True, "draw": draw}
    if shots:
        row["shots"] = shots
    return row


def test_paired_tables_compare_the_same_images():
    from selfprompt.evaluation.ablations import paired_table, selection_vs_random

    rows = [_row(f, i, "box", 0.5) for f in (0, 1) for i in "ab"]
    rows += [_row(f, i, "persam", 0.5 + (0.2 if f == 0 else -0.1)) for f in (0, 1) for i in "ab"]
    rows.append(_row(1, "c", "persam", 0.9))           # no box on c: not a pair
    [line] = paired_table(rows, "box")
    # the units are the folds: +20 and -10 points
    assert (line["variant"], line["versus"], line["units"], line["images"]) == (
        "persam", "box", 2, 4)
    assert line["diff"] == pytest.approx(5.0) and line["ci_low"] < 0 < line["ci_high"]
    assert line["p_holm"] == line["p"] and line["verdict"] == "no difference shown"
    # chosen shots against the mean of the random draws on each image
    rows = [_row(0, i, "box", d, draw=dr) for dr, d in ((0, 0.4), (1, 0.6)) for i in "ab"]
    rows += [_row(0, "a", "box", 0.8, shots="medoids"), _row(0, "b", "box", 0.3, shots="medoids")]
    [line] = selection_vs_random(rows)
    assert (line["shots"], line["versus"], line["units"], line["images"]) == (
        "medoids", "random", 1, 2)
    assert line["diff"] == pytest.approx(5.0) and line["p"] is None    # one fold: no test
    assert line["verdict"] == "no difference shown"


@pytest.mark.parametrize("backbone, committed_studies", [
    ("medsam_lite", ["selection", "auto", "persam"]), ("vit_t", ["selection", "auto"])])
def test_committed_beyond_tables_are_the_summaries_of_the_committed_rows(
        backbone, committed_studies, tmp_path):
    """Every table of the study beyond the paper (what docs/reference.md and the README
    quote) is recomputed from its committed per-image rows and must equal the committed
    one; auto's choices come from the folds' JSON, not from rows, and are left out."""
    committed = REFERENCE.parent / backbone / "beyond"
    studies = _runs_from_committed(committed / "results.csv.gz",
                                   {n: STUDIES[n] for n in ablations.BEYOND}, tmp_path / "runs")
    assert studies == committed_studies
    write(tmp_path / "runs", tmp_path / "out", studies=tuple(studies))
    tables = sorted(p.name for p in committed.glob("table_*.csv")
                    if p.name != "table_auto_choices.csv")
    assert tables
    for name in tables:
        ours, theirs = (_cells(folder / name) for folder in (tmp_path / "out", committed))
        assert len(ours) == len(theirs), name
        for a, b in zip(ours, theirs):
            assert a == pytest.approx(b, abs=1e-5), (name, a, b)


def _cells(path: Path) -> list[list]:
    """A table's cells, numbers as floats: a cell two studies of one folder share (the
    box at k = 20, fold seed 42, in selection, auto and persam) is one row of each in the
    committed rows, which agree to 2.4e-5 Dice (SAM's decoder batches other prompts beside
    it); the rebuilt folder keeps one of them, so a p-value may move in its sixth digit."""
    def cell(v: str):
        try:
            return float(v)
        except ValueError:
            return v
    return [[cell(v) for v in line.split(",")] for line in path.read_text().splitlines()]


def _tree(root: Path) -> dict[str, str]:
    """Every fold CSV and plan under ``root``, by relative path (the CSVs' text: rows)."""
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*"))
            if p.suffix == ".csv" or p.name == "folds.json"}


def test_fold_seeds_run_in_subfolders_carry_their_seed_and_resume(
        studies, tiny_backbone, tmp_path):
    from selfprompt.evaluation.results import summarise

    _, _, (ds, emb) = studies
    study = Study("twice", "?", ("corrected",), ("2",), ("linear",), seeds=(42, 43))
    paths = run_study(study, ds, emb, tiny_backbone, tmp_path, "synthetic", folds=[0, 1],
                      test_per_fold=2, progress=False)
    base = tmp_path / "twice"
    assert paths == [base / "corrected" / "k2" / f"fold{f}.csv" for f in (0, 1)] + [
        base / "seed43" / "corrected" / "k2" / f"fold{f}.csv" for f in (0, 1)]
    plans = [json.loads((d / "folds.json").read_text()) for d in (base, base / "seed43")]
    assert [p["seed"] for p in plans] == [42, 43]
    assert plans[0]["folds"] != plans[1]["folds"]           # another split, other shots
    rows = ablations.study_rows(tmp_path, "twice")
    assert sorted({(r["seed"], r["fold"]) for r in rows}) == [(42, 0), (42, 1), (43, 0), (43, 1)]
    assert all(isinstance(r["seed"], int) for r in rows) and len(rows) == 8
    units = [s["fold"] for s in summarise(rows)]
    assert units == ["0@seed42", "1@seed42", "0@seed43", "1@seed43", "all"]
    # resumed: every finished fold of every seed is skipped; the command's seeds override
    stamp = [p.stat().st_mtime_ns for p in paths]
    assert [p.stat().st_mtime_ns for p in run_study(
        study, ds, emb, tiny_backbone, tmp_path, "synthetic", folds=[0, 1], test_per_fold=2,
        progress=False)] == stamp
    only = run_study(study, ds, emb, tiny_backbone, tmp_path, "synthetic", folds=[0],
                     test_per_fold=2, progress=False, seeds=[43])
    assert only == [paths[2]] and only[0].stat().st_mtime_ns == stamp[2]
    meta = [json.loads(p.with_suffix(".json").read_text()) for p in paths]
    prov = ablations.provenance([{"study": "twice", **m} for m in meta])
    assert prov["seed"] == [42, 43] and prov["studies"]["twice"]["seeds"] == [42, 43]


def test_the_protocol_seed_alone_writes_what_one_experiment_writes(
        studies, tiny_backbone, tmp_path):
    """The default (one seed, the protocol's): the same paths and rows as the protocol's
    Experiment run straight into the study's folder, no seed subfolder."""
    from selfprompt.evaluation.protocol import Experiment

    _, _, (ds, emb) = studies
    study = Study("one", "?", ("corrected",), ("2",), ("linear", "box"))
    run_study(study, ds, emb, tiny_backbone, tmp_path / "a", "synthetic", folds=[0, 1],
              test_per_fold=2, progress=False)
    exp = Experiment(ds, emb, tiny_backbone, tmp_path / "b" / "one", dataset_name="synthetic",
                     variants=study.variants, progress=False, test_per_fold=2)
    exp.write_plan(["2"])
    for fold in (0, 1):
        exp.run_fold("corrected", "2", fold)
    ours = _tree(tmp_path / "a" / "one")
    assert ours == _tree(tmp_path / "b" / "one")
    assert sorted(ours) == ["corrected/k2/fold0.csv", "corrected/k2/fold1.csv", "folds.json"]


def test_rows_without_a_seed_read_as_the_protocols_and_seeds_are_units_of_the_tables(
        tmp_path):
    from selfprompt.evaluation.ablations import paired_table
    from selfprompt.evaluation.results import load_runs

    fold = tmp_path / "s" / "fold0.csv"
    fold.parent.mkdir()
    fold.write_text("dataset,image,fold,k,preset,backbone,variant,dice,iou,empty_prediction,"
                    "counted\nd,a,0,5,corrected,b,box,0.5,0.4,False,True\n")
    fold.with_suffix(".json").write_text("{}")
    [r] = load_runs(tmp_path)
    assert r["seed"] == 42 and r["draw"] == 0
    # the same fold number and image under two seeds: two pairs, two units
    rows = [{**_row(0, "a", v, d), "seed": s} for s, d in ((42, 0.5), (43, 0.7))
            for v in ("box",)]
    rows += [{**_row(0, "a", "persam", 0.6), "seed": s} for s in (42, 43)]
    [line] = paired_table(rows, "box")
    assert line["images"] == 2 and line["units"] == 2 and line["diff"] == pytest.approx(0.0)
    assert line["ci_low"] < -10 and line["ci_high"] > 10     # +10 and -10: two units apart


def _auto_run(root: Path, rows: list[dict]) -> None:
    import csv

    path = root / "auto" / "fold0.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    path.with_suffix(".json").write_text("{}")


def test_auto_tables_put_every_candidate_the_oracle_and_the_gap_beside_auto(tmp_path):
    def r(preset, variant, dice, image):
        return {**row("5", variant, 0, 0, dice, preset), "backbone": "medsam_lite",
                "image": image}

    rows = []
    for image, shift in (("a", 0.0), ("b", 0.1)):
        rows += [r("corrected", "box", 0.6 + shift, image),
                 r("corrected", "point_box", 0.4 + shift, image),
                 r("corrected+threshold=0.3", "box", 0.7 + shift, image),
                 r("corrected+threshold=0.3", "point_box", 0.5 + shift, image),
                 r("corrected", "auto", 0.65 + shift, image),
                 r("corrected+threshold=0.3", "auto", 0.0, image)]   # not auto's rows
    _auto_run(tmp_path, rows)
    table = ablations.auto_table(tmp_path)
    assert [(t["option"], t["dice"], t["minus_auto"]) for t in table] == [
        ("auto", 70.0, None), ("box@0.5", 65.0, -5.0), ("box@0.3", 75.0, 5.0),
        ("point_box@0.5", 45.0, -25.0), ("point_box@0.3", 55.0, -15.0)]
    [oracle] = ablations.auto_oracle(tmp_path)
    assert oracle == {"k": "5", "auto": 70.0, "oracle": "box@0.3", "oracle_dice": 75.0,
                      "gap": -5.0, "own": "box@0.5", "own_dice": 65.0,
                      "auto_minus_own": 5.0, "candidates": 4}


def test_the_auto_study_scores_every_candidate_and_falls_back_at_one_shot(
        studies, tiny_backbone, tmp_path):
    from selfprompt.methods.recipe import AUTO_PROMPTS, AUTO_THRESHOLDS

    _, _, (ds, emb) = studies
    study = STUDIES["auto"]
    assert set(study.variants) == set(AUTO_PROMPTS) | {"auto"}
    assert {get_preset(p).threshold for p in study.presets} == set(AUTO_THRESHOLDS)
    assert study.ks == ("1", "2", "5", "10", "20")
    run_study(study, ds, emb, tiny_backbone, tmp_path / "runs", "synthetic", folds=[0],
              ks=["1"], test_per_fold=1, progress=False)
    paths = write(tmp_path / "runs", tmp_path / "out", studies=("auto",))
    table = ablations.auto_table(tmp_path / "runs")
    assert len(table) == 1 + len(AUTO_PROMPTS) * len(AUTO_THRESHOLDS)
    [oracle] = ablations.auto_oracle(tmp_path / "runs")
    assert oracle["gap"] == pytest.approx(oracle["auto"] - oracle["oracle_dice"], abs=0.01)
    assert oracle["gap"] <= 0 and oracle["own"] == "point_box@0.5"   # tiny: SAM's prompts
    [choice] = ablations.auto_choices(tmp_path / "runs")
    assert (choice["choice"], choice["folds"], choice["no_cv"]) == ("point_box@0.5", "1/1", 1)
    assert "table_auto_oracle.csv" in {p.name for p in paths.values()}
    assert "## auto_oracle" in paths["page"].read_text()
