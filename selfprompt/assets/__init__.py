"""Checked assets: the registry of checkpoints and data-set archives, their hashes,
and resumable, verified downloads (``python -m selfprompt fetch``, ``assets``)."""
from .download import assets_status, fetch, install_dataset
from .hashing import file_sha256
from .registry import (Asset, AssetError, CheckpointError, DatasetLayout, load_registry,
                       packaged_path)

__all__ = ["Asset", "AssetError", "CheckpointError", "DatasetLayout", "assets_status",
           "fetch", "file_sha256", "install_dataset", "load_registry", "packaged_path"]
