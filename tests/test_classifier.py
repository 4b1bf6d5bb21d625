"""The linear pixel classifier: scikit-learn estimator, the paper's regression."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from selfprompt.classifier import LinearPixelClassifier, cells
from selfprompt.frame import GRID, grid_to_image
from selfprompt.metrics import dice
from selfprompt.pipeline import coarse_mask, fit_classifier
from selfprompt.presets import PRESETS


def separable_embedding(mask64: np.ndarray, rng) -> np.ndarray:
    """Noise in 255 channels; channel 7 is exactly +4 under the lesion, -4 elsewhere."""
    f = rng.normal(0, 1, (256, GRID, GRID)).astype(np.float32)
    f[7] = np.where(mask64 > 0, 4.0, -4.0)
    return f


def blob(rng) -> np.ndarray:
    m = np.zeros((GRID, GRID), np.uint8)
    y, x = rng.integers(10, 40, 2)
    m[y:y + rng.integers(8, 20), x:x + rng.integers(8, 20)] = 1
    return m


@pytest.mark.parametrize("preset", ["paper", "corrected"])
def test_separable_embedding_gives_near_perfect_coarse_masks(preset):
    rng = np.random.default_rng(0)
    p = PRESETS[preset]
    grids = [blob(rng) for _ in range(4)]
    size = (1024, 1024)  # square: both label schemes describe the same cells
    masks = [grid_to_image(g, *size, aligned=True) for g in grids]
    clf = fit_classifier([separable_embedding(g, rng) for g in grids[:3]], masks[:3], p)
    pred = coarse_mask(clf, separable_embedding(grids[3], rng), size, p)
    assert dice(pred, masks[3]) > 0.97


def test_predict_equals_sklearn_logistic_regression_predict():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 16)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=600) > 0.2).astype(np.uint8)
    ours = LinearPixelClassifier().fit(X, y)
    ref = LogisticRegression(max_iter=1000).fit(X, y)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.coef_, ref.coef_)


def test_threshold_moves_the_decision():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] > 0).astype(int)
    lo = LinearPixelClassifier(threshold=0.1).fit(X, y).predict(X).sum()
    hi = LinearPixelClassifier(threshold=0.9).fit(X, y).predict(X).sum()
    assert lo > hi


def test_unfitted_and_one_class_errors():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        LinearPixelClassifier().predict(np.zeros((2, 3)))
    f = np.zeros((256, GRID, GRID), np.float32)
    with pytest.raises(ValueError, match="one class"):
        fit_classifier([f], [np.zeros((64, 64), np.uint8)], PRESETS["paper"])


def test_cells_are_row_major_like_the_authors():
    f = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    # authors: (1, C, H, W) -> transpose (2, 3, 1, 0) -> (H, W, C) -> (H*W, C)
    ref = f[None].transpose(2, 3, 1, 0).reshape(3, 4, 2).reshape(-1, 2)
    np.testing.assert_array_equal(cells(f), ref)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    failures = check_estimator(LinearPixelClassifier(), on_fail=None)
    failed = [f for f in failures if f["status"] == "failed"]
    assert not failed, [(f["check_name"], str(f["exception"])[:200]) for f in failed]
