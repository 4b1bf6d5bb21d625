"""Data and weights: the known data sets, the assets' state, downloads, a synthetic set, and
the preflight that stops ``make reproduce`` at once when an asset cannot be had."""
from __future__ import annotations

import sys
from pathlib import Path

from ..utils.paths import KIT_ROOT, default_path
from .method import DATASET_NAMES


def cmd_datasets(args) -> int:
    from ..datasets.catalog import CATALOG, describe

    if args.name:
        print(describe(CATALOG[args.name]))
        return 0
    rows = [("name", "data set", "licence", "how to get it")]
    for e in CATALOG.values():
        rows.append((e.name, e.title.split(" (")[0], e.licence.split(";")[0].split(" (")[0],
                     "download" if e.download else f"by hand: {e.homepage}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3])
    print("\n`python -m selfprompt datasets NAME`: layout, mask convention, citation. Any "
          "other set: --images/--masks/--pair.")
    return 0


def cmd_synthetic(args) -> int:
    from ..datasets.synthetic import make_synthetic

    print(make_synthetic(args.out, args.n, args.seed))
    return 0


def cmd_assets(args) -> int:
    from ..assets import assets_status
    from ..datasets.catalog import download_layouts

    rows = assets_status(download_layouts(), args.checkpoints, args.data, args.mirror,
                         verify=args.verify)
    columns = ["name", "kind", "state", "path", "source"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns[:-1]}
    widths["source"] = 0
    for row in [dict(zip(columns, columns))] + rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
    return 1 if any(r["state"].startswith("corrupt") for r in rows) else 0


def cmd_fetch(args) -> int:
    """Print the path of the downloaded and checked asset."""
    if args.what == "checkpoint":
        from ..models.weights import fetch_checkpoint

        print(fetch_checkpoint(args.model, args.checkpoints, args.mirror))
    else:
        from ..datasets.catalog import fetch

        print(fetch(args.dataset, args.data, args.mirror))
    return 0


def cmd_preflight(args) -> int:
    from ..teaching.notebook import missing_assets

    problems = missing_assets(args.model, args.dataset, args.data_dir, args.checkpoints,
                              args.mirror)
    for message in problems:
        print(f"error: {message}", file=sys.stderr)
    return 2 if problems else 0


def add_commands(command) -> None:
    # the catalog and the backbone table are plain data (no NumPy): their names are choices
    from ..datasets.catalog import CATALOG
    from ..models.registry import with_weights

    p = command("datasets", "the known public data sets: layout, licence, where to get them",
                cmd_datasets)
    p.add_argument("name", nargs="?", choices=DATASET_NAMES, help="one set in full")

    mirror_help = "local folder or base URL replacing the official source ($SELFPROMPT_MIRROR)"
    p = command("assets", "list checkpoints and data sets and their state", cmd_assets)
    p.add_argument("--checkpoints", type=Path, default=default_path("checkpoints"))
    p.add_argument("--data", type=Path, default=default_path("data"))
    p.add_argument("--mirror", default=None, help=mirror_help)
    p.add_argument("--verify", action="store_true", help="compute every checksum (slow)")

    p = command("fetch", "download and check one asset", cmd_fetch)
    what = p.add_subparsers(dest="what", required=True)
    checkpoint = what.add_parser("checkpoint", help="a SAM checkpoint")
    checkpoint.add_argument("--model", choices=list(with_weights()), default="vit_b")
    checkpoint.add_argument("--checkpoints", type=Path, default=default_path("checkpoints"))
    checkpoint.add_argument("--mirror", default=None, help=mirror_help)
    data = what.add_parser("data", help="a data set, extracted and checked")
    data.add_argument("--dataset", choices=list(CATALOG), default="kvasir")
    data.add_argument("--data", type=Path, default=default_path("data"))
    data.add_argument("--mirror", default=None, help=mirror_help)

    p = command("synthetic", "write a small synthetic data set (Kvasir layout)", cmd_synthetic)
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)

    p = command("preflight", "stop at once when a checkpoint or data set cannot be had",
                cmd_preflight)
    p.add_argument("--model", default="vit_b")
    p.add_argument("--dataset", default="kvasir")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--checkpoints", type=Path, default=KIT_ROOT / "checkpoints")
    p.add_argument("--mirror", default=None)
