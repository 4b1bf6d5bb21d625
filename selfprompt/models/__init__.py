"""The backbones: one registry table (``registry``), their weights (``weights``), loading
(``backbone``), the batched encoder (``encoder``) and what makes it fast on a CPU
(``onednn``, ``tinyvit``), LiteMedSAM (``litemedsam``) and a batched decoder
(``batchdecode``)."""
from ..utils.lazy import lazy_exports

_EXPORTS = {
    "BACKBONES": "registry", "BackboneSpec": "registry", "build": "registry",
    "Backbone": "backbone", "load_backbone": "backbone", "ImageEncoder": "encoder",
    "check_checkpoint": "weights", "default_checkpoint": "weights",
    "fetch_checkpoint": "weights", "make_tiny_checkpoint": "weights",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
