"""The report: finding runs, de-duplicating them, tables beside the paper, files written."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from selfprompt.evaluation import report
from selfprompt.evaluation.results import COLUMNS
from selfprompt.evaluation.results import summarise

METHOD_DOC = Path(__file__).resolve().parents[1] / "docs" / "method.md"


def _write_fold(root: Path, dataset="kvasir", backbone="vit_b", preset="paper", k="20",
                fold=0, dice=0.6, empty=(), images=("a", "b")) -> Path:
    path = root / dataset / backbone / preset / f"k{k}" / f"fold{fold}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for name in images:
            for variant in ("linear", "point", "box", "point_box"):
                is_empty = name in empty
                w.writerow({"dataset": dataset, "image": name, "fold": fold, "k": k, "seed": 42,
                            "preset": preset, "backbone": backbone, "variant": variant,
                            "dice": 0.0 if is_empty else dice, "iou": 0.0 if is_empty else dice,
                            "empty_prediction": is_empty,
                            "counted": not (is_empty and preset == "paper")})
    path.with_suffix(".json").write_text(json.dumps({"fold": fold}))
    return path


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for fold, dice in ((0, 0.60), (1, 0.64)):
        _write_fold(root, fold=fold, dice=dice, empty=("b",) if fold == 1 else ())
        _write_fold(root, preset="corrected", fold=fold, dice=dice - 0.1,
                    empty=("b",) if fold == 1 else ())
        _write_fold(root, k="10", fold=fold, dice=dice - 0.05)
    return root


def test_unfinished_folds_are_not_reported(runs):
    half = _write_fold(runs, k="40", fold=0)
    half.with_suffix(".json").unlink()  # interrupted between CSV and JSON
    assert {r["k"] for r in report.load_runs(runs)} == {"10", "20"}


def test_same_fold_twice_counts_once_newest_wins(runs, caplog):
    copy = _write_fold(runs / "notebooks", fold=0, dice=0.9)
    old = copy.stat().st_mtime - 100
    os.utime(copy, (old, old))
    rows = report.load_runs(runs)
    assert len([r for r in rows if r["preset"] == "paper" and r["k"] == "20"]) == 2 * 2 * 4
    assert "found twice" in caplog.text
    assert all(r["dice"] != 0.9 for r in rows)


def test_method_table_sets_ours_beside_the_paper(runs):
    tables = report.build(runs)
    row = next(r for r in tables["methods"]
               if r["method"] == "self-prompt, point + box" and r["dataset"] == "kvasir")
    # paper preset drops the empty image of fold 1 (D2): pooled over 3 counted images
    assert row["ours"] == pytest.approx(100 * (0.60 * 2 + 0.64) / 3, abs=0.01)
    assert row["paper"] == 62.78
    assert row["diff"] == pytest.approx(row["ours"] - 62.78, abs=0.01)
    isic = [r for r in tables["methods"] if r["dataset"] == "isic2018"]
    assert all(r["ours"] is None and r["paper"] is not None for r in isic)


def test_shots_and_preset_tables(runs):
    tables = report.build(runs)
    shots = {(r["preset"], r["k"], r["variant"]): r for r in tables["shots"]}
    assert [k for p, k, v in shots if p == "paper" and v == "linear"] == ["10", "20"]
    assert shots[("paper", "20", "point_box")]["folds"] == 2
    assert shots[("paper", "20", "point_box")]["images"] == "3/4"
    assert shots[("paper", "20", "point_box")]["paper"] == 62.78
    assert shots[("paper", "10", "point_box")]["paper"] is None  # no Kvasir by-shots numbers
    presets = {(r["k"], r["variant"]): r for r in tables["presets"]}
    assert set(presets) == {("20", v) for v in ("box", "linear", "point", "point_box")}
    one = presets[("20", "point_box")]
    assert one["left_out_by_paper"] == 1
    assert one["diff"] == pytest.approx(one["corrected_preset"] - one["paper_preset"], abs=0.01)


def test_isic_shots_line_up_with_the_paper(tmp_path):
    _write_fold(tmp_path, dataset="isic2018", k="all", dice=0.7)
    rows = report.shots_table(summarise(report.load_runs(tmp_path)))
    got = {r["variant"]: r["paper"] for r in rows}
    assert got == {"linear": 65.62, "point": 61.76, "box": 55.03, "point_box": 69.51}


def test_write_report_files(runs, tmp_path):
    paths = report.write_report(runs, tmp_path / "reports")
    text = paths["report"].read_text()
    assert "check them against the paper's tables" in text
    assert "| self-prompt, point + box | kvasir |" in text
    for name in ("summary", "methods", "shots", "presets"):
        assert paths[name].exists() and paths[name].stat().st_size > 0
    figure = tmp_path / "reports" / "figures" / "dice_vs_k_kvasir_vit_b.png"
    assert figure.exists() and figure.read_bytes()[:4] == b"\x89PNG"
    assert "figures/dice_vs_k_kvasir_vit_b.png" in text


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="make reproduce"):
        report.build(tmp_path)


def test_fold_cases():
    rows = [{"image": n, "variant": "point_box", "dice": d, "empty_prediction": d == 0,
             "counted": d > 0} for n, d in (("a", 0.9), ("b", 0.0), ("c", 0.5))]
    cases = report.fold_cases(rows, n=1, lesions={"a": 1, "b": 1, "c": 2})
    assert cases["best"][0]["image"] == "a" and cases["worst"][0]["image"] == "b"
    assert cases["empty_coarse"] == ["b"] and cases["left_out"] == ["b"]
    assert cases["several_lesions"] == ["c"] and cases["dice_several"] == 0.5
    assert cases["dice_single"] == 0.45


def test_lesion_counts_of_some_images_are_those_of_all(synthetic_dir):
    from selfprompt.datasets.reader import open_dataset
    from selfprompt.teaching.notebook import lesion_counts

    ds = open_dataset(synthetic_dir)
    every = lesion_counts(ds)
    assert sorted(every) == sorted(s.name for s in ds.samples)
    assert all(n >= 0 for n in every.values()) and max(every.values()) >= 1
    some = [ds.samples[i].name for i in (7, 2)]
    assert lesion_counts(ds, images=some) == {n: every[n] for n in some}


def test_paper_numbers_match_the_method_page():
    text = METHOD_DOC.read_text()
    for method, by_data in report.PAPER_METHODS.items():
        assert f"| {method} | {by_data['kvasir']:.2f} | {by_data['isic2018']:.2f} |" in text
    for k, values in report.PAPER_SHOTS["isic2018"].items():
        line = " / ".join(f"{values[v]:.2f}" for v in ("linear", "point", "box", "point_box"))
        assert f"{k}: {line}" in text


def test_several_data_sets_get_a_table_each(runs, tmp_path):
    _write_fold(runs, dataset="cvc-clinicdb", fold=0, dice=0.7)
    text = report.write_report(runs, tmp_path / "out")["report"].read_text()
    shots = text.split("## Variant x k")[1].split("\n## ")[0]
    assert "### cvc-clinicdb" in shots and "### kvasir" in shots
    cvc = shots.split("### cvc-clinicdb")[1].split("###")[0]
    assert "| cvc-clinicdb |" in cvc and "| kvasir |" not in cvc


REFERENCE = Path(__file__).resolve().parents[1] / "reports" / "reference" / "kvasir"


@pytest.mark.parametrize("backbone", ["medsam_lite", "vit_t"])
def test_committed_reference_tables_are_the_summaries_of_the_committed_rows(backbone,
                                                                            tmp_path):
    """The committed sweep's tables (every ± quoted in docs/reference.md and the README)
    are recomputed from its committed per-image rows and must equal them byte for byte."""
    import shutil

    from selfprompt.evaluation.results import SHOTS_COLUMN, read_results_gz

    committed = REFERENCE / backbone
    runs = tmp_path / "runs"
    (runs / "all").mkdir(parents=True)
    with open(runs / "all" / "fold0.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS + [SHOTS_COLUMN], extrasaction="ignore")
        w.writeheader()
        w.writerows(read_results_gz(committed / "results.csv.gz"))
    (runs / "all" / "fold0.json").write_text("{}")
    shutil.copyfile(committed / "folds.json", runs / "folds.json")
    report.write_report(runs, tmp_path / "out", k="20")
    for name in ("summary.csv", "table_methods.csv", "table_shots.csv", "table_presets.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (committed / name).read_bytes(), name
