"""Every variant the protocol scores, as one group fitted on a fold's shots.

The paper's four variants and the prompt strategies share one classifier, one coarse
mask and its prompts (and under the ``paper`` preset one sequential random stream, in
the fold's test order): they are decoded together (:func:`~selfprompt.pipeline.segment`)
and cannot be fitted apart without losing that. Around them the group holds the other
methods the same table compares, each its own estimator of this package, fitted on
the same shots: ``auto`` (:class:`~selfprompt.methods.auto.Auto`), the fine-tuned
decoder (:class:`~selfprompt.methods.finetune.FineTuned`, prompted with the group's
own prompts: ``ft_*``), PerSAM and PerSAM-F (each form under its variant name,
:data:`~selfprompt.methods.persam.PERSAM_VARIANTS`); and the ``gt_*`` bounds, whose prompts
come from the true mask, given to :meth:`Variants.segment` explicitly.
"""
from __future__ import annotations

import time

import numpy as np

from ..pipeline import Segmentation, segment
from ..presets import VARIANTS, Preset
from .base import Method, Shots
from .recipe import AUTO
from .registry import METHODS
from .self_prompt import SelfPrompting


def _split(variants) -> dict[str, list[str]]:
    """The variants by what computes them, each list in the order given."""
    from ..strategies import NEEDS_PERSAM, NEEDS_TRUTH

    out: dict[str, list[str]] = {"own": [], "ft": [], "truth": [], "persam": [], "auto": []}
    for v in variants:
        key = ("auto" if v == AUTO else "ft" if v.startswith("ft_") else
               "truth" if v in NEEDS_TRUTH else "persam" if v in NEEDS_PERSAM else "own")
        out[key].append(v)
    return out


class Variants(Method):
    """The protocol's variants on one fold's shots (not in :data:`METHODS`: it answers
    many variants at once, as a :class:`~selfprompt.pipeline.Segmentation`).

    Parameters
    ----------
    preset : str or Preset, default="corrected"
    variants : tuple of str, default=VARIANTS
        Any of the paper's, :data:`~selfprompt.strategies.STRATEGIES` and ``auto``.
    finetune : dict or None, default=None
        :class:`~selfprompt.methods.finetune.FineTuned`'s fine-tuning parameters for
        the ``ft_*`` variants (None: its defaults).

    Fitted: ``own_`` (:class:`SelfPrompting`: ``classifier_``), and as the variants ask
    ``auto_``, ``finetuned_``, ``persam_`` (by name); ``seconds_`` each one's fit.
    """

    def __init__(self, preset: str | Preset = "corrected", variants=VARIANTS,
                 finetune: dict | None = None) -> None:
        self.preset = preset
        self.variants = variants
        self.finetune = finetune

    @property
    def classifier_(self):
        return self.own_.classifier_

    def fit(self, shots: Shots, own: SelfPrompting | None = None) -> "Variants":
        """Fit every method the variants need on ``shots`` (``own``: the preset's
        classifier when already fitted on the same shots)."""
        from .auto import Auto
        from .recipe import choose_recipe
        from .finetune import FineTuned

        parts, self.seconds_ = _split(self.variants), {}
        start = time.perf_counter()
        self.own_ = own or SelfPrompting(self.preset).fit(shots)
        self.seconds_["fit"] = round(time.perf_counter() - start, 3)
        if parts["ft"]:
            ft = FineTuned(self.preset, **(self.finetune or {}))
            self.finetuned_ = ft._set(self.own_, ft.tuner().fit(
                shots.decoder.backbone, shots.embeddings, shots.masks))
            self.seconds_["finetune"] = self.finetuned_.tuner_.seconds_
        if parts["auto"]:
            recipe = choose_recipe(shots.embeddings, shots.masks, self.own_.preset_,
                                   shots.decoder, seed=shots.seed)
            self.auto_ = Auto(self.preset)._set(self.own_, recipe)
            self.seconds_["auto"] = recipe.seconds_
        self.persam_ = {n: METHODS[n]().fit(shots) for n in parts["persam"]}
        for n, m in self.persam_.items():
            self.seconds_[f"{n}_fit"] = m.model_.seconds_
        self.n_shots_ = len(shots)
        return self

    def segment(self, features: np.ndarray, size: tuple[int, int], rng,
                seed: tuple[int, ...] = (0,), truth: np.ndarray | None = None) -> Segmentation:
        """Every variant of one image: the shared coarse mask, prompts (box widening from
        ``rng``: the ``paper`` preset's stream, or the image's own generator) and SAM's
        decoding, then each other method; ``seed`` (seed, fold, image) seeds their own
        draws; ``truth`` is read by the ``gt_*`` bounds only."""
        from ..strategies import Inputs, run_strategies

        self._check_fitted("own_")
        parts, own = _split(self.variants), self.own_
        decoder, preset, seed = own.decoder_, own.preset_, tuple(seed)
        seg = segment(own.classifier_, decoder, features, size, preset, rng, parts["own"],
                      seed=seed)
        img_size = decoder.backbone.img_size
        if parts["ft"]:
            self.finetuned_.decoder_.set_embedding(features, size)
            x = Inputs(seg.prompts, preset, None, None, seed, img_size)
            seg.masks.update(run_strategies(parts["ft"], decoder, x, self.finetuned_.decoder_,
                                            seg.seconds, seg.quality))
        if parts["truth"]:
            if truth is None:
                raise ValueError(f"variants {parts['truth']} are bounds from the true mask: "
                                 "pass truth=")
            x = Inputs(seg.prompts, preset, None, truth, seed, img_size)
            seg.masks.update(run_strategies(parts["truth"], decoder, x, None, seg.seconds,
                                            seg.quality))
        for n, m in self.persam_.items():
            start = time.perf_counter()
            p = m.predict(features, size, seed=seed)
            seg.masks[n], seg.quality[n] = p.mask, p.score
            seg.seconds[n] = time.perf_counter() - start
        if parts["auto"]:
            start = time.perf_counter()
            auto = self.auto_
            # the variant it chose, when computed alike (same threshold, the box widened
            # by the image's own generator): the same mask, not decoded twice
            same = (auto.threshold_ == own.classifier_.threshold and preset.rng != "sequential"
                    and auto.prompt_ in seg.masks)
            if same:
                seg.masks[AUTO], seg.quality[AUTO] = seg.masks[auto.prompt_], seg.quality[
                    auto.prompt_]
            else:
                p = auto.predict(features, size, seed=seed)
                seg.masks[AUTO], seg.quality[AUTO] = p.mask, p.score
            seg.seconds[AUTO] = time.perf_counter() - start
        seg.masks = {v: seg.masks[v] for v in self.variants}
        seg.quality = {v: seg.quality[v] for v in self.variants}
        return seg
