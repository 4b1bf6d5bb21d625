"""The linear pixel-wise classifier: each embedding cell is one 256-d sample.

A scikit-learn estimator around ``LogisticRegression`` with the paper's settings by
default (L2, C=1, lbfgs, ``max_iter=1000``). ``predict`` thresholds the probability at
``threshold``; at 0.5 that is exactly ``LogisticRegression.predict`` (decision > 0),
which the ``paper`` preset relies on.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from .frame import GRID


def cells(features: np.ndarray) -> np.ndarray:
    """``(256, 64, 64)`` embedding -> ``(4096, 256)`` samples, cells in row-major order."""
    c = features.shape[0]
    return np.asarray(features, dtype=np.float32).reshape(c, -1).T


class LinearPixelClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression over embedding cells.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength (the paper's: 1.0).
    max_iter : int, default=1000
        lbfgs iterations (the paper's: 1000).
    threshold : float, default=0.5
        Probability above which a binary ``predict`` says "lesion".
    class_weight : dict, "balanced" or None, default=None
        Passed to ``LogisticRegression``; the paper uses None.
    random_state : int or None, default=None
        Passed to ``LogisticRegression`` (lbfgs does not use it; kept for other solvers).
    blas_threads : int or None, default=1
        BLAS threads while fitting and predicting. Next to torch's own thread pool,
        a multi-threaded OpenBLAS made the fit 6x slower on a 2-core machine (measured:
        3.5 s against 0.6 s for k=3); ``None`` leaves BLAS alone (large k, many cores).
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000, threshold: float = 0.5,
                 class_weight=None, random_state=None, blas_threads: int | None = 1) -> None:
        self.C = C
        self.max_iter = max_iter
        self.threshold = threshold
        self.class_weight = class_weight
        self.random_state = random_state
        self.blas_threads = blas_threads

    def _limits(self):
        return threadpool_limits(limits=self.blas_threads, user_api="blas")

    def fit(self, X, y, sample_weight=None) -> "LinearPixelClassifier":
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter,
                                         class_weight=self.class_weight,
                                         random_state=self.random_state)
        with self._limits():
            self.model_.fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        self.coef_ = self.model_.coef_
        self.intercept_ = self.model_.intercept_
        self.n_iter_ = self.model_.n_iter_  # == max_iter: lbfgs stopped before converging
        return self

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        with self._limits():
            return self.model_.decision_function(X)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        with self._limits():
            return self.model_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        if len(self.classes_) == 2:
            logit = np.log(self.threshold / (1.0 - self.threshold))
            return self.classes_[(scores > logit).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    # ---- on whole embeddings, the way the pipeline uses it
    def probability_map(self, features: np.ndarray) -> np.ndarray:
        """``(256, 64, 64)`` embedding -> ``(64, 64)`` lesion probability."""
        return self.predict_proba(cells(features))[:, -1].reshape(GRID, GRID)

    def predict_map(self, features: np.ndarray) -> np.ndarray:
        """``(256, 64, 64)`` embedding -> ``(64, 64)`` uint8 coarse mask."""
        return self.predict(cells(features)).reshape(GRID, GRID).astype(np.uint8)
