"""The fine-tuned decoder as an estimator: SAM's mask decoder trained on the k shots
(:class:`~selfprompt.evaluation.finetune.DecoderFineTuner`), prompted as the paper
prompts it from the classifier's coarse mask."""
from __future__ import annotations

import numpy as np

from ..pipeline import segment
from ..presets import Preset
from .base import Method, Prediction, Shots
from .self_prompt import SelfPrompting

#: the prompts the fine-tuned decoder is scored with (variant ``ft_<prompt>``)
FT_PROMPTS = ("box", "point_box", "no_prompt")


class FineTuned(Method):
    """SAM's mask decoder fine-tuned on the shots (registry name ``finetuned``).

    Parameters
    ----------
    preset : str or Preset, default="corrected"
        The classifier whose coarse mask gives the prompts.
    prompt : {"box", "point_box", "no_prompt"}, default="box"
    epochs, lr, weight_decay, max_widen, seed :
        The fine-tuning's (:class:`~selfprompt.evaluation.finetune.DecoderFineTuner`).
    progress : bool, default=False

    Fitted: ``tuner_`` (its losses, seconds), ``decoder_`` (the fine-tuned decoder),
    ``classifier_``. The score is SAM's predicted IoU from the fine-tuned decoder.
    """

    def __init__(self, preset: str | Preset = "corrected", prompt: str = "box",
                 epochs: int = 10, lr: float = 1e-4, weight_decay: float = 0.01,
                 max_widen: int = 20, seed: int = 0, progress: bool = False) -> None:
        self.preset = preset
        self.prompt = prompt
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_widen = max_widen
        self.seed = seed
        self.progress = progress

    def tuner(self):
        """An unfitted :class:`~selfprompt.evaluation.finetune.DecoderFineTuner` with
        this estimator's settings."""
        from ..evaluation.finetune import DecoderFineTuner

        return DecoderFineTuner(self.epochs, self.lr, self.weight_decay, self.max_widen,
                                self.seed, self.progress)

    def fit(self, shots: Shots) -> "FineTuned":
        if self.prompt not in FT_PROMPTS:
            raise ValueError(f"unknown prompt {self.prompt!r} for the fine-tuned decoder; "
                             f"choose from {', '.join(FT_PROMPTS)}")
        base = SelfPrompting(self.preset).fit(shots)
        tuner = self.tuner().fit(shots.decoder.backbone, shots.embeddings, shots.masks)
        return self._set(base, tuner)

    def _set(self, base: SelfPrompting, tuner) -> "FineTuned":
        self.preset_, self.classifier_ = base.preset_, base.classifier_
        self.base_decoder_ = base.decoder_
        self.tuner_ = tuner
        self.decoder_ = tuner.decoder(base.decoder_.backbone)
        self.n_shots_ = base.n_shots_
        return self

    @property
    def variant(self) -> str:
        return f"ft_{self.prompt}"

    def predict(self, features: np.ndarray, size: tuple[int, int], *,
                seed: tuple[int, ...] = (0,)) -> Prediction:
        self._check_fitted("decoder_")
        from ..strategies import Inputs, run_strategies

        v, features, size = self.variant, np.asarray(features, np.float32), tuple(size)
        seg = segment(self.classifier_, self.base_decoder_, features, size, self.preset_,
                      np.random.default_rng(list(seed)), (), seed=tuple(seed))
        self.decoder_.set_embedding(features, size)
        x = Inputs(seg.prompts, self.preset_, None, None, tuple(seed),
                   self.base_decoder_.backbone.img_size)
        quality: dict[str, float] = {}
        mask = run_strategies([v], self.base_decoder_, x, self.decoder_, scores=quality)[v]
        return Prediction(mask, quality[v], v)
