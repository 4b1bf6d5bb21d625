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


# ---- the streamed fit: same model, memory of one image's block per worker
class Blocks:
    """``fit_stream``'s input from an in-memory X, in blocks of ``size`` samples; counts
    how many blocks are alive at once (each block is a fresh copy, as a cache read)."""

    def __init__(self, X, y, size):
        import threading

        self.X, self.y, self.size = X, y, size
        self.alive = self.peak = self.reads = 0
        self._lock = threading.Lock()

    def __len__(self):
        return -(-len(self.y) // self.size)

    def _gone(self):
        with self._lock:
            self.alive -= 1

    def __getitem__(self, j):
        import weakref

        F = np.ascontiguousarray(self.X[j * self.size:(j + 1) * self.size].T)
        with self._lock:
            self.alive += 1
            self.reads += 1
            self.peak = max(self.peak, self.alive)
        weakref.finalize(F, self._gone)
        return F, self.y[j * self.size:(j + 1) * self.size], None


def noisy_problem(seed=3, n=3000, d=12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X @ rng.normal(size=d) + rng.normal(size=n) > 0.5).astype(np.uint8)
    return X, y


def test_streamed_fit_reaches_sklearns_optimum():
    X, y = noisy_problem()
    ref = LinearPixelClassifier().fit(X, y)               # lbfgs converges well before 1000
    blocks = Blocks(X, y, 256)
    ours = LinearPixelClassifier().fit_stream(blocks)
    assert ours.fit_route_ == "streamed" and ref.fit_route_ == "in-memory"
    assert ref.n_iter_[0] < 1000 and ours.n_iter_[0] < 1000
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-3, atol=1e-4)
    assert (ours.predict(X) != ref.predict(X)).sum() <= 2    # ties at the boundary at most
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)


def test_streamed_fit_holds_a_block_per_worker_and_is_deterministic():
    X, y = noisy_problem(seed=4)
    blocks = Blocks(X, y, 100)                            # 30 blocks
    a = LinearPixelClassifier(max_iter=5).fit_stream(blocks, workers=2)
    assert blocks.reads > 5 * len(blocks)                 # re-read on every solver pass
    assert blocks.peak <= 2 + 1                           # never the whole data set
    b = LinearPixelClassifier(max_iter=5).fit_stream(Blocks(X, y, 100), workers=2)
    np.testing.assert_array_equal(a.coef_, b.coef_)       # sums in a fixed order
    one = Blocks(X, y, 100)                               # one worker: no pool, same sums
    c = LinearPixelClassifier(max_iter=5).fit_stream(one, workers=1)
    assert one.peak == 1
    np.testing.assert_array_equal(a.coef_, c.coef_)
    np.testing.assert_array_equal(a.intercept_, c.intercept_)


def test_streamed_fit_refuses_what_it_cannot_fit():
    X, y = noisy_problem()
    with pytest.raises(ValueError, match="both classes"):
        LinearPixelClassifier().fit_stream(Blocks(X, np.zeros_like(y), 500))
    with pytest.raises(ValueError, match="class_weight"):
        LinearPixelClassifier(class_weight="balanced").fit_stream(Blocks(X, y, 500))


@pytest.mark.parametrize("preset", ["paper", "corrected"])
def test_fit_classifier_streams_above_its_memory_limit(preset):
    rng = np.random.default_rng(5)
    p = PRESETS[preset]
    grids = [blob(rng) for _ in range(4)]
    size = (512, 640)                                     # padding: aligned labels drop cells
    masks = [grid_to_image(g, *size, aligned=True) for g in grids]
    feats = [separable_embedding(g, rng) for g in grids]
    small = fit_classifier(feats[:3], masks[:3], p)
    big = fit_classifier(feats[:3], masks[:3], p, in_memory_limit=0)
    assert (small.fit_route_, big.fit_route_) == ("in-memory", "streamed")
    a = coarse_mask(small, feats[3], size, p)
    b = coarse_mask(big, feats[3], size, p)
    assert dice(a, b) > 0.999


