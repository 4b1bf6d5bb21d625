"""Exercises that check themselves: students write the method's key steps, checks say
what is wrong in plain words.

``notebooks/exercises/solutions.ipynb`` is the source. A cell tagged ``solution`` holds
a function whose body sits between ``# BEGIN SOLUTION`` and ``# END SOLUTION``; the
next cell calls one of the checks below on it. ``make exercises`` writes the student
version, ``notebooks/exercises/exercises.ipynb``, with each solution body replaced by
a stub that raises :class:`NotImplementedError`. Every check turns a stub, a crash or
a wrong answer into an :class:`ExerciseError` whose message names the case that failed
and the usual cause; the tests hold that the solutions pass every check and that the
stubs and typical mistakes fail each one with its message.
"""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = 'raise NotImplementedError("your code here")'


class ExerciseError(AssertionError):
    """A check that failed, with a message meant for the student."""


def _call(fn, *args):
    try:
        return fn(*args)
    except NotImplementedError as error:
        where = error.__traceback__
        while where.tb_next is not None:
            where = where.tb_next
        name = where.tb_frame.f_code.co_name  # the function whose stub raised
        if name not in ("<module>", fn.__name__):
            raise ExerciseError(f"`{fn.__name__}` calls `{name}`, which is not written yet: "
                                "do that exercise first.") from None
        raise ExerciseError(f"`{fn.__name__}` is not written yet: replace the line "
                            f"`{STUB}` with your code.") from None
    except ExerciseError:
        raise
    except Exception as error:  # the student's bug, shown as such
        raise ExerciseError(f"`{fn.__name__}` crashed with {type(error).__name__}: {error}"
                            ) from error


def _expect(ok: bool, message: str) -> None:
    if not ok:
        raise ExerciseError(message)


# ------------------------------------------------------------------ 1 Dice
def check_dice(dice) -> str:
    """Dice of two masks: 2 |P and T| / (|P| + |T|), 1 for two empty masks."""
    a = np.zeros((4, 4), bool)
    a[:2] = True                                   # 8 pixels
    b = np.zeros((4, 4), bool)
    b[1] = True                                    # 4 pixels, all inside a
    _expect(abs(_call(dice, a, a) - 1) < 1e-9, "a mask against itself must give 1.")
    _expect(abs(_call(dice, a, ~a)) < 1e-9, "two masks that do not overlap must give 0.")
    got = _call(dice, a, b)
    _expect(abs(got - 2 / 3) < 1e-9,
            f"an 8-pixel mask and a 4-pixel mask inside it give 2 x 4 / (8 + 4) = 0.667, not "
            f"{got}: is the intersection counted, and both areas in the denominator?")
    _expect(abs(_call(dice, a.astype(np.uint8) * 255, b.astype(np.uint8)) - 2 / 3) < 1e-9,
            "masks stored as 0/255 or 0/1 must give the same Dice: compare `mask > 0`, "
            "not the raw values.")
    empty = np.zeros((4, 4), bool)
    got = _call(dice, empty, empty)
    _expect(got == 1, f"two empty masks agree perfectly: Dice must be 1, not {got} "
            "(0 / 0 needs its own case; the authors' code returned NaN here).")
    return "dice: all 5 cases pass"


