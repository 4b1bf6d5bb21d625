"""``python -m selfprompt COMMAND``: every job of the kit, from checking a data set to
installing the offline classroom bundle.

Each command is a thin wrapper over the package, so that what the command line does, a
notebook can do in the same words. Building the parser imports no NumPy or torch (``--help``
stays instant) and neither do ``bundle verify`` and ``bundle install``, which run on a bare
Python before anything is installed: each handler imports what it needs.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from .. import __version__
from . import data, evaluation, kit, method, own, teaching

#: the commands by purpose, in the order ``--help`` lists them
GROUPS = (("the method", method), ("your own images", own), ("data and weights", data),
          ("evaluation", evaluation), ("teaching", teaching), ("the kit", kit))

#: the kit's errors: (module, class, exit status). An error can only have been raised by a
#: module that was imported, so main() looks each up in sys.modules instead of importing it
#: (which would cost a bare Python's ``bundle verify`` its NumPy-free start). The book's and
#: the bundle's own errors exit 1, as their failed checks do.
KIT_ERRORS = (("selfprompt.assets.registry", "AssetError", 2),
              ("selfprompt.datasets.layouts", "DatasetError", 2),
              ("selfprompt.embeddings", "CacheError", 2),
              ("selfprompt.embeddings", "EncodingError", 2),
              ("selfprompt.utils.io", "FolderError", 2),
              ("selfprompt.teaching.book", "BookError", 1),
              ("selfprompt.teaching.bundle", "BundleError", 1))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m selfprompt",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"selfprompt-kit {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true",
                        help="show a failing command's traceback (or SELFPROMPT_DEBUG=1)")
    # argparse lists subcommands in one flat list; the grouped list is the description,
    # and COMMAND stands for all of them in the usage line
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="`python -m selfprompt COMMAND --help`: its options")
    listing = []
    for title, module in GROUPS:
        rows: list[tuple[str, str]] = []

        def command(name: str, help: str, func, **kwargs) -> argparse.ArgumentParser:
            rows.append((name, help))
            p = sub.add_parser(name, description=help, **kwargs)
            p.set_defaults(func=func)
            return p

        module.add_commands(command)
        listing.append((title, rows))
    width = max(len(name) for _, rows in listing for name, _ in rows)
    lines = [__doc__.split("\n\n")[0], "", "commands:"]
    for title, rows in listing:
        lines.append(f"  {title}:")
        lines += [f"    {name.ljust(width)}  {help}" for name, help in rows]
    parser.description = "\n".join(lines)
    return parser


def _kit_errors() -> dict[type, int]:
    return {getattr(sys.modules[module], name): status
            for module, name, status in KIT_ERRORS if module in sys.modules}


#: the exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it
INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run one command. A fault is one line on standard error and an exit status: 2 for
    the kit's errors and bad input, 1 for anything unforeseen, 130 for Ctrl-C; the
    traceback only with ``--debug`` or ``SELFPROMPT_DEBUG=1``."""
    args = build_parser().parse_args(argv)  # before heavy imports: --help stays instant
    debug = args.debug or os.environ.get("SELFPROMPT_DEBUG", "") not in ("", "0")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt as err:
        if debug:
            raise
        said = f" {err}." if str(err) else ""
        print(f"\ninterrupted.{said} Everything finished before the interruption is kept "
              "(written files are complete or absent); run the same command again to resume.",
              file=sys.stderr)
        return INTERRUPTED
    except Exception as err:
        if debug:
            raise
        status = next((s for cls, s in _kit_errors().items() if isinstance(err, cls)),
                      2 if isinstance(err, (FileNotFoundError, ValueError)) else None)
        if status is None:  # unforeseen: its type says more than its message alone
            print(f"error: {type(err).__name__}: {err} (rerun with --debug for the "
                  "traceback)", file=sys.stderr)
            return 1
        print(f"error: {err}", file=sys.stderr)
        return status
