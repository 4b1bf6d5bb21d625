"""PRIVATE stand-in for ``selfprompt.api.SelfPrompt`` until that module exists.

``predict`` is written against the contract of ``selfprompt.api.SelfPrompt`` (fit on
embeddings; ``method_.predict(features, size, seed=...)`` giving ``mask``, ``score``,
``prompt``; ``save``/``load``; ``prompt_``, ``n_shots_``, ``backbone_``). Where that
module is present, the command uses it and this one is not imported; this covers the
same surface, and nothing more, with the method's own steps
(:func:`~selfprompt.pipeline.fit_classifier`, :func:`~selfprompt.recipe.choose_recipe`,
:func:`~selfprompt.pipeline.segment`) so that a test of the command runs the same
computation as ``run``. Only the prompts that need nothing fitted beyond the
classifier (the paper's four and the truth-free strategies) and ``auto``.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUTO = "auto"
FORMAT = 1


@dataclass
class _Prediction:
    mask: np.ndarray
    score: float
    prompt: str


class _Method:
    """The fitted classifier (cut at the recipe's threshold) and the prompt."""

    def __init__(self, clf, decoder, preset, prompt: str) -> None:
        self.clf, self.decoder, self.preset, self.prompt = clf, decoder, preset, prompt

    def predict(self, features, size, *, seed=(0,)) -> _Prediction:
        from ..embeddings import to_float32
        from ..pipeline import segment

        features = to_float32(np.asarray(features))
        seg = segment(self.clf, self.decoder, features, tuple(size), self.preset,
                      np.random.default_rng(list(seed)), (self.prompt,), seed=tuple(seed))
        return _Prediction(seg.masks[self.prompt], self._score(features, seg), self.prompt)

    def _score(self, features, seg) -> float:
        """SAM's own predicted IoU of the mask for the paper's SAM prompts; else the
        classifier's mean confidence (max(p, 1 - p) over the cells)."""
        p = seg.prompts
        asks = {"point": (p.points, p.labels, None), "box": (None, None, p.box),
                "point_box": (p.points, p.labels, p.box)}.get(self.prompt)
        if asks is not None and any(a is not None for a in asks):
            points, labels, box = asks
            _, iou, _ = self.decoder.predictor.predict(
                point_coords=None if points is None else np.asarray(points, np.float32),
                point_labels=None if labels is None else np.asarray(labels),
                box=None if box is None else np.asarray(box, np.float32)[None],
                multimask_output=False)
            return float(np.clip(iou[0], 0, 1))
        if asks is not None:            # nothing to prompt with: an empty mask, no trust
            return 0.0
        prob = self.clf.probability_map(features)
        return float(np.maximum(prob, 1 - prob).mean())


class SelfPrompt:
    """The contract's surface (see the module docstring), private to ``predict``."""

    def __init__(self, backbone: str = "medsam_lite", prompt: str = AUTO,
                 preset: str = "corrected", checkpoint=None, device=None, seed: int = 42,
                 cache=None) -> None:
        self.backbone, self.prompt, self.preset = backbone, prompt, preset
        self.checkpoint, self.device, self.seed, self.cache = checkpoint, device, seed, cache

    def _backbone(self):
        from ..models.backbone import load_backbone

        return load_backbone(self.backbone, self.checkpoint, self.device)

    def fit_embeddings(self, embeddings, masks) -> "SelfPrompt":
        from ..decode import PromptDecoder
        from ..pipeline import fit_classifier
        from ..presets import get_preset
        from ..recipe import choose_recipe, with_threshold

        check_prompt(self.prompt)
        self.backbone_ = self._backbone()
        preset = get_preset(self.preset)
        masks = list(masks)
        decoder = PromptDecoder(self.backbone_)
        clf = fit_classifier(embeddings, masks, preset, img_size=self.backbone_.img_size)
        prompt, threshold = self.prompt, preset.threshold
        if prompt == AUTO:
            recipe = choose_recipe(embeddings, masks, preset, decoder, seed=self.seed)
            prompt, threshold = recipe.prompt, recipe.threshold
            clf = with_threshold(clf, threshold)
        self.prompt_, self.threshold_, self.n_shots_ = prompt, float(threshold), len(masks)
        self.method_ = _Method(clf, decoder, preset, prompt)
        return self

    def save(self, path) -> Path:
        from ..utils.io import atomic_open

        clf = self.method_.clf
        settings = {"format": FORMAT, "backbone": self.backbone, "preset": self.preset,
                    "prompt": self.prompt, "prompt_": self.prompt_,
                    "threshold_": self.threshold_, "n_shots_": self.n_shots_,
                    "seed": self.seed, "checkpoint_sha256": self.backbone_.model_hash,
                    "checkpoint": str(self.checkpoint) if self.checkpoint else None}
        buffer = io.BytesIO()
        np.savez(buffer, coef=clf.coef_, intercept=clf.intercept_, classes=clf.classes_,
                 settings=np.frombuffer(json.dumps(settings).encode(), np.uint8))
        with atomic_open(Path(path), "wb") as f:
            f.write(buffer.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path, device=None) -> "SelfPrompt":
        from sklearn.linear_model import LogisticRegression

        from ..classifier import LinearPixelClassifier
        from ..decode import PromptDecoder
        from ..presets import get_preset

        with np.load(Path(path), allow_pickle=False) as f:
            settings = json.loads(bytes(f["settings"]).decode())
            coef, intercept, classes = f["coef"], f["intercept"], f["classes"]
        model = cls(settings["backbone"], settings["prompt"], settings["preset"],
                    settings["checkpoint"], device, settings["seed"])
        model.backbone_ = model._backbone()
        if model.backbone_.model_hash != settings["checkpoint_sha256"]:
            raise ValueError(f"{path} was fitted with another {settings['backbone']} "
                             f"checkpoint (sha256 {settings['checkpoint_sha256'][:12]}...), "
                             f"not {model.backbone_.checkpoint}")
        clf = LinearPixelClassifier(threshold=settings["threshold_"])
        clf.model_ = LogisticRegression()
        for obj in (clf, clf.model_):
            obj.coef_, obj.intercept_, obj.classes_ = coef, intercept, classes
            obj.n_features_in_ = coef.shape[1]
        model.prompt_, model.threshold_ = settings["prompt_"], settings["threshold_"]
        model.n_shots_ = settings["n_shots_"]
        model.method_ = _Method(clf, PromptDecoder(model.backbone_),
                                get_preset(settings["preset"]), model.prompt_)
        return model


def check_prompt(prompt: str) -> None:
    """``auto``, one of the paper's four, or a strategy that needs nothing but the
    classifier (not the truth, a fine-tuned decoder or PerSAM); else a ValueError."""
    from ..presets import VARIANTS
    from ..strategies import NEEDS_PERSAM, NEEDS_TRUTH, STRATEGIES

    usable = [AUTO, *VARIANTS] + [s for s in STRATEGIES if s not in NEEDS_TRUTH
                                  and s not in NEEDS_PERSAM and not s.startswith("ft_")]
    if prompt not in usable:
        raise ValueError(f"unknown prompt {prompt!r}: choose from {', '.join(usable)}")
