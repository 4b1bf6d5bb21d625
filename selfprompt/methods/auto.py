"""``auto`` as an estimator: the prompt and threshold chosen on the k shots
(:func:`~selfprompt.methods.recipe.choose_recipe`), then the paper's method with them."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..presets import Preset
from .recipe import AUTO, AUTO_THRESHOLDS, choose_recipe
from .base import Method, Prediction, Shots
from .self_prompt import SelfPrompting, with_threshold


class Auto(Method):
    """Self-prompted SAM with the prompt and threshold cross-validated inside the shots
    (registry name ``auto``; :mod:`selfprompt.methods.recipe` says how).

    Parameters
    ----------
    preset : str or Preset, default="corrected"
    prompts : tuple of str or None, default=None
        The prompts it chooses among (None: every self-prompt the kit has,
        :func:`~selfprompt.methods.recipe.candidate_prompts`); ties go to the backbone's
        own prompt, then to the first listed.
    thresholds : tuple of float, default=AUTO_THRESHOLDS
        The classifier thresholds it chooses among (0.5, 0.3, 0.7), ties to the first.

    The inner splits are seeded by the shots' seed. With too few shots to
    cross-validate (k = 1, or no split with both classes) the backbone's own prompt at
    0.5 (``recipe_.cv == "none"``, ``recipe_.reason`` says why). Fitted: ``recipe_`` (the choice and
    its scores), ``prompt_``, ``threshold_``, ``classifier_`` (on all k shots, cut at
    the chosen threshold). Its score is the chosen prompt's (:class:`SelfPrompting`).
    """

    def __init__(self, preset: str | Preset = "corrected",
                 prompts: Sequence[str] | None = None,
                 thresholds: Sequence[float] = AUTO_THRESHOLDS) -> None:
        self.preset = preset
        self.prompts = prompts
        self.thresholds = thresholds

    def fit(self, shots: Shots) -> "Auto":
        base = SelfPrompting(self.preset).fit(shots)
        self.recipe_ = choose_recipe(shots.embeddings, shots.masks, base.preset_,
                                     shots.decoder, self.prompts, tuple(self.thresholds),
                                     seed=shots.seed)
        return self._set(base, self.recipe_)

    def _set(self, base: SelfPrompting, recipe) -> "Auto":
        """The fitted state from the preset's classifier and a recipe (the protocol, which
        has both already, sets them without fitting again)."""
        self.recipe_ = recipe
        self.prompt_, self.threshold_ = recipe.prompt, recipe.threshold
        self.method_ = SelfPrompting(base.preset, recipe.prompt, recipe.threshold)
        self.method_.preset_, self.method_.decoder_ = base.preset_, base.decoder_
        self.method_.classifier_ = with_threshold(base.classifier_, recipe.threshold)
        self.method_.n_shots_ = base.n_shots_
        self.classifier_ = self.method_.classifier_
        self.n_shots_ = base.n_shots_
        return self

    def predict(self, features: np.ndarray, size: tuple[int, int], *,
                seed: tuple[int, ...] = (0,)) -> Prediction:
        self._check_fitted("method_")
        return self.method_.predict(features, size, seed=seed)


__all__ = ["AUTO", "Auto"]
