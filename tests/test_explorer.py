"""The explorer's callbacks, driven without a browser: set a control's value as the
browser would, check the recomputed masks and scores against the pipeline's own
functions, and that only the cheap steps are redone."""
from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("ipyevents")

from selfprompt.teaching.explorer import Explorer, ExplorerState, Settings  # noqa: E402
from selfprompt.metrics import dice, iou  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "07_explore.ipynb"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("explorer-cache")


@pytest.fixture(scope="module")
def shared_state(synthetic_dir, tiny_checkpoint, cache) -> ExplorerState:
    """One state for the module: its caches (backbone, embeddings, fits, decodes) are
    keyed by the settings, so tests that start from fresh settings share them safely."""
    return ExplorerState(Settings(data_dir=str(synthetic_dir), backbone="tiny",
                                  checkpoint=str(tiny_checkpoint), cache_dir=str(cache)))


@pytest.fixture
def explorer(shared_state, synthetic_dir, tiny_checkpoint, cache, tmp_path) -> Explorer:
    shared_state.s = Settings(data_dir=str(synthetic_dir), limit=8, backbone="tiny",
                              checkpoint=str(tiny_checkpoint), k=3, cache_dir=str(cache),
                              output_dir=str(tmp_path / "out"))
    shared_state.update()  # fill the data-dependent defaults (training draw, image)
    return Explorer(shared_state, {"synthetic": str(synthetic_dir)})


def _pipeline_view(ex: Explorer):
    """What the method's own functions give for the explorer's current settings."""
    from selfprompt.pipeline import coarse_mask, segment

    st = ex.state
    i = st.names.index(st.s.image)
    features, size = st.embeddings()[i], ex.view.truth.shape
    preset = st.s.preset_obj()
    clf = copy.copy(st.classifier())  # the pipeline thresholds with the classifier's own
    clf.threshold = preset.threshold
    coarse = coarse_mask(clf, features, size, preset)
    seg = segment(clf, st._backbone()[1], features, size, preset,
                  np.random.default_rng(st.s.seed))
    return coarse, seg


def test_threshold_slider_recomputes_mask_and_dice(explorer):
    fits = explorer.state.fits
    explorer.controls["threshold"].value = 0.2
    low = explorer.view
    explorer.controls["threshold"].value = 0.8
    high = explorer.view
    assert explorer.last_error == ""
    assert low.coarse.sum() > high.coarse.sum()  # a higher threshold keeps fewer pixels
    for view in (low, high):
        d, j = view.scores["linear"]
        assert d == pytest.approx(dice(view.prompts.cleaned, view.truth))
        assert j == pytest.approx(iou(view.prompts.cleaned, view.truth))
    assert "sp-dice" in explorer.scores.value and f"{high.scores['linear'][0]:.4f}" in \
        explorer.scores.value
    assert explorer.state.fits == fits  # a threshold never refits the classifier


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_view_matches_the_pipeline(explorer, threshold):
    explorer.controls["threshold"].value = threshold
    coarse, seg = _pipeline_view(explorer)
    np.testing.assert_array_equal(explorer.view.coarse, coarse)
    for variant in ("linear", "point", "box", "point_box"):
        np.testing.assert_array_equal(explorer.view.masks[variant], seg.masks[variant], variant)


def test_cheap_changes_do_not_refit(explorer):
    st = explorer.state
    fits = st.fits
    for name, value in [("erode_iterations", 1), ("dilate_iterations", 2), ("kernel_size", 3),
                        ("max_widen", 40), ("n_points", 2), ("prompts", "point"),
                        ("prompts", "box"), ("index", 4)]:
        explorer.controls[name].value = value
        assert getattr(st.s, "image" if name == "index" else name) == \
            (st.names[4] if name == "index" else value)
        assert explorer.last_error == ""
    assert st.fits == fits
    assert explorer.view.selected == "box"
    assert explorer.view.prompts.points.shape[0] <= 2


def test_training_changes_refit(explorer):
    st = explorer.state
    fits = st.fits
    explorer.controls["k"].value = 4
    assert st.fits == fits + 1 and len(st.s.train_images) == 4
    assert explorer.controls["train_images"].value == tuple(st.s.train_images)
    explorer.controls["train_images"].value = tuple(st.names[:2])
    assert st.fits == fits + 2 and st.s.k == 2 and explorer.controls["k"].value == 2
    explorer.controls["preset"].value = "paper"  # stretched labels: another classifier
    assert st.fits == fits + 3


def test_preset_brings_its_knobs(explorer):
    explorer.controls["erode_iterations"].value = 0
    explorer.controls["preset"].value = "paper"
    assert explorer.state.s.erode_iterations == 3
    assert explorer.controls["erode_iterations"].value == 3


