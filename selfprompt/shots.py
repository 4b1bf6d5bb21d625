"""Which k training images to label: the shots, chosen before any mask is read.

The paper draws the k shots at random from a fold's training images. With k = 1 to 20
a result owes much to which images those were (the ``shots`` ablation measures it), so
a user about to label k images may ask which ones to label. The strategies here
answer from what exists before labelling: SAM's cached embedding of every training
image. None of them reads a mask (tests hold it), and none looks at a test image.

Each image is summarised by its *pooled vector*: the mean of its 64 x 64 embedding
cells (256 numbers), L2-normalised, so that images compare by the direction of their
average feature, not its size.

- ``random``: the paper's draw (Python's ``random.Random(seed + draw * DRAW_STRIDE)``,
  ``sample(range(len(train)), k)``). The protocol draws all folds from one stream in
  fold order (:func:`~selfprompt.evaluation.protocol.draw_shots`, which calls this
  strategy with that shared stream); :func:`select_shots` alone draws from a fresh
  stream, which is the first fold's draw.
- ``kcenter``: *diversity*. k-center greedy (farthest-first traversal): the first shot is
  the training image nearest the training images' mean pooled vector (the one image a
  user would label if only one, as users of one-shot SAM methods pick it by hand), each
  next one the image farthest from every shot chosen so far. The shots then cover the
  spread of appearances (lighting, size, instrument, artefacts), so the classifier has
  seen something like each test image. Deterministic (ties go to the lower index); the
  first k of k + 1 shots are the k shots.
- ``medoids``: *representativeness*. k-means (k clusters, seeded) on the pooled vectors,
  then per cluster the training image nearest its centre. Unlike k-center, which
  reaches for outliers, each shot stands for a group of images in proportion to how
  common that group is. Returned in index order.

``k = "all"`` is every training image (``random`` in the order its draw gives them).
"""
from __future__ import annotations

import random
from collections.abc import Callable, MutableMapping, Sequence

import numpy as np

#: stride between the seeds of repeated draws of the shots (draw 0 uses ``seed``)
DRAW_STRIDE = 1_000_003


def parse_k(k: str | int) -> str:
    """k as written in tables and paths: a positive integer, or ``all``."""
    k = str(k).strip()
    if k != "all" and not (k.isdigit() and int(k) > 0):
        raise ValueError(f"k must be a positive integer or 'all', not {k!r}")
    return k if k == "all" else str(int(k))  # "010" and "10" are one k


def pooled_vector(features: np.ndarray) -> np.ndarray:
    """One image's ``(C, H, W)`` embedding (float16 or float32) -> ``(C,)`` float64: the
    mean over its cells, L2-normalised (a zero vector stays zero)."""
    f = np.asarray(features)
    v = f.reshape(f.shape[0], -1).astype(np.float64).mean(axis=1)
    norm = np.linalg.norm(v)
    return v / norm if norm > 0 else v


class ShotPool:
    """A fold's training images as the strategies see them: how many, and (read only when
    a strategy asks, one embedding at a time) their pooled vectors."""

    def __init__(self, embeddings, train: Sequence[int],
                 cache: MutableMapping[int, np.ndarray] | None = None) -> None:
        self.embeddings = embeddings
        self.train = [int(i) for i in train]
        self.cache = {} if cache is None else cache

    def __len__(self) -> int:
        return len(self.train)

    @property
    def vectors(self) -> np.ndarray:
        """``(n_train, C)`` pooled vectors, row j for ``train[j]``."""
        for i in self.train:
            if i not in self.cache:
                self.cache[i] = pooled_vector(self.embeddings[i])
        return np.stack([self.cache[i] for i in self.train])


def random_shots(pool: ShotPool, k: int, seed: int | random.Random) -> list[int]:
    """The paper's draw: ``k`` positions sampled without replacement, in the order drawn.
    ``seed`` may be a ``random.Random`` shared across folds (the protocol's one stream)."""
    rnd = seed if isinstance(seed, random.Random) else random.Random(seed)
    return rnd.sample(range(len(pool)), k)


