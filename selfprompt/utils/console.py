"""One line of progress for the person at the terminal (standard library only)."""
from __future__ import annotations

import sys
from typing import TextIO


def say(message: str, *, quiet: bool = False, stream: TextIO | None = None) -> None:
    """Print ``message`` (to ``stream``, standard output by default) unless ``quiet``.

    Where tqdm is already loaded, a progress bar may be on screen: the line goes through
    ``tqdm.write`` so that it lands above the bar instead of through it. tqdm is never
    imported here, because the offline bundle reports progress before any package is
    installed.
    """
    if quiet:
        return
    stream = stream or sys.stdout
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None and hasattr(tqdm, "tqdm"):
        tqdm.tqdm.write(message, file=stream)
    else:
        print(message, file=stream, flush=True)
