"""``main``: the bench's sections in the order they run, each row written out as it is
measured, and the entry of the child processes that measure a section on their own.

The order puts what a borrowed GPU's few minutes are for first (the speed grid, the
targets' models first) and the slowest rows last (``torch.compile``); the exit status
is 1 when a row failed.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.bench.compiled import compiled_rows
from benchmarks.bench.memory import classifier_child, encode_child, memory_section
from benchmarks.bench.options import parse_args
from benchmarks.bench.predict import predict_child, predict_section
from benchmarks.bench.speed import speed_section
from benchmarks.bench.stages import stages_child, stages_section
from benchmarks.bench.sweep import full_size_hours, sweep_child, sweep_section
from benchmarks.bench.sweep_timing import sweep_rows
from benchmarks.bench.table import Table, measuring

#: what ``--child <name>`` runs (:func:`~benchmarks.bench.common.run_child`)
CHILDREN = {"sweep": sweep_child, "classifier": classifier_child, "encode": encode_child,
            "stages": stages_child, "predict": predict_child}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return 0

    rows = Table(Path(args.out), time.perf_counter(), sys.argv[1:] if argv is None else argv)
    if not args.gpu_only:
        with measuring(rows, "1", "sweep: kit flow against the authors'"):
            sweep_section(args, rows)
    if not args.skip_speed:
        speed_section(args, rows)
    full_size_hours(args, rows)
    if not args.gpu_only:
        memory_section(args, rows)
    if args.stages_test:
        stages_section(args, rows)
    if not args.gpu_only:
        predict_section(args, rows)
    if not args.gpu_only:
        with measuring(rows, "5", "measured sweep after encoding (make reproduce)"):
            sweep_rows(args, rows)
    if not args.skip_speed:
        compiled_rows(args, rows)
    rows.write(done=True)
    if rows.failed:
        print(f"{len(rows.failed)} row(s) failed: {', '.join(r[1] for r in rows.failed)}",
              file=sys.stderr)
    return 1 if rows.failed else 0