# ------------------------------------------------------------------ 2 the point
def check_deepest_point(deepest_point) -> str:
    """The point deepest inside the mask (maximum of the distance transform), as (x, y)."""
    m = np.zeros((40, 100), np.uint8)
    m[5:35, 50:90] = 1                             # 30 rows x 40 columns
    got = _call(deepest_point, m)
    _expect(got is not None and len(got) == 2, f"return one point (x, y), not {got!r}.")
    x, y = (int(v) for v in got)
    _expect(not (abs(x - 19.5) <= 1 and abs(y - 69.5) <= 6),
            f"got {got}: that is (row, column). SAM takes points as (x, y) = (column, row).")
    _expect(0 <= y < m.shape[0] and 0 <= x < m.shape[1] and m[y, x] == 1,
            f"({x}, {y}) is not inside the mask.")
    # a lesion with a long thin arm: its centre of mass lies in the arm, 2 px deep
    arm = np.zeros((40, 200), np.uint8)
    arm[5:35, 5:35] = 1
    arm[18:22, 35:195] = 1
    for name, mask in (("rectangle", m), ("lesion with an arm", arm)):
        x, y = (int(v) for v in _call(deepest_point, mask))
        dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
        _expect(0 <= y < mask.shape[0] and 0 <= x < mask.shape[1] and mask[y, x] == 1,
                f"{name}: ({x}, {y}) is not inside the mask.")
        _expect(dist[y, x] >= dist.max() - 1,
                f"{name}: ({x}, {y}) is inside but not the deepest point ({dist[y, x]:.0f} px "
                f"from the edge; the deepest is {dist.max():.0f}): use the distance transform "
                "of the mask (cv2.distanceTransform) and take its maximum.")
    two = np.zeros((40, 100), np.uint8)
    two[5:15, 5:15] = 1                            # small lesion
    two[5:35, 50:90] = 1                           # large lesion
    x2, y2 = (int(v) for v in _call(deepest_point, two))
    _expect(x2 >= 50, f"({x2}, {y2}) lies in the small lesion: the deepest point of the "
            "whole mask is in the large one.")
    return "deepest_point: all 5 cases pass"


# ------------------------------------------------------------------ 3 the box
def check_widened_box(widened_box) -> str:
    """The mask's tight box ``[x0, y0, x1, y1]``, each side moved out by a random
    0..max_widen-1 pixels drawn from ``rng``, clipped to the image."""
    m = np.zeros((100, 200), np.uint8)
    m[30:60, 80:150] = 1                           # rows 30-59, columns 80-149
    rng = np.random.default_rng(0)
    boxes = [np.asarray(_call(widened_box, m, rng, 20)) for _ in range(50)]
    _expect(all(b.shape == (4,) for b in boxes), "return four numbers [x0, y0, x1, y1].")
    b = np.stack(boxes)
    _expect(not ((b[:, 0] <= 30) & (b[:, 1] <= 80) & (b[:, 1] > 60)).all(),
            "the box looks like [y0, x0, y1, x1]: SAM's boxes are [x0, y0, x1, y1].")
    inside = (b[:, 0] <= 80) & (b[:, 1] <= 30) & (b[:, 2] >= 149) & (b[:, 3] >= 59)
    _expect(inside.all(), "every box must contain the whole lesion (columns 80-149, rows "
            "30-59): start from the mask's tight box, then move each side outwards.")
    _expect((b[:, 0] > 80 - 20).all() and (b[:, 2] < 149 + 20).all(),
            "a side moved 20 pixels or more: draw each widening in 0..max_widen-1.")
    _expect(len({tuple(x) for x in b}) > 1, "all 50 boxes are the same: draw the widening "
            "from `rng` for each side (rng.integers(0, max_widen)).")
    edge = np.zeros((100, 200), np.uint8)
    edge[0:10, 190:200] = 1
    e = np.stack([np.asarray(_call(widened_box, edge, np.random.default_rng(s), 20))
                  for s in range(20)])
    _expect((e[:, 0] >= 0).all() and (e[:, 1] >= 0).all() and (e[:, 2] <= 200).all(),
            "a box left the image: clip it to 0 and to the image's width and height.")
    return "widened_box: all 5 cases pass"


# ------------------------------------------------------------------ 4 aligned labels
def check_aligned_labels(aligned_labels) -> str:
    """Labels of the 64 x 64 embedding grid from a mask, in SAM's padded 1024 frame."""
    from ..frame import labels_aligned, labels_stretched

    mask = np.zeros((576, 720), np.uint8)          # wide: content fills 51.2 of 64 rows
    mask[300:500, 100:300] = 1
    got = np.asarray(_call(aligned_labels, mask))
    _expect(got.shape == (64, 64), f"return a 64 x 64 grid, not {got.shape}.")
    want, _ = labels_aligned(mask)
    stretched = labels_stretched(mask)
    _expect(not (got == stretched).all(),
            "these are the stretched labels (the whole mask squeezed to 64 x 64, defect D4): "
            "SAM's frame resizes the longest side to 1024 and pads the bottom.")
    _expect(not got[52:].any(), "rows 52-63 of the grid are padding below the image: no "
            "lesion can be there.")
    agree = (got == want).mean()
    _expect(agree > 0.99, f"{agree:.1%} of cells agree with the padded frame's labels: "
            "scale by 1024 / longest side, pad, then take each 16 x 16 cell's majority.")
    return "aligned_labels: all 4 cases pass"


