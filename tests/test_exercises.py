"""Exercises: the solutions pass every check, and stubs and typical mistakes fail each one
with a message a student can act on (a check that cannot fail is a defect)."""
from pathlib import Path

import cv2
import nbformat
import numpy as np
import pytest

from selfprompt.teaching import exercises as ex
from selfprompt.frame import labels_stretched
from selfprompt.metrics import dice as ex_dice

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


def _fold(draw, scores="per image", fits="once"):
    """A one_fold with one deliberate mistake (the draw, the scoring or the fitting)."""
    def one_fold(train, test, k, seed, fit, segment, truth):
        pool = np.asarray(test if draw == "test" else train)
        rng = np.random.default_rng(None if draw == "unseeded" else seed)
        shots = pool[:k] if draw == "first" else rng.choice(pool, size=k, replace=False)
        model = fit(shots)
        if fits == "per image":
            model = [fit(shots) for _ in test][-1]
        preds = [segment(model, i) for i in test]
        truths = [truth(i) for i in test]
        if scores == "pooled":
            return ex_dice(np.concatenate(preds), np.concatenate(truths)), shots
        pairs = [(p, t) for p, t in zip(preds, truths) if scores != "drop empty" or p.any()]
        return float(np.mean([ex_dice(p, t) for p, t in pairs])), shots
    return one_fold


def _prompt_cleaned(d, x):
    return x.prompts.cleaned > 0


def _prompt_unseeded(d, x):
    if x.prompts.empty:
        return np.zeros(x.size, bool)
    jitter = np.random.default_rng().uniform(0, 5)             # no seed: differs each run
    return d.predict(box=x.prompts.box + np.array([-jitter, -jitter, 0, 0]))


def _prompt_truth(d, x):
    mask = x.truth if isinstance(x.truth, np.ndarray) else x.prompts.cleaned
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros(x.size, bool)
    return d.predict(box=np.array([xs.min(), ys.min(), xs.max(), ys.max()]))


def _prompt_truth_only(d, x):
    ys, xs = np.nonzero(x.truth)
    return d.predict(box=np.array([xs.min(), ys.min(), xs.max(), ys.max()]))


def _prompt_row_col(d, x):
    ys, xs = np.nonzero(x.prompts.cleaned)
    if len(xs) == 0:
        return np.zeros(x.size, bool)
    return d.predict(points=np.array([[ys.max(), xs.max()]]), labels=np.array([1]))


def _prompt_no_empty_case(d, x):
    return d.predict(box=x.prompts.box.copy())


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
    ("one_fold", _fold("test"), "a leak"),
    ("one_fold", _fold("unseeded"), "the same seed drew other shots"),
    ("one_fold", _fold("first"), "always the first k"),
    ("one_fold", _fold("train", scores="pooled"), "all pixels pooled"),
    ("one_fold", _fold("train", scores="drop empty"), "defect D2"),
    ("one_fold", _fold("train", fits="per image"), "fit once per fold"),
    ("my_prompt", _prompt_cleaned, "never asks SAM"),
    ("my_prompt", _prompt_unseeded, "x.rng"),
    ("my_prompt", _prompt_truth, "must not read `x.truth`"),
    ("my_prompt", _prompt_truth_only, "which is None at test time"),
    ("my_prompt", _prompt_row_col, "\\(x, y\\) = \\(column, row\\)"),
    ("my_prompt", _prompt_no_empty_case, "crashed with AttributeError"),
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


def test_a_function_that_calls_an_unwritten_one_names_it():
    def dice(p, t):
        raise NotImplementedError("your code here")

    def one_fold(train, test, k, seed, fit, segment, truth):
        return dice(segment(fit(train[:k]), test[0]), truth(test[0])), train[:k]

    with pytest.raises(ex.ExerciseError, match="calls `dice`, which is not written yet"):
        ex.check_one_fold(one_fold)


def test_the_toy_fold_tells_the_three_means_apart():
    pred, truth = ex._fold_world()
    test = range(15, 20)
    per_image = [ex_dice(pred[i], truth[i]) for i in test]
    assert per_image == pytest.approx([0, 1, 2 / 3, 1 / 2, 1])
    pooled = ex_dice(np.concatenate([pred[i] for i in test]),
                     np.concatenate([truth[i] for i in test]))
    assert pooled == pytest.approx(320 / 440)
    assert len({round(np.mean(per_image), 6), round(pooled, 6),
                round(np.mean(per_image[1:]), 6)}) == 3
