"""Pixel-wise classifiers over embedding cells: each cell is one 256-d sample.

:class:`LinearPixelClassifier` is the paper's: a scikit-learn estimator around
``LogisticRegression`` with the paper's settings by default (L2, C=1, lbfgs,
``max_iter=1000``). ``predict`` thresholds the probability at ``threshold``; at 0.5
that is exactly ``LogisticRegression.predict`` (decision > 0), which the ``paper``
preset relies on. It fits with scikit-learn's L-BFGS as the authors did (``paper``), or
with Newton's method to the optimum (``corrected``), which gives the same coefficients on
any CPU (:data:`SOLVERS`). :class:`CellClassifier` holds the ablations' alternatives (scaled
features, a small MLP, k nearest neighbours) behind the same interface, and
:func:`make_classifier` picks one by the name a preset carries.
"""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

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


#: the solvers a :class:`LinearPixelClassifier` fits with, and what each is
SOLVERS = {
    "lbfgs": "scikit-learn's L-BFGS, stopped at its tolerance (the paper's, as the authors ran "
             "it); where it stops depends on the BLAS kernel's rounding",
    "newton": "Newton's method run to the optimum (Newton step under 1e-10), the same "
              "coefficients to ~1e-10 whatever the BLAS kernel or thread count",
}
#: rows per block of the in-memory Newton fit: float64 copies of one block stay small
_NEWTON_BLOCK = 65536


def _newton_fit(pieces: Sequence, d: int, C: float, class_weight, tol: float, max_iter: int,
                workers: int) -> tuple[np.ndarray, int, float]:
    """L2 logistic regression to its optimum by Newton's method with a backtracking line
    search; returns ``(coef (d + 1,), iterations, last Newton step's max-norm)``.

    The objective is scikit-learn's (weighted mean binomial loss plus ``||w||^2 / (2 C n)``,
    intercept unpenalised), which is strictly convex: it has one optimum, and a solver run
    to it lands on the same coefficients wherever it runs. That is why the gradient, which
    defines the optimum, is summed in float64, block by block in a fixed order, while the
    Hessian, which only steers the steps, is formed in float32 (half the cost; a Hessian
    off by 1e-6 still converges in a handful of steps).
    """
    from scipy.linalg import cho_factor, cho_solve
    from scipy.special import expit

    def block(w, j, hessian):
        F, y, keep = pieces[j]
        if keep is not None:
            F = F[:, keep]
        F64 = F.astype(np.float64)
        z = w[:-1] @ F64 + w[-1]
        yf = y.astype(np.float64)
        sw = None if class_weight is None else class_weight[y]
        loss_i = np.logaddexp(0.0, z) - yf * z
        p = expit(z)
        r = p - yf
        if sw is not None:
            loss_i, r = loss_i * sw, r * sw
        g = np.append(F64 @ r, r.sum())
        H = None
        if hessian:
            s = p * (1.0 - p) if sw is None else p * (1.0 - p) * sw
            Fs = F * s.astype(np.float32)
            H = np.empty((d + 1, d + 1))
            H[:d, :d] = Fs @ F.T
            H[:d, d] = H[d, :d] = Fs.sum(axis=1)
            H[d, d] = s.sum()
        return loss_i.sum(), g, H, (len(y) if sw is None else sw.sum())

    def evaluate(w, hessian):
        parts = (pool.map if pool is not None else map)(lambda j: block(w, j, hessian),
                                                        range(len(pieces)))
        loss, g, H, n = 0.0, np.zeros(d + 1), (np.zeros((d + 1, d + 1)) if hessian else None), 0
        for lo, gj, Hj, nj in parts:       # summed in block order: the order never varies
            loss, g, n = loss + lo, g + gj, n + nj
            if hessian:
                H += Hj
        l2 = 1.0 / (C * n)
        reg = np.append(w[:-1], 0.0)
        loss = loss / n + 0.5 * l2 * float(reg @ reg)
        g = g / n + l2 * reg
        if hessian:
            H = H / n
            H[np.arange(d), np.arange(d)] += l2
        return loss, g, H

    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    with pool or nullcontext():
        w = np.zeros(d + 1)
        loss, g, H = evaluate(w, True)
        it, size, stalled = 0, np.inf, 0
        while it < max_iter:
            step = cho_solve(cho_factor(H), g)
            previous, size = size, float(np.max(np.abs(step)))
            # the step is the distance to the optimum as the Hessian sees it: it, not the
            # gradient, says the coefficients are there (with C = 1 and n cells the
            # smallest curvature is 1 / n, so a tiny gradient can still hide a visible step)
            if size <= tol:
                break
            # within 1e-6 of the optimum, steps that stop shrinking are rounding's, not the
            # solver's (far from it, on nearly separable cells, they may grow for a while)
            stalled = stalled + 1 if size >= previous and size < 1e-6 else 0
            if stalled >= 3:
                break
            decrease = float(g @ step)                    # Newton decrement squared
            t = 1.0
            while True:
                trial = w - t * step
                loss_t, g_t, H_t = evaluate(trial, True)
                # Armijo, with room for the loss's own rounding once the steps are tiny
                if loss_t <= loss - 1e-4 * t * decrease + 1e-15 * abs(loss) or t < 1e-8:
                    break
                t *= 0.5
            w, loss, g, H = trial, loss_t, g_t, H_t
            it += 1
    return w, it, size


class LinearPixelClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression over embedding cells.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength (the paper's: 1.0).
    max_iter : int, default=1000
        Solver iterations (the paper's: 1000 lbfgs iterations).
    solver : {"lbfgs", "newton"}, default="lbfgs"
        ``lbfgs`` is scikit-learn's, as the authors fitted it: it stops at ``tol`` 1e-4,
        short of the optimum, at an iterate that depends on the BLAS kernel's rounding
        (another CPU gives other coefficients, and other per-image rows).
        ``newton`` runs to the optimum (:data:`SOLVERS`), which is unique: the
        ``corrected`` preset fits with it so its numbers do not depend on the machine.
    tol : float or None, default=None
        Stopping tolerance: scikit-learn's (1e-4) for ``lbfgs``; for ``newton`` the
        Newton step's max-norm (1e-10), that is the coefficients' distance to the optimum.
    threshold : float, default=0.5
        Probability above which a binary ``predict`` says "lesion".
    class_weight : dict, "balanced" or None, default=None
        Passed to ``LogisticRegression``; the paper uses None.
    random_state : int or None, default=None
        Passed to ``LogisticRegression`` (lbfgs does not use it; kept for other solvers).
    blas_threads : int or None, default=1
        BLAS threads while fitting and predicting. Next to torch's own thread pool, a
        multi-threaded OpenBLAS oversubscribes a machine with few cores and makes a
        small-k fit several times slower; ``None`` leaves BLAS alone (large k, many
        cores).
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000, threshold: float = 0.5,
                 class_weight=None, random_state=None, blas_threads: int | None = 1,
                 solver: str = "lbfgs", tol: float | None = None) -> None:
        self.C = C
        self.max_iter = max_iter
        self.solver = solver
        self.tol = tol
        self.threshold = threshold
        self.class_weight = class_weight
        self.random_state = random_state
        self.blas_threads = blas_threads

    def _limits(self):
        return threadpool_limits(limits=self.blas_threads, user_api="blas")

    def _check_solver(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; choose from {', '.join(SOLVERS)}")

    def _fit_newton(self, pieces: Sequence, d: int, classes: np.ndarray, counts: np.ndarray,
                    workers: int) -> "LinearPixelClassifier":
        if len(classes) != 2:
            raise ValueError(f"the newton solver needs two classes, got {classes.tolist()}")
        if self.class_weight is None:
            weights = None
        elif isinstance(self.class_weight, str) and self.class_weight == "balanced":
            weights = counts.sum() / (2.0 * counts)          # scikit-learn's "balanced"
        else:
            weights = np.array([float(self.class_weight.get(c, 1.0)) for c in classes])
        tol = 1e-10 if self.tol is None else self.tol
        with self._limits():
            coef, n_iter, grad = _newton_fit(pieces, d, self.C, weights, tol, self.max_iter,
                                             workers)
        if grad > max(tol, 1e-8):
            import warnings

            from sklearn.exceptions import ConvergenceWarning
            warnings.warn(f"newton stopped after {n_iter} iterations, {grad:.1e} from the "
                          f"optimum (tolerance {tol:.0e}): raise max_iter", ConvergenceWarning,
                          stacklevel=3)
        model = LogisticRegression(C=self.C, max_iter=self.max_iter,
                                   random_state=self.random_state)
        model.classes_ = classes
        model.coef_ = coef[None, :-1].copy()
        model.intercept_ = coef[-1:].copy()
        model.n_features_in_ = self.n_features_in_ = d
        model.n_iter_ = np.array([n_iter], dtype=np.int32)
        self.model_ = model
        self.classes_, self.coef_, self.intercept_ = model.classes_, model.coef_, model.intercept_
        self.n_iter_ = model.n_iter_
        self.last_step_ = grad
        return self

    def fit(self, X, y, sample_weight=None) -> "LinearPixelClassifier":
        self._check_solver()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        if self.solver == "newton":
            if sample_weight is not None:
                raise ValueError("the newton solver takes class_weight, not sample_weight")
            classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
            codes = codes.astype(np.intp)
            starts = range(0, len(codes), _NEWTON_BLOCK)
            pieces = [(X[a:a + _NEWTON_BLOCK].T, codes[a:a + _NEWTON_BLOCK], None)
                      for a in starts]
            self._fit_newton(pieces, X.shape[1], classes, counts, workers=1)
            self.fit_route_ = "in-memory"
            return self
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter,
                                         class_weight=self.class_weight,
                                         random_state=self.random_state)
        with self._limits():
            self.model_.fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        self.coef_ = self.model_.coef_
        self.intercept_ = self.model_.intercept_
        self.n_iter_ = self.model_.n_iter_  # == max_iter: lbfgs stopped before converging
        self.fit_route_ = "in-memory"
        return self

    def fit_stream(self, pieces: Sequence, workers: int | None = None) -> "LinearPixelClassifier":
        """Fit the same model as :meth:`fit` without ever holding all samples at once.

        ``pieces[j]`` loads block ``j`` as ``(F, y, keep)``: ``F`` a float32
        ``(n_features, m)`` block (one image's cells, as columns), ``keep`` None or a
        boolean ``(m,)`` mask of the columns that are samples (cheaper than copying
        them out), ``y`` the samples' labels in {0, 1}. Blocks are loaded inside
        ``workers`` threads (default: one per core, at most 8), used and dropped, on every
        pass of the solver: memory is one block per worker, whatever the data size.

        Same objective as scikit-learn's lbfgs logistic regression (mean half-binomial
        loss + ``1 / (2 C n)`` ||w||^2, intercept not penalised) and the same solver and
        options (scipy's L-BFGS-B, ``maxls=50``, ``gtol=1e-4``, ``ftol=64 eps``), so it
        reaches the same optimum; the sums run in another order (float64, block by block),
        so the iterates are not bit-for-bit sklearn's. ``class_weight`` is not supported.
        """
        from scipy.optimize import minimize
        from scipy.special import expit

        self._check_solver()
        if self.class_weight is not None and self.solver == "lbfgs":
            raise ValueError("fit_stream does not support class_weight with lbfgs; use fit")
        if workers is None:
            from .utils.device import usable_cores

            workers = min(8, usable_cores())
        n, d, seen, counts = 0, None, set(), np.zeros(2, dtype=np.int64)
        for j in range(len(pieces)):                   # one pass: sizes and classes
            F, y, _ = pieces[j]
            n, d = n + len(y), F.shape[0]
            seen.update(np.unique(y).tolist())
            counts += np.bincount(np.asarray(y, dtype=np.intp), minlength=2)[:2]
            del F                                      # before the next block is read
        if not seen <= {0, 1} or len(seen) < 2:
            raise ValueError(f"fit_stream needs labels of both classes 0 and 1, got {sorted(seen)}")
        if self.solver == "newton":
            self._fit_newton(pieces, d, np.array([0, 1], dtype=np.uint8), counts, workers)
            self.fit_route_ = "streamed"
            return self
        l2 = 1.0 / (self.C * n)

        def block(coef32, j):
            F, y, keep = pieces[j]
            raw = coef32[:-1] @ F + coef32[-1]
            if keep is not None:
                raw = raw[keep]
            yf = y.astype(np.float32)
            loss = np.sum(np.logaddexp(0.0, raw) - yf * raw, dtype=np.float64)
            g = expit(raw) - yf
            if keep is not None:                       # columns left out weigh nothing
                g_all = np.zeros(F.shape[1], dtype=g.dtype)
                g_all[keep] = g
                return loss, F @ g_all, np.sum(g, dtype=np.float64)
            return loss, F @ g, np.sum(g, dtype=np.float64)

        def loss_grad(coef):
            coef32 = coef.astype(np.float32)
            loss, gw, gb = 0.0, np.zeros(d), 0.0
            blocks = (pool.map if pool is not None else map)(lambda j: block(coef32, j),
                                                             range(len(pieces)))
            for lo, g, s in blocks:
                loss, gw, gb = loss + lo, gw + g, gb + s
            w = coef[:-1]
            grad = np.append(gw / n + l2 * w, gb / n)
            return loss / n + 0.5 * l2 * float(w @ w), grad

        # one worker: the blocks run here (a pool of one would only add a handoff per block)
        pool = ThreadPoolExecutor(workers) if workers > 1 else None
        with self._limits(), pool or nullcontext():
            res = minimize(loss_grad, np.zeros(d + 1), method="L-BFGS-B", jac=True,
                           options={"maxiter": self.max_iter, "maxls": 50, "gtol": 1e-4,
                                    "ftol": 64 * np.finfo(float).eps})
        model = LogisticRegression(C=self.C, max_iter=self.max_iter,
                                   random_state=self.random_state)
        model.classes_ = np.array([0, 1], dtype=np.uint8)
        model.coef_ = res.x[None, :-1].copy()
        model.intercept_ = res.x[-1:].copy()
        model.n_features_in_ = self.n_features_in_ = d
        model.n_iter_ = np.array([min(res.nit, self.max_iter)], dtype=np.int32)
        self.model_ = model
        self.classes_, self.coef_, self.intercept_ = model.classes_, model.coef_, model.intercept_
        self.n_iter_ = model.n_iter_
        self.fit_route_ = "streamed"
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

    def logit_map(self, features: np.ndarray, clip: float = 20.0) -> np.ndarray:
        """``(64, 64)`` log-odds of lesion (the linear model's own decision values),
        clipped to ``+-clip``: SAM's mask prompt takes logits."""
        d = self.decision_function(cells(features)).reshape(GRID, GRID)
        return np.clip(d, -clip, clip).astype(np.float32)


class _MapsMixin:
    """The pipeline's interface on whole embeddings, for any classifier of cells."""

    def probability_map(self, features: np.ndarray) -> np.ndarray:
        """``(256, 64, 64)`` embedding -> ``(64, 64)`` lesion probability."""
        return self.predict_proba(cells(features))[:, -1].reshape(GRID, GRID)

    def predict_map(self, features: np.ndarray) -> np.ndarray:
        """``(256, 64, 64)`` embedding -> ``(64, 64)`` uint8 coarse mask."""
        return self.predict(cells(features)).reshape(GRID, GRID).astype(np.uint8)

    def logit_map(self, features: np.ndarray, clip: float = 20.0) -> np.ndarray:
        """``(64, 64)`` log-odds of lesion, clipped to ``+-clip`` (SAM's mask prompt
        takes logits; a probability of exactly 0 or 1 would be infinite)."""
        p = np.clip(self.probability_map(features).astype(np.float64), 1e-9, 1 - 1e-9)
        return np.clip(np.log(p / (1 - p)), -clip, clip).astype(np.float32)


class CellClassifier(_MapsMixin, ClassifierMixin, BaseEstimator):
    """The ablations' alternatives to the paper's classifier, on the same cells.

    Parameters
    ----------
    kind : {"scaled", "mlp", "knn"}, default="scaled"
        ``scaled``: the paper's logistic regression on standardised features (does the
        unscaled fit suffer from the channels' different ranges?); ``mlp``: one hidden
        layer of ``hidden`` units (is the boundary linear?); ``knn``: ``n_neighbors``
        nearest cells by Euclidean distance on standardised features (no model at all).
    threshold : float, default=0.5
        Probability above which ``predict`` says "lesion".
    max_cells : int or None, default=20000
        Cells kept for fitting, drawn at random without replacement (all when fewer):
        k-NN compares every test cell with every kept one, and an MLP's fit grows with
        them. ``None`` keeps all (``scaled`` uses all by default via :func:`make_classifier`).
    hidden : int, default=64
        Hidden units of the MLP.
    n_neighbors : int, default=15
        Neighbours of k-NN.
    random_state : int, default=0
        Seeds the draw of cells and the MLP's initialisation.
    """

    def __init__(self, kind: str = "scaled", threshold: float = 0.5,
                 max_cells: int | None = 20000, hidden: int = 64, n_neighbors: int = 15,
                 random_state: int = 0) -> None:
        self.kind = kind
        self.threshold = threshold
        self.max_cells = max_cells
        self.hidden = hidden
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def _estimator(self):
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.kind == "scaled":
            model = LogisticRegression(max_iter=1000)
        elif self.kind == "mlp":
            model = MLPClassifier(hidden_layer_sizes=(self.hidden,), max_iter=200,
                                  early_stopping=True, random_state=self.random_state)
        elif self.kind == "knn":
            model = KNeighborsClassifier(n_neighbors=self.n_neighbors)
        else:
            raise ValueError(f"unknown kind {self.kind!r}: scaled, mlp or knn")
        return make_pipeline(StandardScaler(), model)

    def fit(self, X, y) -> "CellClassifier":
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        rng = np.random.default_rng(self.random_state)
        if self.max_cells is not None and len(y) > self.max_cells:
            keep = np.sort(rng.choice(len(y), self.max_cells, replace=False))
            X, y = X[keep], y[keep]
        self.model_ = self._estimator()
        with threadpool_limits(limits=1, user_api="blas"):
            self.model_.fit(X, y)
        self.classes_ = self.model_.classes_
        last = self.model_[-1]
        self.n_iter_ = np.array([np.max(getattr(last, "n_iter_", 0))], dtype=np.int32)
        self.fit_route_ = "in-memory"
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        with threadpool_limits(limits=1, user_api="blas"):
            return self.model_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        if len(self.classes_) == 2:
            return self.classes_[(proba[:, 1] > self.threshold).astype(int)]
        return self.classes_[np.argmax(proba, axis=1)]


#: classifier names a preset may carry, and what each is
CLASSIFIERS = {
    "logreg": "the paper's: logistic regression on the raw cells (L2, C = 1, lbfgs)",
    "logreg_balanced": "the same, classes weighted inversely to their frequency",
    "logreg_scaled": "the same on standardised features",
    "mlp": "one hidden layer of 64 ReLU units on standardised features (20 000 cells)",
    "knn": "15 nearest cells, Euclidean on standardised features (20 000 cells)",
}


def make_classifier(kind: str = "logreg", threshold: float = 0.5, random_state: int = 0,
                    solver: str = "lbfgs"):
    """An unfitted pixel classifier by name (:data:`CLASSIFIERS`); ``solver`` is the
    logistic regressions' (:data:`SOLVERS`)."""
    if kind == "logreg":
        return LinearPixelClassifier(threshold=threshold, solver=solver)
    if kind == "logreg_balanced":
        return LinearPixelClassifier(threshold=threshold, class_weight="balanced", solver=solver)
    if kind == "logreg_scaled":
        return CellClassifier("scaled", threshold, max_cells=None, random_state=random_state)
    if kind in ("mlp", "knn"):
        return CellClassifier(kind, threshold, random_state=random_state)
    raise ValueError(f"unknown classifier {kind!r}; choose from {', '.join(CLASSIFIERS)}")
