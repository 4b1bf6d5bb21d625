import numpy as np
import pytest

from selfprompt.metrics import dice, iou


def test_hand_made_masks():
    truth = np.zeros((10, 10), np.uint8)
    truth[0:4, 0:5] = 1                      # 20 pixels
    pred = np.zeros((10, 10), np.uint8)
    pred[2:6, 0:5] = 1                       # 20 pixels, 10 overlap
    assert dice(pred, truth) == pytest.approx(2 * 10 / 40)
    assert iou(pred, truth) == pytest.approx(10 / 30)


def test_perfect_disjoint_and_empty():
    a = np.zeros((8, 8), bool)
    a[2:5, 2:5] = True
    assert dice(a, a) == 1.0 and iou(a, a) == 1.0
    assert dice(a, ~a) == 0.0 and iou(a, ~a) == 0.0
    empty = np.zeros_like(a)
    assert dice(empty, empty) == 1.0 and iou(empty, empty) == 1.0  # defined, not NaN
    assert dice(empty, a) == 0.0 and iou(a, empty) == 0.0


def test_any_nonzero_value_counts_as_foreground():
    a = np.array([[0, 255], [1, 0]], np.uint8)
    b = np.array([[0, 1], [1, 0]], bool)
    assert dice(a, b) == 1.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((4, 4)), np.zeros((4, 5)))
