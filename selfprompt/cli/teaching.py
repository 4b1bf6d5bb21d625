"""Teaching: the student notebook from the solutions, the classroom check, the book, and the
offline bundle.

``bundle verify`` and ``bundle install`` run on a bare Python before anything is installed
(``make install-offline``): this module, and what they import, need the standard library only.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..utils.paths import KIT_ROOT


def cmd_exercises(args) -> int:
    from ..teaching.exercises import student_version

    print(f"{args.out}: {student_version(args.solutions, args.out)} solutions stubbed")
    return 0


def cmd_classroom(args) -> int:
    from ..teaching.classroom import run, to_markdown

    checks = run(args.notebooks, args.dataset, args.backbone, keep=args.keep)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(to_markdown(checks))
    failed = [c.step for c in checks if not c.ok]
    print("\nready for class" if not failed else f"\nNOT ready: {', '.join(failed)} failed")
    return 1 if failed else 0


def cmd_book(args) -> int:
    from ..teaching.book import build

    start = time.perf_counter()
    build(args.out, args.executed, solutions=not args.no_solutions, timeout=args.timeout)
    print(f"[book] done in {time.perf_counter() - start:.0f} s")
    return 0


def cmd_bundle(args) -> int:
    from ..teaching import bundle

    if args.action == "build":
        bundle.build(args.out, args.data, args.dataset, args.backbone, args.cache, args.limit,
                     args.requirements, () if args.no_bootstrap else bundle.BOOTSTRAP,
                     args.platform, args.python_version)
        return 0
    if args.action == "verify":
        problems, extra = bundle.verify(args.bundle)
        for rel in extra:
            print(f"extra: {rel} (not in the manifest)")
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            print(f"{args.bundle}: {len(problems)} problem(s); copy the bundle again",
                  file=sys.stderr)
            return 1
        m = bundle.read_manifest(args.bundle)
        print(f"ok: {len(m['files'])} files, {m['total_bytes'] / 1e6:.1f} MB, as listed "
              f"(commit {m['commit'][:12]}, Python {m['python']}, {m['platform']})")
        return 0
    return bundle.install(args.bundle, args.venv, args.kit, args.data_dir, args.cache,
                          not args.no_check, args.notebooks)


def add_commands(command) -> None:
    from ..teaching.classroom import NOTEBOOKS  # a plain list: no NumPy, no Jupyter

    p = command("exercises", "write the student notebook from the solutions", cmd_exercises)
    p.add_argument("solutions", type=Path)
    p.add_argument("out", type=Path)

    p = command("classroom", "run every notebook as a student would: ready for class?",
                cmd_classroom)
    p.add_argument("--notebooks", nargs="*", default=list(NOTEBOOKS),
                   help="which notebooks to run (names without .ipynb; none: skip them)")
    p.add_argument("--dataset", default="kvasir")
    p.add_argument("--backbone", default="medsam_lite")
    p.add_argument("--report", type=Path, default=None, help="also write the table here")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="keep the executed notebooks here (`make book BOOK_EXECUTED=DIR` "
                        "renders them)")

    p = command("book", "render the notebooks into one static HTML book", cmd_book)
    p.add_argument("--out", type=Path, default=KIT_ROOT / "reports" / "book")
    p.add_argument("--executed", type=Path, default=None, metavar="DIR",
                   help="render executed copies from DIR (<name>.ipynb, e.g. `make "
                        "classroom-check`'s reports/executed) instead of running the notebooks")
    p.add_argument("--no-solutions", action="store_true",
                   help="leave the exercises' solutions out of the book")
    p.add_argument("--timeout", type=int, default=900, help="seconds a cell may run")

    p = command("bundle", "the offline classroom bundle: build, verify, install", cmd_bundle)
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="write (or complete) a bundle")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--data", type=Path, default=None,
                   help="the instructor's data-set folder (default: the notebooks')")
    b.add_argument("--dataset", default="kvasir")
    b.add_argument("--backbone", default="medsam_lite")
    b.add_argument("--cache", type=Path, default=None, help="embedding cache to copy from")
    b.add_argument("--limit", type=int, default=None,
                   help="images (default: the most any notebook reads)")
    b.add_argument("--requirements", type=Path, default=KIT_ROOT / "requirements-lock.txt")
    b.add_argument("--platform", default=None, help="pip platform tag of the lab machines")
    b.add_argument("--python-version", default=None, help="their Python, X.Y")
    b.add_argument("--no-bootstrap", action="store_true",
                   help="leave out pip and setuptools (the kit's wheel still installs)")
    v = sub.add_parser("verify", help="check every file against the manifest")
    v.add_argument("bundle", type=Path)
    i = sub.add_parser("install", help="verify, install from the wheels, place data, check")
    i.add_argument("bundle", type=Path)
    i.add_argument("--venv", type=Path, default=None,
                   help="virtual environment to create or fill (default: this Python's)")
    i.add_argument("--kit", type=Path, default=KIT_ROOT,
                   help="the kit's source tree, installed editable (default: this one); "
                   "a folder without pyproject.toml: the bundle's wheel of the kit instead")
    i.add_argument("--data-dir", type=Path, default=None)
    i.add_argument("--cache", type=Path, default=None)
    i.add_argument("--no-check", action="store_true", help="skip the classroom check")
    i.add_argument("--notebooks", nargs="*", default=None,
                   help="notebooks the check runs (default: all; none: skip them)")