# ------------------------------------------------------------------ 5 the folds
def check_five_folds(five_folds) -> str:
    """``five_folds(n, seed)`` -> five ``(train, test)`` index arrays: every image tested
    exactly once, never trained on in its own fold, the same split for the same seed."""
    folds = _call(five_folds, 103, 42)
    _expect(len(folds) == 5, f"return 5 (train, test) pairs, not {len(folds)}.")
    tests = [np.asarray(te).ravel().tolist() for _, te in folds]
    flat = sorted(i for t in tests for i in t)
    _expect(flat == list(range(103)), "every image must be tested exactly once over the "
            "5 folds: some are tested twice or never (split one shuffled list into 5 parts).")
    sizes = sorted(len(t) for t in tests)
    _expect(sizes[-1] - sizes[0] <= 1, f"test parts of sizes {sizes}: make them as equal as "
            "possible (103 images: 21, 21, 21, 20, 20).")
    for f, (tr, te) in enumerate(folds):
        tr, te = set(np.asarray(tr).ravel().tolist()), set(np.asarray(te).ravel().tolist())
        _expect(not tr & te, f"fold {f} trains on {len(tr & te)} of its own test images: "
                "that is a leak; train = every image not in the fold's test part.")
        _expect(len(tr | te) == 103, f"fold {f} leaves {103 - len(tr | te)} images out of "
                "both parts.")
    again = [np.asarray(te).ravel().tolist() for _, te in _call(five_folds, 103, 42)]
    _expect(again == tests, "the same seed gave another split: seed the shuffle "
            "(np.random.default_rng(seed)), so that a result can be reproduced.")
    _expect(sorted(tests[0]) != list(range(21)), "the first test part is images 0-20: "
            "shuffle first (a sorted file list would put similar images together).")
    other = [np.asarray(te).ravel().tolist() for _, te in _call(five_folds, 103, 7)]
    _expect(other != tests, "another seed gave the same split: the seed must drive the "
            "shuffle.")
    return "five_folds: all 7 cases pass"


# ------------------------------------------------------------------ 6 one fold
def _square(n: int, r0: int, c0: int, side: int) -> np.ndarray:
    m = np.zeros((n, n), np.uint8)
    m[r0:r0 + side, c0:c0 + side] = 1
    return m


def _fold_world():
    """Twenty toy images: 0-14 train, 15-19 test, with known predictions and truths.

    Per test image Dice 0 (empty prediction), 1, 2/3, 1/2 and 1: mean 0.633. Pooling
    every pixel (0.727), or leaving the empty prediction out (0.792), gives another
    number: the check tells the three apart."""
    truth = {i: _square(20, 2, 2, 6) for i in range(15)}
    pred = {15: np.zeros((20, 20), np.uint8), 16: _square(20, 0, 0, 10),
            17: _square(20, 0, 0, 4), 18: _square(20, 0, 0, 12), 19: _square(20, 5, 5, 2)}
    truth[15] = _square(20, 0, 0, 4)
    truth[16] = pred[16].copy()
    truth[17] = pred[17].copy()
    truth[17][:, 2:] = 0                       # 8 of the prediction's 16 pixels: Dice 2/3
    truth[18] = pred[18].copy()
    truth[18][:, 4:] = 0                       # 48 of its 144 pixels: Dice 1/2
    truth[19] = pred[19].copy()
    return pred, truth