def test_clicks_prompt_sam(explorer):
    h, w = explorer.view.truth.shape
    explorer.controls["prompts"].value = "none"
    assert explorer.view.selected == "clicks" and not explorer.view.masks["clicks"].any()
    ys, xs = np.nonzero(explorer.view.truth)
    explorer.add_point(xs[len(xs) // 2], ys[len(ys) // 2], positive=True)
    one = explorer.view.masks["clicks"]
    assert one.any() and "clicks" in explorer.view.scores
    # a click as ipyevents reports it: panel pixels, scaled back to image pixels
    explorer.click_label.value = 0
    explorer._on_click({"event": "click", "dataX": 5, "dataY": 5})
    assert explorer.state.s.clicks[-1][2] == 0 and len(explorer.state.s.clicks) == 2
    assert explorer.state.s.clicks[-1][0] == round(5 * w / 320)
    explorer.clear_points()
    assert explorer.state.s.clicks == [] and not explorer.view.masks["clicks"].any()


def test_one_class_shots_are_reported_not_raised(explorer, synthetic_dir):
    st = explorer.state
    before = list(st.s.train_images)
    # an all-background "mask" folder is not at hand; simulate with a failing fit instead
    st._clf = None
    original = st.classifier

    def broken():
        raise ValueError("the k training masks hold only one class")
    st.classifier = broken
    explorer.controls["threshold"].value = 0.4
    assert "one class" in explorer.last_error and "one class" in explorer.status.value
    st.classifier = original
    explorer.controls["threshold"].value = 0.5
    assert st.s.train_images == before


def _parameter_names() -> list[str]:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return [t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
            for t in node.targets]


def test_saved_files_and_parameter_names(explorer):
    import yaml

    explorer.controls["threshold"].value = 0.35
    explorer.add_point(10, 12, positive=False)
    fig, params = explorer.save_figure(), explorer.save_settings()
    assert fig.suffix == ".png" and fig.stat().st_size > 10_000
    assert fig.read_bytes()[:4] == b"\x89PNG"
    saved = yaml.safe_load(params.read_text())
    assert list(saved) == _parameter_names()  # every key is a parameter of notebook 07
    assert saved["threshold"] == 0.35 and saved["clicks"] == [[10, 12, 0]]
    assert str(params) in explorer.status.value


@pytest.mark.slow
def test_papermill_round_trip(explorer, tmp_path):
    """Saved settings, replayed by papermill through notebook 07, give the same state."""
    papermill = pytest.importorskip("papermill")
    import nbformat

    explorer.controls["threshold"].value = 0.4
    explorer.controls["erode_iterations"].value = 1
    explorer.controls["prompts"].value = "point"
    explorer.add_point(30, 40, positive=True)
    expected = explorer.report()
    params = explorer.save_settings(tmp_path / "params.yaml")
    out = tmp_path / "out.ipynb"
    import yaml

    papermill.execute_notebook(str(NOTEBOOK), str(out), yaml.safe_load(params.read_text()),
                               cwd=str(NOTEBOOK.parent), kernel_name="python3",
                               progress_bar=False)
    outputs = [o.get("text", "") for c in nbformat.read(out, 4).cells if c.cell_type == "code"
               for o in c.get("outputs", [])]
    line = next(t for t in outputs if t.startswith('{"settings"'))
    got = json.loads(line)
    assert got["settings"] == expected["settings"]
    assert got["selected"] == expected["selected"] == "clicks"
    assert set(got["scores"]) == set(expected["scores"])
    for variant, values in expected["scores"].items():
        assert got["scores"][variant] == pytest.approx(values, abs=1e-6), variant


def test_the_explorer_starts_at_the_backbones_best_prompt(synthetic_dir, tiny_checkpoint, cache):
    from selfprompt.teaching.explorer import default_prompts

    assert default_prompts("medsam_lite")[0] == "box"          # trained with boxes only
    assert default_prompts("vit_t")[0] == default_prompts("vit_b")[0] == "both"
    assert "box prompts only" in default_prompts("medsam_lite")[1]
    state = ExplorerState(Settings(data_dir=str(synthetic_dir), limit=8, backbone="tiny",
                                   checkpoint=str(tiny_checkpoint), cache_dir=str(cache)))
    assert state.s.prompts == "both"                             # tiny: SAM's architecture
    state.update(prompts="point")
    assert state.s.prompts == "point"                            # a choice stays a choice
    state.update(backbone="medsam_lite", checkpoint="")
    assert state.s.prompts == "box"                              # a new backbone: its best
    # the notebook leaves the choice to the backbone
    import nbformat
    params = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "07_explore.ipynb",
                           as_version=4).cells[2].source
    assert '\nprompts = ""' in "\n" + params and '\nbackbone = "medsam_lite"' in "\n" + params
