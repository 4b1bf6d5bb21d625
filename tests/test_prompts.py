"""Prompts from known masks give known points and boxes, in SAM's (x, y) order."""
import numpy as np

from selfprompt.presets import PRESETS
from selfprompt.prompts import bounding_box, clean, make_prompts, peak_points, widen


def square_mask(h=240, w=320, cx=150, cy=120, half=50):
    m = np.zeros((h, w), np.uint8)
    m[cy - half:cy + half + 1, cx - half:cx + half + 1] = 1
    return m


def test_peak_point_is_the_centre_in_xy_order():
    assert peak_points(square_mask()).tolist() == [[150, 120]]


def test_several_points_spread_over_separate_lesions():
    m = square_mask(cx=80, half=30) | square_mask(cx=240, half=20)
    pts = peak_points(m, n=2).tolist()
    assert pts == [[80, 120], [240, 120]]


def test_bounding_box_is_xyxy():
    assert bounding_box(square_mask()).tolist() == [100, 70, 200, 170]
    assert bounding_box(np.zeros((5, 5), np.uint8)) is None


def test_widening_replays_the_legacy_stream_in_the_authors_order():
    box = np.array([100, 70, 200, 170])
    r = np.random.RandomState(42)
    d = [r.randint(0, 20) for _ in range(4)]          # x_min, x_max, y_min, y_max
    got = widen(box, 240, 320, np.random.RandomState(42), 20)
    assert got.tolist() == [100 - d[0], 70 - d[2], 200 + d[1], 170 + d[3]]


def test_widening_is_clipped_to_w_and_h():
    got = widen(np.array([0, 0, 319, 239]), 240, 320, np.random.RandomState(0), 20)
    assert got.tolist() == [0, 0, 320, 240]


def test_clean_up_removes_specks_and_keeps_lesions():
    m = square_mask()
    m[5:8, 5:8] = 1                                    # a 3x3 speck
    cleaned = clean(m)
    assert cleaned[5:8, 5:8].sum() == 0
    assert bounding_box(cleaned).tolist() == [96, 66, 204, 174]  # 3 erosions, 5 dilations: +4 px


def test_paper_takes_the_point_before_clean_up_corrected_after():
    m = np.zeros((200, 300), np.uint8)
    m[50:59, 60:69] = 1                                # 9x9: gone after 3 erosions
    rng = np.random.RandomState(0)
    before = rng.get_state()[1].copy()
    paper = make_prompts(m, PRESETS["paper"], rng)
    assert paper.empty and paper.points.tolist() == [[64, 54]]     # D5: point survives
    assert paper.box.tolist() == [0, 0, 200, 300]                  # D7: x and y swapped
    assert (rng.get_state()[1] == before).all()                    # no draw for empty masks
    corrected = make_prompts(m, PRESETS["corrected"], rng)
    assert corrected.empty and corrected.points is None and corrected.box is None


def test_non_empty_prompt_draws_four_numbers():
    rng = np.random.RandomState(7)
    p = make_prompts(square_mask(), PRESETS["corrected"], rng)
    ref = np.random.RandomState(7)
    [ref.randint(0, 20) for _ in range(4)]
    assert rng.randint(0, 1000) == ref.randint(0, 1000)
    assert not p.empty and p.points.tolist() == [[150, 120]] and p.labels.tolist() == [1]