def check_one_fold(one_fold) -> str:
    """``one_fold(train, test, k, seed, fit, segment, truth)`` -> ``(mean Dice, shots)``:
    k shots drawn (seeded) from the fold's train part only, one fit on them, every test
    image segmented and scored, the mean of the per-image Dice."""
    from ..metrics import dice

    pred, truth = _fold_world()
    train, test, k = np.arange(15), np.arange(15, 20), 3
    per_image = [dice(pred[i], truth[i]) for i in test]
    want = float(np.mean(per_image))
    pooled = dice(np.concatenate([pred[i] for i in test]),
                  np.concatenate([truth[i] for i in test]))
    counted = float(np.mean([d for i, d in zip(test, per_image) if pred[i].any()]))

    def run(seed):
        fits, scored = [], []

        def fit(shots):
            fits.append([int(s) for s in np.asarray(shots).ravel()])
            return {"fitted on": fits[-1]}

        def segment(model, i):
            _expect(isinstance(model, dict) and "fitted on" in model,
                    "`segment` must be given what `fit` returned (the fitted model).")
            scored.append(int(i))
            return pred[int(i)].copy()

        got = _call(one_fold, train.copy(), test.copy(), k, seed, fit, segment,
                    lambda i: truth[int(i)].copy())
        _expect(isinstance(got, tuple) and len(got) == 2,
                f"return two things, (mean Dice, shots), not {got!r}.")
        return got, fits, scored

    (mean, shots), fits, scored = run(0)
    _expect(len(fits) == 1, f"`fit` was called {len(fits)} times: fit once per fold, on the "
            "k shots, then use that one model for every test image.")
    shots = [int(s) for s in np.asarray(shots).ravel()]
    _expect(sorted(fits[0]) == sorted(shots), f"you fitted on {fits[0]} but returned the "
            f"shots {shots}: return the images the model was fitted on.")
    leak = sorted(set(shots) & set(test.tolist()))
    _expect(not leak, f"shots {leak} are test images of this fold: a leak. Draw the k shots "
            "from the fold's train part only.")
    _expect(len(shots) == k and len(set(shots)) == k and set(shots) <= set(train.tolist()),
            f"the shots must be k = {k} distinct images of the train part, not {shots}.")
    _expect(sorted(scored) == test.tolist(), f"you segmented images {sorted(scored)}: score "
            f"each test image once ({test.tolist()}), and no training image.")
    mean = float(mean)
    _expect(not abs(mean - pooled) < 1e-6, f"{mean:.3f} is the Dice of all pixels pooled: "
            "the protocol scores each image, then averages the images (a large lesion must "
            "not outweigh a small one).")
    _expect(not abs(mean - counted) < 1e-6, f"{mean:.3f} leaves out the image whose "
            "prediction is empty: it counts, with Dice 0 (leaving it out flatters the mean; "
            "that is the authors' defect D2).")
    _expect(abs(mean - want) < 1e-6, f"the mean Dice over the 5 test images is {want:.3f}, "
            f"not {mean:.3f}: Dice per image (your `dice`), then the mean.")
    draws = [sorted(int(s) for s in np.asarray(run(seed)[0][1]).ravel()) for seed in range(5)]
    _expect(draws[0] == sorted(shots), "the same seed drew other shots: seed the draw "
            "(np.random.default_rng(seed)) so that the fold can be reproduced.")
    _expect(any(d != list(range(k)) for d in draws), "the shots are always the first k "
            "train images: draw them at random (seeded).")
    _expect(len({tuple(d) for d in draws}) > 1, "seeds 0-4 all drew the same shots: the "
            "seed must drive the draw.")
    return "one_fold: all 8 cases pass"


