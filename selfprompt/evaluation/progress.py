"""Where a sweep of folds stands: one line after each fold, for the person waiting on it.

    fold 7/40 · 12 min so far · ~55 min left · point_box Dice so far 0.81 (840 images)

A fold's own progress bar vanishes when the fold ends, and ``make reproduce`` runs each
fold in a process of its own, so neither says how far the whole job is. This module
does, from what a finished fold leaves behind (its CSV, with its JSON beside it) and a
clock: ``python -m selfprompt run`` keeps a :class:`SweepProgress` over its loop of folds,
and ``make reproduce`` calls ``python -m selfprompt progress`` after each fold target with
the list of every target and the time the job started (:func:`targets_line`).

Time left is the mean time of the folds computed so far times the folds still to do; a
fold found finished and skipped counts as done but not as timed. "Dice so far" is the mean
Dice of one variant (``point_box``, the paper's method, where the folds score it) over
the counted rows of every finished fold, whatever its preset or k: a sign of health while
the job runs, not a result (the tables are). The line goes to standard error, so nothing a
command prints on standard output or writes to a file changes. Standard library only:
make calls it once a fold, and it must start at once.
"""
from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, TextIO

from ..utils.console import say

#: the variant whose Dice the line reports where the folds score it: the paper's method
VARIANT = "point_box"


def duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``1 h 05 min``: as precise as a person waiting needs."""
    seconds = max(0.0, seconds)
    if round(seconds) < 60:
        return f"{seconds:.0f} s"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def fold_dice(csv_path: str | Path) -> dict[str, list[float]]:
    """Per variant, the Dice of the counted rows of one fold's CSV."""
    found: dict[str, list[float]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("counted", "True").strip().lower() == "true":
                found.setdefault(row["variant"], []).append(float(row["dice"]))
    return found


class SweepProgress:
    """The overall line of a sweep of ``total`` folds.

    Call :meth:`fold_done` after each fold with its CSV and whether it was computed now
    (a finished fold that was skipped took no time, and says nothing of the time left).
    ``quiet``: nothing is printed (the bookkeeping still runs, so a quiet run does exactly
    what a talkative one does).
    """

    def __init__(self, total: int, *, quiet: bool = False, stream: TextIO | None = None,
                 variant: str = VARIANT, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.quiet = quiet
        self.stream = stream
        self.variant = variant
        self.clock = clock
        self.start = clock()
        self.done = 0
        self.timed = 0          # folds computed (not skipped) so far
        self.timed_seconds = 0.0
        self.dice: dict[str, list[float]] = {}
        self._last = self.start

    def fold_done(self, csv_path: str | Path | None, computed: bool = True) -> str:
        """Count one finished fold and print the line; returns the line."""
        now = self.clock()
        self.done += 1
        if computed:
            self.timed += 1
            self.timed_seconds += now - self._last
        self._last = now
        if csv_path is not None and Path(csv_path).exists():
            self.dice_from(csv_path)
        line = self.line(now - self.start)
        say(line, quiet=self.quiet, stream=self.stream or sys.stderr)
        return line

    def dice_from(self, csv_path: str | Path) -> None:
        """Add a finished fold's counted Dice values to those so far."""
        for variant, values in fold_dice(csv_path).items():
            self.dice.setdefault(variant, []).extend(values)

    def line(self, elapsed: float) -> str:
        """``fold i/N · time so far · ~time left · Dice so far`` after ``elapsed`` s."""
        parts = [f"fold {self.done}/{self.total}", f"{duration(elapsed)} so far"]
        left = self.total - self.done
        if left == 0:
            parts.append("done")
        elif self.timed:
            parts.append(f"~{duration(self.timed_seconds / self.timed * left)} left")
        variant = self.variant if self.dice.get(self.variant) else next(
            (v for v in sorted(self.dice) if self.dice[v]), None)
        if variant is not None:
            values = self.dice[variant]
            parts.append(f"{variant} Dice so far {sum(values) / len(values):.2f} "
                         f"({len(values)} image{'s' if len(values) != 1 else ''})")
        return " · ".join(parts)


def targets_line(targets: Iterable[str | Path], since: float, now: float | None = None,
                 variant: str = VARIANT) -> str:
    """The line for a job whose folds are ``targets`` (their JSON files, finished or not)
    and which started at ``since`` (seconds since the epoch): the folds finished so far,
    and those finished since the start (their JSON is newer) time the rest."""
    now = time.time() if now is None else now
    targets = [Path(t) for t in targets]
    finished = [t for t in targets if t.exists() and t.with_suffix(".csv").exists()]
    progress = SweepProgress(len(targets), quiet=True, variant=variant, clock=lambda: since)
    for t in finished:
        progress.dice_from(t.with_suffix(".csv"))
    progress.done = len(finished)
    progress.timed = sum(t.stat().st_mtime >= since for t in finished)
    progress.timed_seconds = now - since
    return progress.line(now - since)
