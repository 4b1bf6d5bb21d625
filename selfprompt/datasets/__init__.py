"""Data sets as published: reading and checking pairs (``reader``), declared layouts
(``layouts``), the catalog of public sets (``catalog``) and synthetic pairs (``synthetic``)."""
from ..utils.lazy import lazy_exports

_EXPORTS = {
    "CATALOG": "catalog", "PublicDataset": "catalog", "DatasetError": "layouts",
    "Layout": "layouts", "parse_pair": "layouts", "Dataset": "reader", "Sample": "reader",
    "open_dataset": "reader", "read_image": "reader", "read_mask": "reader",
    "summarise_check": "reader", "validate": "reader", "make_synthetic": "synthetic",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
