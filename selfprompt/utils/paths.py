"""Where the kit keeps things by default (standard library only)."""
from __future__ import annotations

import os
from pathlib import Path

#: the kit's checkout (the folder holding ``selfprompt/``, ``notebooks/`` and ``data/``)
KIT_ROOT = Path(__file__).resolve().parents[2]


def cache_folder(cache: str | Path | None = None) -> Path:
    """The embedding cache: ``cache``, ``$SELFPROMPT_CACHE``, else the kit's ``data/embeddings``."""
    return Path(cache or os.environ.get("SELFPROMPT_CACHE") or KIT_ROOT / "data" / "embeddings")
