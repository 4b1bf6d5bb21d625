"""Segment one's own images: fit on the k one labelled, predict the rest.

``SelfPrompt`` wraps the whole method (backbone, embedding cache, the estimator of
:mod:`selfprompt.methods`) behind the few calls a user needs, as segment-anything's
``SamPredictor`` and scikit-learn's estimators do::

    import selfprompt as sp
    model = sp.SelfPrompt(backbone="medsam_lite", prompt="auto").fit(images, masks)
    pred = model.predict("new.jpg")        # pred.mask, pred.score, pred.prompt
    model.save("polyps.npz")               # later: sp.SelfPrompt.load("polyps.npz")

Images are paths or RGB ``uint8 (H, W, 3)`` arrays, masks paths or ``(H, W)`` arrays.
Every embedding goes through the content-keyed cache (an image file's key is the
sha256 of its bytes, so what ``python -m selfprompt embed`` cached is reused). A saved
model is one small ``.npz`` file, no pickle: the classifier's weights, the settings
(for ``auto`` its chosen recipe too) and the backbone's name and checkpoint sha256,
checked when it is loaded.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator

from .methods.base import Prediction, Shots

if TYPE_CHECKING:  # annotations only: these pull in torch
    from .models.backbone import Backbone

#: the saved file's format; a file of another format is refused with a clear line
FORMAT = 1
#: what ``prompt`` may be besides ``auto``: see :mod:`selfprompt.methods.self_prompt`
AUTO = "auto"


class ModelFileError(ValueError):
    """A saved model that cannot be used; the message names the file and what to do."""


def _is_path(x) -> bool:
    return isinstance(x, (str, Path))


class SelfPrompt(BaseEstimator):
    """The paper's method on one's own images.

    Parameters
    ----------
    backbone : str, default="medsam_lite"
        A name of :data:`selfprompt.BACKBONES` (``medsam_lite`` ships with the kit).
    prompt : str, default="auto"
        ``auto`` (prompt and threshold chosen on the labelled images) or one prompt:
        ``linear``, ``point``, ``box``, ``point_box``, or a strategy such as ``box_cc``.
    preset : str, default="corrected"
        How the method computes (:mod:`selfprompt.presets`).
    checkpoint : path or None, default=None
        The backbone's weights (None: the kit's own for ``medsam_lite``, else the file
        ``make checkpoints`` writes).
    device : str or None, default=None
        Where the backbone runs (None: the best one found).
    seed : int, default=42
        Seeds ``auto``'s inner splits and each image's box widening.
    cache : path, None or False, default=None
        The embedding cache's folder (None: ``$SELFPROMPT_CACHE`` or the kit's
        ``data/embeddings``; False: no cache, every image encoded anew).

    Fitted attributes: ``backbone_`` (the loaded backbone), ``method_`` (the fitted
    estimator of :mod:`selfprompt.methods`), ``prompt_`` (the prompt in use: ``auto``'s
    choice), ``n_shots_``.
    """

    def __init__(self, backbone: str = "medsam_lite", prompt: str = AUTO,
                 preset: str = "corrected", checkpoint: str | Path | None = None,
                 device: str | None = None, seed: int = 42,
                 cache: str | Path | None | bool = None) -> None:
        self.backbone = backbone
        self.prompt = prompt
        self.preset = preset
        self.checkpoint = checkpoint
        self.device = device
        self.seed = seed
        self.cache = cache

    # ---------------------------------------------------------------- the backbone
    def _load_backbone(self) -> Backbone:
        """The backbone, loaded once (``fit`` and ``load`` set ``backbone_``)."""
        if getattr(self, "backbone_", None) is None:
            import warnings

            from .models.backbone import load_backbone
            from .utils.paths import default_path

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)   # tiny's random-weights note
                self.backbone_ = load_backbone(self.backbone, self.checkpoint,
                                               device=self.device,
                                               checkpoints_dir=default_path("checkpoints"))
        return self.backbone_

    def _cache(self):
        """The backbone's folder of the embedding cache, or None without one."""
        if self.cache is False:
            return None
        if getattr(self, "_cache_", None) is None:
            from .embeddings import EmbeddingCache
            from .utils.paths import cache_folder

            self._cache_ = EmbeddingCache.for_backbone(
                cache_folder(self.cache or None), self._load_backbone(),
                encoder=self._encoder())
        return self._cache_

    def _encoder(self):
        if getattr(self, "_encoder_", None) is None:
            from .models.encoder import ImageEncoder

            self._encoder_ = ImageEncoder(self._load_backbone())
        return self._encoder_

    def _decoder(self):
        if getattr(self, "_decoder_", None) is None:
            from .decode import PromptDecoder

            self._decoder_ = PromptDecoder(self._load_backbone())
        return self._decoder_

    # ---------------------------------------------------------------- embedding
    @staticmethod
    def _read(image) -> tuple[np.ndarray, bytes | None]:
        """RGB ``uint8 (H, W, 3)`` and, for a file, its bytes (the cache's key)."""
        from .datasets.reader import decode_image

        if _is_path(image):
            path = Path(image)
            try:
                data = path.read_bytes()
            except OSError as err:
                raise FileNotFoundError(f"{path}: cannot read the image "
                                        f"({err.strerror or err})") from None
            return decode_image(data, path), data
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"an image array must be RGB uint8 (H, W, 3), not {arr.dtype} "
                             f"{arr.shape}")
        return arr, None

    @staticmethod
    def _key(rgb: np.ndarray, data: bytes | None) -> str:
        """An image's identity: a file's the sha256 of its bytes, as `embed` keys it; an
        array's, of its pixels and size."""
        from .embeddings import image_key

        return image_key(data if data is not None else
                         b"rgb-array:%dx%d:" % rgb.shape[:2] + np.ascontiguousarray(rgb).tobytes())

    def _embed(self, rgb: np.ndarray, data: bytes | None) -> np.ndarray:
        from .embeddings import to_float32

        cache = self._cache()
        if cache is None:
            return to_float32(self._encoder()(rgb))
        key = self._key(rgb, data)
        if not cache.is_valid(key):
            cache.save(key, self._encoder()(rgb))
        return to_float32(cache.load(key))

    def embed(self, image) -> np.ndarray:
        """The image's ``float32 (256, 64, 64)`` embedding (a path or an RGB array),
        through the embedding cache unless ``cache=False``."""
        return self._embed(*self._read(image))

    def _mask(self, mask, shape: tuple[int, int] | None, where: str) -> np.ndarray:
        """A mask as ``uint8 (H, W)`` in {0, 1}: a file read as the data sets are (grey
        above the preset's threshold), an array of {0, 1} or bools, or grey levels."""
        from .datasets.reader import read_mask
        from .presets import get_preset

        threshold = get_preset(self.preset).mask_threshold
        if _is_path(mask):
            m = read_mask(Path(mask), threshold)
        else:
            m = np.asarray(mask)
            if m.ndim == 3:
                m = m.max(axis=2)
            if m.ndim != 2:
                raise ValueError(f"{where}: a mask array must be (H, W), not {m.shape}")
            m = (m > threshold if m.dtype != bool and m.max(initial=0) > 1 else m > 0)
            m = m.astype(np.uint8)
        if shape is not None and m.shape != tuple(shape):
            raise ValueError(f"{where}: the mask is {m.shape[1]}x{m.shape[0]} but its image "
                             f"is {shape[1]}x{shape[0]}: give each image its own mask")
        return m

    # ---------------------------------------------------------------- fitting
    def _method(self):
        from .methods import make_method

        if self.prompt == AUTO:
            return make_method("auto", preset=self.preset)
        return make_method("self_prompt", preset=self.preset, prompt=self.prompt)

    def fit(self, images: Sequence, masks: Sequence) -> "SelfPrompt":
        """Fit on the labelled images: ``images`` paths or RGB arrays, ``masks`` paths or
        ``(H, W)`` arrays, in the same order. Every pair is read and checked (one mask
        per image, same size) before any image is encoded."""
        images, masks = list(images), list(masks)
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks: give one mask "
                             "per labelled image, in the same order")
        if not images:
            raise ValueError("no labelled images: fit on at least one image and its mask")
        read, checked = [], []
        for j, (image, mask) in enumerate(zip(images, masks)):
            where = str(image) if _is_path(image) else f"labelled image {j}"
            rgb, data = self._read(image)
            checked.append(self._mask(mask, rgb.shape[:2], where))
            read.append((rgb, data))
        embeddings = [self._embed(rgb, data) for rgb, data in read]
        return self.fit_embeddings(embeddings, checked)

    def fit_embeddings(self, embeddings: Sequence[np.ndarray],
                       masks: Sequence) -> "SelfPrompt":
        """:meth:`fit` from the images' ``(256, 64, 64)`` embeddings (a sequence that may
        read each when asked for: the command line's cached route); each mask's size is
        its image's."""
        masks = [self._mask(m, None, f"mask {j}") for j, m in enumerate(masks)]
        shots = Shots(embeddings, masks, self._decoder(), seed=self.seed)
        self.method_ = self._method().fit(shots)
        self.prompt_ = getattr(self.method_, "prompt_", self.prompt)
        self.n_shots_ = len(shots)
        return self

    # ---------------------------------------------------------------- predicting
    def _check_fitted(self) -> None:
        if not hasattr(self, "method_"):
            raise RuntimeError("SelfPrompt is not fitted: call fit(images, masks) on the "
                               "labelled images, or SelfPrompt.load(path)")

    def predict(self, image) -> Prediction:
        """The mask of one image (a path or an RGB array), its quality score and the
        prompt used."""
        self._check_fitted()
        rgb, data = self._read(image)
        return self.predict_embedding(self._embed(rgb, data), rgb.shape[:2])

    def predict_embedding(self, features: np.ndarray, size: tuple[int, int], *,
                          seed: tuple[int, ...] | None = None) -> Prediction:
        """The same from the image's ``(256, 64, 64)`` embedding and its ``(H, W)``.

        ``seed`` seeds the prompt's random draws (box widening); by default ``(seed,)``
        for every image, as ``python -m selfprompt predict`` draws them: an image gets the
        same mask from its path, its pixels or its embedding, in any order, in any run.
        (The protocol passes ``(seed, fold, image)``.)"""
        self._check_fitted()
        from .embeddings import to_float32

        return self.method_.predict(to_float32(features), tuple(int(s) for s in size),
                                    seed=(self.seed,) if seed is None else tuple(seed))

    # ---------------------------------------------------------------- one small file
    def save(self, path: str | Path) -> Path:
        """Write the fitted model to ``path`` (``.npz``: the classifier's weights, the
        settings with ``auto``'s recipe, the backbone's name and checkpoint sha256)."""
        from .utils.io import atomic_open

        self._check_fitted()
        clf = self.method_.classifier_
        if not hasattr(clf, "coef_"):
            raise ValueError(f"saving keeps a linear classifier's weights; the preset's "
                             f"{type(clf).__name__} has none: use a preset with the logistic "
                             "classifier")
        settings = {"format": FORMAT, "backbone": self.backbone,
                    "checkpoint_sha256": self.backbone_.model_hash, "prompt": self.prompt,
                    "preset": get_preset_name(self.preset), "seed": self.seed,
                    "threshold": float(clf.threshold), "n_shots": self.n_shots_,
                    "classifier": {k: v for k, v in clf.get_params().items()
                                   if isinstance(v, (int, float, str, type(None)))}}
        if self.prompt == AUTO:
            settings["recipe"] = self.method_.recipe_.as_dict()
        path = Path(path)
        with atomic_open(path, "wb") as f:
            np.savez(f, coef=np.asarray(clf.coef_),
                     intercept=np.asarray(clf.intercept_),
                     classes=np.asarray(clf.classes_), settings=np.array(json.dumps(settings)))
        return path

    @classmethod
    def load(cls, path: str | Path, checkpoint: str | Path | None = None,
             device: str | None = None, cache: str | Path | None | bool = None
             ) -> "SelfPrompt":
        """A model :meth:`save` wrote. The backbone is loaded (``checkpoint``: where its
        weights are, if not where the kit finds them) and its sha256 must be the one the
        model was fitted with."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            settings = json.loads(str(arrays["settings"]))
        except (OSError, ValueError, KeyError) as err:
            raise ModelFileError(f"{path}: not a model SelfPrompt.save wrote ({err}); fit "
                                 "again and save it") from None
        if settings.get("format") != FORMAT:
            raise ModelFileError(f"{path}: model file format {settings.get('format')}, this "
                                 f"kit reads {FORMAT}: fit again and save it")
        model = cls(backbone=settings["backbone"], prompt=settings["prompt"],
                    preset=settings["preset"], checkpoint=checkpoint, device=device,
                    seed=settings["seed"], cache=cache)
        backbone = model._load_backbone()
        if backbone.model_hash != settings["checkpoint_sha256"]:
            from .assets.registry import CheckpointError

            raise CheckpointError(
                f"{path} was fitted on {settings['backbone']} checkpoint sha256 "
                f"{settings['checkpoint_sha256']}, but {backbone.checkpoint} has sha256 "
                f"{backbone.model_hash}: load it with the checkpoint it was fitted on "
                "(checkpoint=...), or fit again")
        model._restore(arrays, settings)
        return model

    def _restore(self, arrays: dict, settings: dict) -> None:
        """The fitted estimator from saved weights (no refit: the same numbers)."""
        from sklearn.linear_model import LogisticRegression

        from .classifier import LinearPixelClassifier
        from .methods.self_prompt import SelfPrompting
        from .presets import get_preset
        from .methods.recipe import Recipe

        clf = LinearPixelClassifier(**{**settings["classifier"],
                                       "threshold": settings["threshold"]})
        lr = LogisticRegression(C=clf.C, max_iter=clf.max_iter,
                                class_weight=clf.class_weight, random_state=clf.random_state)
        lr.coef_, lr.intercept_, lr.classes_ = (arrays["coef"], arrays["intercept"],
                                                arrays["classes"])
        lr.n_features_in_ = clf.n_features_in_ = arrays["coef"].shape[1]
        clf.model_, clf.coef_, clf.intercept_ = lr, lr.coef_, lr.intercept_
        clf.classes_, clf.n_iter_, clf.fit_route_ = lr.classes_, np.zeros(1, int), "loaded"
        base = SelfPrompting(self.preset, self.prompt if self.prompt != AUTO else "point_box")
        base.preset_, base.decoder_ = get_preset(self.preset), self._decoder()
        base.classifier_, base.n_shots_ = clf, settings["n_shots"]
        if self.prompt == AUTO:
            r = settings["recipe"]
            recipe = Recipe(r["prompt"], r["threshold"], r["cv"], r["scores"], r["n_scored"],
                            r["seconds"], r.get("reason", ""))
            from .methods import make_method

            self.method_ = make_method(AUTO, preset=self.preset)._set(base, recipe)
            # _set cut the classifier at the recipe's threshold; the saved one is that cut
        else:
            self.method_ = base
        self.prompt_ = getattr(self.method_, "prompt_", self.prompt)
        self.n_shots_ = settings["n_shots"]


def get_preset_name(preset) -> str:
    """A preset's name as :func:`~selfprompt.presets.get_preset` reads it back."""
    from .presets import get_preset

    return get_preset(preset).name
