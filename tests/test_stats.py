"""Paired differences over units, Holm and the verdict (selfprompt.evaluation.stats)."""
import numpy as np
import pytest
from scipy import stats as scipy_stats

from selfprompt.evaluation.stats import (holm, mean_sd_units, paired_difference, verdict,
                                         with_holm)


def _row(fold, image, dice, draw=0, seed=None, counted=True):
    row = {"fold": fold, "image": image, "dice": dice, "draw": draw, "counted": counted}
    if seed is not None:
        row["seed"] = seed
    return row


def test_five_units_give_scipys_paired_t_and_the_hand_computed_interval():
    diffs = [1.0, 2.0, 3.0, 4.0, 5.0]  # points
    a = [_row(f, i, 0.5 + d / 100) for f, d in enumerate(diffs) for i in "xy"]
    b = [_row(f, i, 0.5) for f in range(5) for i in "xy"]
    out = paired_difference(a, b)
    assert (out.units, out.images, out.draws_averaged) == (5, 10, False)
    assert out.diff == pytest.approx(3.0) and out.sd == pytest.approx(np.sqrt(2.5))
    half = 2.776445 * np.sqrt(2.5) / np.sqrt(5)     # t(0.975, df 4) from a table
    assert (out.ci_low, out.ci_high) == pytest.approx((3 - half, 3 + half), abs=1e-4)
    expected = scipy_stats.ttest_rel([50 + d for d in diffs], [50.0] * 5).pvalue
    assert out.p == pytest.approx(expected) and out.p == pytest.approx(0.013236, abs=1e-5)


def test_images_pair_within_units_and_a_missing_or_uncounted_image_is_left_out():
    a = [_row(0, "x", 0.8), _row(0, "y", 0.6), _row(0, "z", 0.9),
         _row(1, "x", 0.7), _row(1, "y", 0.1, counted=False)]
    b = [_row(0, "x", 0.6), _row(0, "y", 0.6),           # no z in B
         _row(1, "x", 0.6), _row(1, "y", 0.9)]
    # the same image name in another fold, seed or draw is another unit
    a += [_row(0, "x", 0.9, seed=7), _row(0, "x", 0.9, draw=1), _row(0, "y", 0.9, draw=2)]
    b += [_row(0, "x", 0.4, seed=7), _row(0, "x", 0.4, draw=1), _row(0, "y", 0.1, draw=3)]
    out = paired_difference(a, b)
    assert (out.units, out.images, out.draws_averaged) == (4, 5, False)
    # units (42, 0, 0): (20 + 0) / 2; (42, 1, 0): 10; (7, 0, 0): 50; (42, 0, 1): 50
    assert out.diff == pytest.approx((10 + 10 + 50 + 50) / 4)


def test_several_random_draws_against_one_chosen_set_average_the_draws_per_fold():
    random = [_row(f, i, d, draw=dr) for f in range(3) for i in "xy"
              for dr, d in ((0, 0.4), (1, 0.6), (2, 0.5))]
    chosen = [_row(f, i, 0.5 + 0.01 * (f + 1)) for f in range(3) for i in "xy"]
    out = paired_difference(chosen, random)
    assert out.draws_averaged and (out.units, out.images) == (3, 6)
    assert out.diff == pytest.approx(2.0) and out.sd == pytest.approx(1.0)


def test_holm_matches_a_hand_computed_example_and_stays_monotone_and_capped():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([0.02, None, float("nan")]) == [0.02, None, None]   # m counts known ones
    assert holm([]) == []


def test_the_verdict_needs_the_interval_and_holm_to_agree():
    assert verdict(0.5, 3.0, 0.01) == "ahead"
    assert verdict(-3.0, -0.5, 0.01) == "behind"
    assert verdict(-0.5, 3.0, 0.01) == "no difference shown"
    assert verdict(0.5, 3.0, 0.2) == "no difference shown"     # Holm took it away
    assert verdict(None, None, None) == "no difference shown"
    rows = with_holm([{"ci_low": 1.0, "ci_high": 2.0, "p": 0.02},
                      {"ci_low": 1.0, "ci_high": 2.0, "p": 0.04}])
    assert [r["p_holm"] for r in rows] == pytest.approx([0.04, 0.04])
    assert [r["verdict"] for r in rows] == ["ahead", "ahead"]


def test_what_images_would_call_ahead_units_do_not():
    rng = np.random.default_rng(0)
    shift = {0: 0.05, 1: 0.05, 2: -0.04}                   # two folds gain, one loses
    b = [_row(f, str(i), 0.6) for f in shift for i in range(100)]
    a = [_row(f, str(i), 0.6 + shift[f] + rng.normal(0, 0.01)) for f in shift
         for i in range(100)]
    per_image = np.array([x["dice"] - y["dice"] for x, y in zip(a, b)])
    assert scipy_stats.ttest_1samp(per_image, 0).pvalue < 1e-6   # 300 "independent" images
    out = paired_difference(a, b)
    assert out.units == 3 and out.diff > 0 and out.ci_low < 0 < out.ci_high
    assert verdict(out.ci_low, out.ci_high, out.p) == "no difference shown"


def test_a_single_unit_has_no_spread_and_no_verdict():
    out = paired_difference([_row(0, "x", 0.9)], [_row(0, "x", 0.5)])
    assert out.units == 1 and out.diff == pytest.approx(40.0)
    assert out.row()["ci_low"] is None and out.row()["p"] is None


def test_mean_sd_units_is_the_sample_sd_of_the_unit_means():
    rows = [_row(f, i, d) for f, d in enumerate((0.5, 0.6, 0.7)) for i in "xy"]
    rows.append(_row(0, "z", 0.5, draw=1))
    out = mean_sd_units(rows)
    assert out["units"] == 4 and out["images"] == 7
    assert out["dice_sd_units"] == pytest.approx(np.std([50, 60, 70, 50], ddof=1))
    assert mean_sd_units(rows[:1])["dice_sd_units"] is None