def test_fit_memory_limit_from_the_environment(monkeypatch):
    from selfprompt.pipeline import IN_MEMORY_LIMIT, fit_memory_limit

    monkeypatch.delenv("SELFPROMPT_FIT_IN_MEMORY_GIB", raising=False)
    assert fit_memory_limit() == IN_MEMORY_LIMIT
    monkeypatch.setenv("SELFPROMPT_FIT_IN_MEMORY_GIB", "3.5")
    assert fit_memory_limit() == int(3.5 * 2 ** 30)
    monkeypatch.setenv("SELFPROMPT_FIT_IN_MEMORY_GIB", "0")
    rng = np.random.default_rng(6)
    g = blob(rng)
    clf = fit_classifier([separable_embedding(g, rng)], [grid_to_image(g, 64, 64, aligned=True)],
                         PRESETS["corrected"])
    assert clf.fit_route_ == "streamed"
    monkeypatch.setenv("SELFPROMPT_FIT_IN_MEMORY_GIB", "lots")
    with pytest.raises(ValueError, match="number of GiB"):
        fit_memory_limit()


# ---- the ablations' classifiers and presets -------------------------------------------
def spread_embedding(mask64: np.ndarray, rng) -> np.ndarray:
    """The lesion shifts 64 of 256 noisy channels by +-2: separable for every model,
    k-NN included (one informative channel among 255 noisy ones defeats distances)."""
    f = rng.normal(0, 1, (256, GRID, GRID)).astype(np.float32)
    f[:64] += np.where(mask64 > 0, 2.0, -2.0)[None]
    return f


@pytest.mark.parametrize("kind", ["logreg_balanced", "logreg_scaled", "mlp", "knn"])
def test_every_classifier_choice_finds_a_separable_lesion(kind):
    rng = np.random.default_rng(0)
    p = PRESETS["corrected"].with_(classifier=kind)
    grids = [blob(rng) for _ in range(4)]
    size = (1024, 1024)
    masks = [grid_to_image(g, *size, aligned=True) for g in grids]
    clf = fit_classifier([spread_embedding(g, rng) for g in grids[:3]], masks[:3], p)
    features = spread_embedding(grids[3], rng)
    assert dice(coarse_mask(clf, features, size, p), masks[3]) > 0.95
    logits = clf.logit_map(features)                          # SAM's mask prompt
    assert logits.shape == (GRID, GRID) and np.abs(logits).max() <= 20
    assert ((logits > 0) == (clf.predict_map(features) > 0)).mean() > 0.99


def test_cell_classifier_keeps_at_most_max_cells_and_is_seeded():
    from selfprompt.classifier import CellClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (3000, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.uint8)
    a = CellClassifier("knn", max_cells=500, random_state=1).fit(X, y)
    b = CellClassifier("knn", max_cells=500, random_state=1).fit(X, y)
    assert a.model_[-1].n_samples_fit_ == 500
    assert (a.predict_proba(X) == b.predict_proba(X)).all()
    with pytest.raises(ValueError, match="unknown kind"):
        CellClassifier("svm").fit(X, y)


def test_named_preset_changes_are_parsed_checked_and_keep_old_identities():
    from selfprompt.classifier import make_classifier
    from selfprompt.presets import get_preset

    p = get_preset("corrected+classifier=knn+threshold=0.3")
    assert (p.name, p.classifier, p.threshold, p.labels) == (
        "corrected+classifier=knn+threshold=0.3", "knn", 0.3, "aligned")
    assert p.as_dict()["classifier"] == "knn"
    # a field added later is left out at its default: folds written before still match
    assert "classifier" not in PRESETS["paper"].as_dict()
    for bad, why in [("corrected+colour=red", "not field=value"),
                     ("corrected+threshold=high", "takes a float"), ("best", "unknown preset")]:
        with pytest.raises(ValueError, match=why):
            get_preset(bad)
    with pytest.raises(ValueError, match="unknown classifier"):
        make_classifier("forest")
