"""Exercises: the solutions pass every check, and stubs and typical mistakes fail each one
with a message a student can act on (a check that cannot fail is a defect)."""
from pathlib import Path

import cv2
import nbformat
import numpy as np
import pytest

from selfprompt import exercises as ex
from selfprompt.frame import labels_stretched

FOLDER = Path(__file__).resolve().parents[1] / "notebooks" / "exercises"


def functions(path: Path) -> dict:
    """The functions the notebook's solution cells define."""
    space = {"np": np, "cv2": cv2}
    for cell in nbformat.read(path, as_version=4).cells:
        if "solution" in cell.metadata.get("tags", []):
            exec(cell.source, space)
    return space


@pytest.mark.parametrize("name", list(ex.EXERCISES))
def test_the_solution_passes_its_check(name):
    assert "pass" in ex.EXERCISES[name](functions(FOLDER / "solutions.ipynb")[name])


@pytest.mark.parametrize("name", list(ex.EXERCISES))
def test_the_students_stub_fails_with_what_to_do(name):
    stub = functions(FOLDER / "exercises.ipynb")[name]
    with pytest.raises(ex.ExerciseError, match=f"`{name}` is not written yet"):
        ex.EXERCISES[name](stub)


def _dice_nan(p, t):
    p, t = p > 0, t > 0
    with np.errstate(invalid="ignore"):                        # the NaN is the mistake
        return 2 * (p & t).sum() / (p.sum() + t.sum())


def _dice_raw(p, t):
    p, t = np.asarray(p, float), np.asarray(t, float)
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else 2 * (p * t).sum() / total


def _point_row_col(mask):
    d = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    return np.unravel_index(np.argmax(d), d.shape)


def _point_centroid(mask):
    ys, xs = np.nonzero(mask)
    return int(xs.mean()), int(ys.mean())


def _box_yx(mask, rng, max_widen=20):
    ys, xs = np.nonzero(mask)
    return np.array([ys.min(), xs.min(), ys.max(), xs.max()])


def _box_fixed(mask, rng, max_widen=20):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min() - 5, ys.min() - 5, xs.max() + 5, ys.max() + 5])


def _box_unclipped(mask, rng, max_widen=20):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min() - rng.integers(0, max_widen), ys.min() - rng.integers(0, 3),
                     xs.max() + rng.integers(0, max_widen), ys.max()])


def _box_too_wide(mask, rng, max_widen=20):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min() - max_widen, ys.min(), xs.max() + rng.integers(0, max_widen),
                     ys.max()])


def _folds_unshuffled(n, seed):
    parts = np.array_split(np.arange(n), 5)
    return [(np.setdiff1d(np.arange(n), p), p) for p in parts]


def _folds_unseeded(n, seed):
    order = np.random.default_rng().permutation(n)
    return [(np.setdiff1d(order, p), p) for p in np.array_split(order, 5)]


def _folds_leaking(n, seed):
    order = np.random.default_rng(seed).permutation(n)
    return [(order, p) for p in np.array_split(order, 5)]


def _folds_resampled(n, seed):
    rng = np.random.default_rng(seed)
    return [(np.arange(n), rng.choice(n, n // 5, replace=False)) for _ in range(5)]


MISTAKES = [
    ("five_folds", _folds_unshuffled, "shuffle first"),
    ("five_folds", _folds_unseeded, "the same seed gave another split"),
    ("five_folds", _folds_leaking, "that is a leak"),
    ("five_folds", _folds_resampled, "tested exactly once"),
    ("five_folds", lambda n, seed: [(np.arange(n), np.arange(n))] * 4, "return 5"),
    ("dice", _dice_nan, "two empty masks agree perfectly"),
    ("dice", _dice_raw, "0/255 or 0/1"),
    ("dice", lambda p, t: ((p > 0) & (t > 0)).sum() / max((p > 0).sum(), 1), "both areas"),
    ("deepest_point", _point_row_col, "that is \\(row, column\\)"),
    ("deepest_point", _point_centroid, "not the deepest point"),
    ("widened_box", _box_yx, "looks like \\[y0, x0, y1, x1\\]"),
    ("widened_box", _box_fixed, "all 50 boxes are the same"),
    ("widened_box", _box_unclipped, "left the image"),
    ("widened_box", _box_too_wide, "moved 20 pixels or more"),
    ("aligned_labels", labels_stretched, "stretched labels"),
    ("aligned_labels", lambda m: np.zeros((32, 32)), "64 x 64"),
    ("dice", lambda p, t: 1 / 0, "crashed with ZeroDivisionError"),
]


@pytest.mark.parametrize("name, wrong, message", MISTAKES,
                         ids=[f"{n}-{m[:20]}" for n, _, m in MISTAKES])
def test_a_typical_mistake_fails_with_its_own_message(name, wrong, message):
    wrong.__name__ = name
    with pytest.raises(ex.ExerciseError, match=message):
        ex.EXERCISES[name](wrong)


def test_the_committed_student_notebook_is_made_from_the_solutions(tmp_path):
    made = tmp_path / "exercises.ipynb"
    assert ex.student_version(FOLDER / "solutions.ipynb", made) == len(ex.EXERCISES)
    committed = nbformat.read(FOLDER / "exercises.ipynb", as_version=4)
    fresh = nbformat.read(made, as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in fresh.cells], \
        "run `make exercises` after editing the solutions"
    text = "\n".join(c.source for c in fresh.cells)
    assert "BEGIN SOLUTION" not in text and text.count(ex.STUB) == len(ex.EXERCISES)


def test_a_solution_cell_without_markers_is_refused():
    with pytest.raises(ValueError, match="no '# BEGIN SOLUTION'"):
        ex.strip_solution("def f():\n    return 1\n")
    src = "def f(x):\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n"
    assert ex.strip_solution(src) == f"def f(x):\n    {ex.STUB}\n"