# ------------------------------------------------------------------ 7 your own prompt
class _SpyDecoder:
    """Stands in for :class:`~selfprompt.decode.PromptDecoder`: records each call and
    answers with a simple mask (the box filled, or discs around positive points)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size, self.calls = size, []

    def predict(self, points=None, labels=None, box=None, mask_input=None,
                return_logits=False):
        h, w = self.size
        self.calls.append((None if points is None else np.asarray(points).round(3).tolist(),
                           None if labels is None else np.asarray(labels).tolist(),
                           None if box is None else np.asarray(box).round(3).tolist()))
        out = np.zeros(self.size, bool)
        if box is not None:
            x0, y0, x1, y1 = np.asarray(box, float).ravel()[:4]
            _expect(0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h,
                    f"box {[x0, y0, x1, y1]} does not fit a {w}-wide, {h}-high image: a box "
                    "is [x0, y0, x1, y1] with x along the columns.")
            out[int(y0):int(y1) + 1, int(x0):int(x1) + 1] = True
        if points is not None:
            pts = np.asarray(points, float).reshape(-1, 2)
            lab = np.ones(len(pts)) if labels is None else np.asarray(labels).ravel()
            _expect(len(lab) == len(pts), f"{len(pts)} points but {len(lab)} labels: give "
                    "each point a label (1 lesion, 0 background).")
            for (x, y), positive in zip(pts, lab):
                _expect(0 <= x < w and 0 <= y < h, f"point ({x:g}, {y:g}) lies outside the "
                        f"{w} x {h} image: points are (x, y) = (column, row).")
                if positive == 1:
                    cv2.circle(out.view(np.uint8), (int(x), int(y)), 3, 1, -1)
        low = np.zeros((256, 256), np.float32)
        return (out, low) if return_logits else out

    def variants(self, prompts, names):
        asks = {"point": (prompts.points, prompts.labels, None), "box": (None, None, prompts.box),
                "point_box": (prompts.points, prompts.labels, prompts.box)}
        return {n: (prompts.cleaned.astype(bool) if n == "linear" else
                    self.predict(*asks[n]) if any(a is not None for a in asks[n]) else
                    np.zeros(self.size, bool)) for n in names}


def _toy_inputs(empty: bool = False, truth=None):
    """A 60 x 100 image (not square: swapped axes show) with one coarse lesion."""
    from ..presets import get_preset
    from ..prompts import Prompts
    from ..strategies import Inputs

    cleaned = np.zeros((60, 100), np.uint8)
    if not empty:
        cleaned[10:30, 55:90] = 1
    prompts = Prompts(None if empty else np.array([[72.0, 20.0]]),
                      None if empty else np.array([1]),
                      None if empty else np.array([50.0, 6.0, 95.0, 33.0]), cleaned, empty)
    logits = np.where(cv2.resize(cleaned, (64, 64), interpolation=cv2.INTER_NEAREST) > 0,
                      4.0, -4.0).astype(np.float32)
    gt = np.zeros((60, 100), np.uint8)
    gt[12:34, 50:80] = 1
    return Inputs(prompts, get_preset("corrected"), logits, gt if truth is True else truth,
                  (42, 0, 7), img_size=256)


def check_my_prompt(my_prompt) -> str:
    """A prompt strategy of your own, ``my_prompt(decoder, x)`` -> the image's mask: it
    prompts SAM, is reproducible, never reads the true mask, copes with an empty coarse
    mask, and gives SAM (x, y) coordinates inside the image."""
    x = _toy_inputs(truth=_Unknown())
    spy = _SpyDecoder(x.size)
    got = _call(my_prompt, spy, x)
    _expect(got is not None and np.shape(got) == x.size, f"return the image's mask, shape "
            f"{x.size} (rows, columns), not {np.shape(got) if got is not None else None}.")
    _expect(len(spy.calls) > 0, "your strategy never asks SAM: returning the coarse mask is "
            "the `linear` variant, already in the table. Prompt SAM with "
            "`decoder.predict(points=..., labels=..., box=...)`.")
    for _ in range(3):
        again = _SpyDecoder(x.size)
        second = _call(my_prompt, again, _toy_inputs())
        _expect(again.calls == spy.calls and np.array_equal(np.asarray(second, bool),
                                                            np.asarray(got, bool)),
                "two runs on the same image prompted SAM differently: draw random numbers "
                "from `x.rng('mine')` (seeded per image), not from np.random or random.")
    peek = _SpyDecoder(x.size)
    _call(my_prompt, peek, _toy_inputs(truth=True))
    _expect(peek.calls == spy.calls, "your prompts change when the true mask is given: a "
            "strategy must not read `x.truth` (only the gt_* bounds may).")
    blank = _toy_inputs(empty=True)
    out = _call(my_prompt, _SpyDecoder(blank.size), blank)
    _expect(out is not None and np.shape(out) == blank.size,
            "with an empty coarse mask (x.prompts.empty; points and box are None) return an "
            f"empty mask of shape {blank.size}.")
    return "my_prompt: all 5 cases pass"


class _Unknown:
    """Stands in for ``x.truth`` at test time: any use of it fails the check."""

    def _refuse(self, *args, **kwargs):
        raise ExerciseError("`my_prompt` reads `x.truth`, which is None at test time: the "
                            "true mask is unknown when SAM is prompted (only the gt_* "
                            "bounds may use it).")

    __array__ = __getitem__ = __getattr__ = __bool__ = __len__ = __iter__ = _refuse


# ------------------------------------------------------------------ on real data
def kit_fold_parts(s, preset: str = "corrected"):
    """``(fit, segment, truth)`` for :func:`check_one_fold`'s signature, built from the
    kit (its classifier on cached embeddings, its coarse mask), for a notebook
    :class:`~selfprompt.teaching.notebook.Setup` ``s``: a student's ``one_fold`` then runs on
    real images."""
    from ..pipeline import coarse_mask, fit_classifier
    from ..presets import get_preset

    p = get_preset(preset)
    img_size = s.backbone.img_size

    def truth(i):
        return s.dataset.mask(int(i), p.mask_threshold)

    def fit(shots):
        shots = [int(i) for i in np.asarray(shots).ravel()]
        return fit_classifier(s.embeddings.take(shots), (truth(i) for i in shots), p,
                              img_size=img_size)

    def segment(model, i):
        return coarse_mask(model, np.asarray(s.embeddings[int(i)], np.float32),
                           truth(i).shape, p, img_size)

    return fit, segment, truth


def score_strategy(fn, s, name: str = "mine", k: int = 3, fold: int = 0,
                   preset: str = "corrected", against=("linear", "box")) -> dict[str, float]:
    """Mean Dice of your strategy ``fn`` and of ``against`` on one fold of the notebook's
    data set (:class:`~selfprompt.teaching.notebook.Setup` ``s``), through the kit's own protocol:
    registered under ``name`` (:func:`selfprompt.strategies.register`), then scored by
    :meth:`~selfprompt.evaluation.protocol.Experiment.score` on the same shots and test images."""
    import tempfile

    from ..presets import get_preset
    from ..evaluation.protocol import Experiment
    from ..strategies import register

    register(name, fn, replace=True)
    with tempfile.TemporaryDirectory() as tmp:  # score() writes nothing; run_fold would
        exp = Experiment(s.dataset, s.embeddings, s.backbone, Path(tmp), dataset_name=s.name,
                         variants=(*against, name), progress=False)
        rows = exp.score(get_preset(preset), k, fold)[0]
    return {v: float(np.mean([r["dice"] for r in rows if r["variant"] == v and r["counted"]]))
            for v in (*against, name)}


#: exercise -> (function the student writes, its check)
EXERCISES = {
    "dice": check_dice, "deepest_point": check_deepest_point,
    "widened_box": check_widened_box, "aligned_labels": check_aligned_labels,
    "five_folds": check_five_folds, "one_fold": check_one_fold, "my_prompt": check_my_prompt,
}


# ------------------------------------------------------------------ notebooks
def strip_solution(source: str) -> str:
    """A solution cell's source with each ``BEGIN``/``END SOLUTION`` block replaced by
    :data:`STUB` at the block's indentation."""
    pattern = re.compile(rf"^([ \t]*){re.escape(BEGIN)}\n.*?^[ \t]*{re.escape(END)}[^\n]*$",
                         re.M | re.S)
    out, n = pattern.subn(lambda m: f"{m.group(1)}{STUB}", source)
    if n == 0:
        raise ValueError(f"a cell tagged `solution` has no {BEGIN!r} ... {END!r} block")
    return out


def student_version(solutions: Path, out: Path) -> int:
    """Write the student notebook from the solutions one; returns the cells stubbed."""
    import nbformat

    nb = nbformat.read(solutions, as_version=4)
    n = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if "solution" in cell.metadata.get("tags", []):
            cell.source = strip_solution(cell.source)
            n += 1
    nb.cells[0].source = nb.cells[0].source.replace(
        "# Exercises: solutions", "# Exercises").replace(
        "This is the **solutions** notebook", "This is the **student** notebook")
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return n
