"""The public names: ``import selfprompt as sp`` and each subpackage's own."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ("selfprompt", "selfprompt.models", "selfprompt.datasets", "selfprompt.methods",
            "selfprompt.own")


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_resolves_and_is_listed(name):
    package = importlib.import_module(name)
    for public in package.__all__:
        assert getattr(package, public) is not None, f"{name}.{public}"
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        getattr(package, "nothing_here")


def test_the_method_is_reachable_by_name():
    import selfprompt as sp

    for step in ("load_backbone", "open_dataset", "embed_dataset", "fit_classifier",
                 "coarse_mask", "make_prompts", "PromptDecoder", "segment", "dice",
                 "get_preset", "Experiment"):
        assert callable(getattr(sp, step)), step
    assert set(sp.PRESETS) == {"paper", "corrected"}
    assert {"vit_b", "medsam_lite", "vit_t", "tiny"} <= set(sp.BACKBONES)


def test_importing_the_package_does_not_import_torch():
    code = ("import sys, selfprompt, selfprompt.models, selfprompt.datasets; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
