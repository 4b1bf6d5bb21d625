"""Section 5, a whole sweep measured: the wall time and process-seconds by stage of a
finished ``make reproduce`` (``--sweep-runs``), read from what its folds recorded, and
the committed reference's seconds of fits and decoding divided by that wall time.
"""
from __future__ import annotations

import json
from pathlib import Path

from benchmarks.bench.common import reference_provenance


def measured_sweep(runs: Path) -> dict | None:
    """A finished sweep's time, from what its folds recorded: each fold's JSON (seconds
    of fit, replay and segment) and its executed notebook (papermill's start and end).
    None when ``runs`` holds no executed fold."""
    from datetime import datetime

    folds = sorted(runs.glob("*/k*/fold*.json"))
    books = sorted((runs / "notebooks").glob("05_evaluate_*.ipynb"))
    books = [b for b in books if not b.name.endswith(".tmp.ipynb")]
    if not folds or not books:
        return None
    stage = {"fit": 0.0, "replay": 0.0, "segment": 0.0}
    threads = set()
    for f in folds:
        meta = json.loads(f.read_text())
        for key in stage:
            stage[key] += meta["seconds"].get(key, 0.0)
        threads.add(meta.get("environment", {}).get("torch_threads"))
    starts, ends, total = [], [], 0.0
    for b in books:
        pm = json.loads(b.read_text())["metadata"].get("papermill", {})
        if pm.get("start_time") and pm.get("end_time"):
            starts.append(datetime.fromisoformat(pm["start_time"]))
            ends.append(datetime.fromisoformat(pm["end_time"]))
            total += pm.get("duration") or 0.0
    if not starts:
        return None
    stage["notebook rest"] = max(0.0, total - sum(stage.values()))
    return {"folds": len(folds), "notebooks": len(starts), "stage": stage,
            "wall": (max(ends) - min(starts)).total_seconds(),
            "threads": sorted(t for t in threads if t)}


def sweep_rows(args, rows: list) -> None:
    """5: a whole sweep, measured (``--sweep-runs``), against the committed reference."""
    runs = Path(args.sweep_runs)
    m = measured_sweep(runs) if runs.is_dir() else None
    if m is None:
        rows.append(("5", "measured sweep after encoding (make reproduce)", "not measured",
                     "", f"no executed folds under {runs}; `make reproduce MODEL=medsam_lite "
                     "JOBS=2` writes them there"))
        return
    split = ", ".join(f"{k} {v:.0f} s" for k, v in m["stage"].items())
    rows += [
        ("5", "measured sweep: wall time of its folds", f"{m['wall']:.0f}", "s",
         f"{m['folds']} folds ({runs}), first notebook's start to last one's end; "
         f"{'/'.join(map(str, m['threads']))} thread(s) a fold"),
        ("5", "measured sweep: process-seconds by stage", f"{sum(m['stage'].values()):.0f}",
         "s", f"{split} (notebook rest: kernel, imports, figures)"),
    ]
    provenance = reference_provenance()
    if provenance:
        ref = provenance["seconds"]
        base = sum(ref[k] for k in ("fit", "replay", "segment", "report") if k in ref)
        rows.append(("5", "measured sweep vs the committed reference, after encoding",
                     f"{base / m['wall']:.2f}", "x",
                     f"reference fit + replay + segment + report {base:.0f} s (its notebooks' "
                     f"rest not recorded, so this understates) / this wall {m['wall']:.0f} s; "
                     f"target 3x: {'met' if base / m['wall'] >= 3 else 'NOT met'}"))
