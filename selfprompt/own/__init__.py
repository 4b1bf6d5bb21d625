"""One's own images, no masks: which to label first (``suggest``), and the fitted model
over a whole folder (``predict``: masks, overlays and a table, the least confident
first). The command line's ``suggest`` and ``predict`` are thin wrappers over these."""
from ..utils.lazy import lazy_exports

_EXPORTS = {
    "ImageFile": "images", "list_images": "images",
    "predict_images": "predict", "overlay": "predict", "read_table": "predict",
    "Summary": "predict",
    "suggest": "suggest", "Suggestion": "suggest",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
