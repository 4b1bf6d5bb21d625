"""Where the kit keeps things by default (standard library only).

In a checkout (the package beside ``pyproject.toml`` and ``notebooks/``) everything stays
where it always was: ``data/``, ``checkpoints/``, ``reports/`` and the embedding cache
under the checkout. Installed as a package (``pip install selfprompt-kit`` or ``pip
install .``), the kit has no checkout and never writes beside its own code: its home is
``$SELFPROMPT_HOME``, else the platform's folder for a user's application data (as
pooch and platformdirs choose it), and ``python -m selfprompt notebooks`` copies the
notebooks there.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

#: the distribution's name, and the name of its folder in the user's data folder
APP = "selfprompt-kit"
#: the folder holding ``selfprompt/`` (a checkout, or site-packages when installed)
_ABOVE = Path(__file__).resolve().parents[2]


def checkout() -> Path | None:
    """The kit's checkout, or None when the package is installed (no ``pyproject.toml``
    and ``notebooks/`` beside it)."""
    if (_ABOVE / "pyproject.toml").is_file() and (_ABOVE / "notebooks").is_dir():
        return _ABOVE
    return None


def user_data_folder(app: str = APP) -> Path:
    """The platform's folder for a user's application data: ``%LOCALAPPDATA%`` on
    Windows, ``~/Library/Application Support`` on macOS, ``$XDG_DATA_HOME`` (default
    ``~/.local/share``) elsewhere."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / app


def kit_home() -> Path:
    """Where data, checkpoints, results and the cache go: the checkout; installed,
    ``$SELFPROMPT_HOME`` or :func:`user_data_folder`."""
    return checkout() or Path(os.environ.get("SELFPROMPT_HOME") or user_data_folder())


#: the kit's home (:func:`kit_home`): a checkout, or the installed kit's user folder, which
#: holds the same ``data/``, ``checkpoints/``, ``reports/`` and ``notebooks/``
KIT_ROOT = kit_home()


def default_path(relative: str | Path) -> Path:
    """A default folder of the command line (``checkpoints``, ``reports/runs``): relative
    to the working folder in a checkout, as the Makefile runs it; under the kit's home
    when installed, so that no command writes into site-packages or wherever it is run."""
    return Path(relative) if checkout() else KIT_ROOT / relative


def cache_folder(cache: str | Path | None = None) -> Path:
    """The embedding cache: ``cache``, ``$SELFPROMPT_CACHE``, else the kit's ``data/embeddings``."""
    return Path(cache or os.environ.get("SELFPROMPT_CACHE") or KIT_ROOT / "data" / "embeddings")


def packaged_notebooks() -> Path | None:
    """The notebooks shipped inside the installed package (``selfprompt/notebooks``), or
    the checkout's ``notebooks/``; None when neither is there."""
    inside = Path(__file__).resolve().parents[1] / "notebooks"
    if (inside / "START_HERE.md").is_file():
        return inside
    root = checkout()
    return root / "notebooks" if root else None
