"""The methods the kit compares, each one scikit-learn estimator: parameters in
``__init__``, ``fit(shots)`` on the k labelled images, ``predict(features, size)`` one
image's mask and quality score (``base``); the paper's method (``self_prompt``), its
prompt and threshold chosen on the shots (``auto``), the fine-tuned decoder
(``finetune``) and PerSAM (``persam``), named in one registry (``registry``); how
``auto`` chooses (``recipe``); and the group the protocol fits on each fold's shots
(``variants``)."""
from ..utils.lazy import lazy_exports

_EXPORTS = {
    "Shots": "base", "Prediction": "base", "Method": "base",
    "METHODS": "registry", "make_method": "registry",
    "SelfPrompting": "self_prompt", "Auto": "auto", "FineTuned": "finetune",
    "PerSAMMethod": "persam", "PerSAMFMethod": "persam", "PERSAM_VARIANTS": "persam",
    "Variants": "variants",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