def _farthest_first(X: np.ndarray, chosen: list[int], k: int) -> list[int]:
    """Extend ``chosen`` to ``k`` rows of ``X``, each the row farthest from all chosen."""
    chosen = list(chosen)
    dist = np.full(len(X), np.inf)
    for c in chosen:
        dist = np.minimum(dist, np.linalg.norm(X - X[c], axis=1))
    dist[chosen] = -np.inf                # never twice, even among identical images
    while len(chosen) < k:
        nxt = int(np.argmax(dist))        # the first of equals: ties go to the lower index
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(X - X[nxt], axis=1))
        dist[nxt] = -np.inf
    return chosen


def kcenter_shots(pool: ShotPool, k: int, seed: int | random.Random = 0) -> list[int]:
    """k-center greedy on the pooled vectors: first the image nearest the mean, then
    farthest-first. ``seed`` is not used (deterministic)."""
    X = pool.vectors
    first = int(np.argmin(np.linalg.norm(X - X.mean(axis=0), axis=1)))
    return _farthest_first(X, [first], k)


def medoids_shots(pool: ShotPool, k: int, seed: int | random.Random = 0) -> list[int]:
    """k-means on the pooled vectors (``random_state=seed``, 10 starts), then per cluster
    its member nearest the centre; sorted. A cluster k-means left empty (fewer distinct
    images than k) is made up farthest-first, so there are always k distinct shots."""
    import warnings

    from sklearn.cluster import KMeans

    X = pool.vectors
    if isinstance(seed, random.Random):
        seed = seed.randrange(2**31)
    with warnings.catch_warnings():       # duplicate images: fewer clusters than k
        warnings.simplefilter("ignore")
        km = KMeans(n_clusters=k, n_init=10, random_state=int(seed) % 2**32).fit(X)
    chosen = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if len(members):
            d = np.linalg.norm(X[members] - km.cluster_centers_[c], axis=1)
            chosen.append(int(members[np.argmin(d)]))
    return sorted(_farthest_first(X, chosen, k))


#: name -> strategy ``(pool, k, seed) -> positions in the fold's training list``
SHOT_STRATEGIES: dict[str, Callable[[ShotPool, int, int | random.Random], list[int]]] = {
    "random": random_shots,
    "kcenter": kcenter_shots,
    "medoids": medoids_shots,
}
#: strategies whose choice does not depend on the seed: one draw only
DETERMINISTIC = ("kcenter",)


def select_shots(embeddings, train: Sequence[int], k: str | int, strategy: str = "random",
                 seed: int = 42, draw: int = 0, *, stream: random.Random | None = None,
                 cache: MutableMapping[int, np.ndarray] | None = None) -> list[int]:
    """The ``k`` shots among the training images ``train`` (data-set indices), chosen by
    ``strategy`` (:data:`SHOT_STRATEGIES`) from the embeddings alone.

    ``embeddings[i]`` is image ``i``'s ``(256, 64, 64)`` embedding (the cache's
    ``DatasetEmbeddings``, or any sequence of arrays); only training images are read,
    and only by the strategies that need them (``random`` reads none). ``draw`` > 0
    repeats a seeded strategy with the seed ``seed + draw * DRAW_STRIDE``; ``stream``, a
    ``random.Random`` that replaces that seed (the protocol's shared stream). ``cache``
    keeps pooled vectors between calls (index -> vector). Returns data-set indices.
    """
    if strategy not in SHOT_STRATEGIES:
        raise ValueError(f"unknown shot strategy {strategy!r}; choose from "
                         f"{', '.join(SHOT_STRATEGIES)}")
    if draw < 0:
        raise ValueError(f"draw must be 0 or more, not {draw}")
    if draw and strategy in DETERMINISTIC:
        raise ValueError(f"{strategy} shots do not depend on the seed: there is only draw 0")
    k = parse_k(k)
    pool = ShotPool(embeddings, train, cache)
    n = len(pool) if k == "all" else int(k)
    if n > len(pool):
        raise ValueError(f"k={k} exceeds the {len(pool)} training images of a fold")
    if k == "all" and strategy != "random":
        return list(pool.train)
    positions = SHOT_STRATEGIES[strategy](
        pool, n, stream if stream is not None else seed + draw * DRAW_STRIDE)
    return [pool.train[j] for j in positions]
