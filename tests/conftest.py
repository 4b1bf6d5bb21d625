"""Shared fixtures: the real SAM architecture at a tiny size, real and synthetic data.

The tiny checkpoint is written to a file and loaded through ``load_backbone``, the
same code path users hit with a downloaded checkpoint. Real Kvasir-SEG images are
read from ``../shared/data/kvasir-seg`` when that folder exists; tests that need them
skip cleanly otherwise (a user's clone has no ``../shared``).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KVASIR = REPO.parent / "shared" / "data" / "kvasir-seg"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end runs (seconds to a minute each)")


@pytest.fixture(scope="session")
def kvasir_dir() -> Path:
    if not (KVASIR / "images").is_dir():
        pytest.skip(f"real Kvasir-SEG not found at {KVASIR} (only present beside CI's clone)")
    return KVASIR


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    from selfprompt.datasets.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synthetic"), n=10, seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from selfprompt.models.backbone import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "sam_tiny_seed0.pth", seed=0)


@pytest.fixture(scope="session")
def tiny_backbone(tiny_checkpoint):
    from selfprompt.models.backbone import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("tiny", tiny_checkpoint, device="cpu")
