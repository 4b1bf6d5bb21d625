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
    except NotImplementedError:
        raise ExerciseError(f"`{fn.__name__}` is not written yet: replace the line "
                            f"`{STUB}` with your code.") from None
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
    from .frame import labels_aligned, labels_stretched

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


#: exercise -> (function the student writes, its check)
EXERCISES = {
    "dice": check_dice, "deepest_point": check_deepest_point,
    "widened_box": check_widened_box, "aligned_labels": check_aligned_labels,
    "five_folds": check_five_folds,
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


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m selfprompt.exercises",
                                description="write the student notebook from the solutions")
    p.add_argument("solutions", type=Path)
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    print(f"{args.out}: {student_version(args.solutions, args.out)} solutions stubbed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
