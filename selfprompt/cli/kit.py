"""The kit itself: where a number was computed, and its notebooks outside a checkout."""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

#: the page JupyterLab opens first: what to run, in which order, and how long each takes
START_PAGE = "START_HERE.md"


def cmd_provenance(args) -> int:
    from ..utils.provenance import environment

    print(json.dumps(environment(), indent=1))
    return 0


def notebooks_folder(to: Path | None = None, quiet: bool = False) -> Path:
    """The folder a student opens: a checkout's ``notebooks/``; installed, a copy of the
    packaged notebooks in ``to`` (default: the kit's home). A notebook already there is
    kept as it is (it may hold the student's work); only missing ones are copied."""
    from ..utils.paths import KIT_ROOT, checkout, packaged_notebooks

    source = packaged_notebooks()
    if source is None:
        raise FileNotFoundError("this installation of selfprompt-kit has no notebooks "
                                "(selfprompt/notebooks is missing): reinstall it with pip")
    if to is None and checkout():
        if not quiet:
            print(f"notebooks: {source} (a checkout: nothing to copy)")
        return source
    target = Path(to) if to is not None else KIT_ROOT / "notebooks"
    copied = 0
    for path in sorted(source.rglob("*")):
        if path.suffix not in (".ipynb", ".md") or "__pycache__" in path.parts:
            continue
        dest = target / path.relative_to(source)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            copied += 1
    if not quiet:
        print(f"notebooks: {target} ({copied} copied, the others already there and kept)")
    return target


def cmd_notebooks(args) -> int:
    notebooks_folder(args.to, quiet=args.quiet)
    return 0


def cmd_lab(args) -> int:
    import importlib.util

    if importlib.util.find_spec("jupyterlab") is None and not args.print_command:
        print("error: JupyterLab is not installed in this environment: pip install "
              "\"selfprompt-kit[notebooks]\" (or `make venv` in a checkout)", file=sys.stderr)
        return 2
    folder = notebooks_folder(args.to, quiet=args.quiet)
    # JupyterLab rooted at the notebooks, START_HERE.md open; further options go to it
    extra = args.jupyter_args[1:] if args.jupyter_args[:1] == ["--"] else args.jupyter_args
    command = [sys.executable, "-m", "jupyterlab", START_PAGE, *extra]
    if args.print_command:
        print(f"cd {folder} && {' '.join(command)}")
        return 0
    return subprocess.call(command, cwd=folder)


def add_commands(command) -> None:
    command("provenance", "kit commit, libraries, CPU, arithmetic settings (JSON)", cmd_provenance)
    p = command("notebooks", "copy the notebooks into the kit's folder (an installed kit; a "
                "checkout has them in notebooks/)", cmd_notebooks)
    p.add_argument("--to", type=Path, default=None,
                   help="where (default: $SELFPROMPT_HOME/notebooks or the user data folder)")
    p = command("lab", "JupyterLab on the notebooks, START_HERE.md open", cmd_lab)
    p.add_argument("--to", type=Path, default=None, help="the notebooks' folder, as for "
                   "`notebooks` (default: the checkout's, or the kit's home)")
    p.add_argument("--print-command", action="store_true",
                   help="print the command instead of starting JupyterLab")
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER,
                   help="options passed on to jupyter lab (e.g. --no-browser)")
