"""The bench's table: rows of (section, measurement, value, unit, detail), each printed and
written to disk the moment it is measured, and :func:`measuring`, which turns a
measurement that raises into a ``failed`` row.

Why row by row: a borrowed GPU gives a few minutes for one prepared run, and a run cut
short or broken in one place must still leave every row measured before it.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import torch

COLUMNS = ("#", "measurement", "value", "unit", "detail")


def render_row(row) -> str:
    return "| " + " | ".join(str(c) for c in row) + " |"


HEAD = [render_row(COLUMNS), "|" + "---|" * len(COLUMNS)]


def render(rows) -> str:
    return "\n".join(HEAD + [render_row(r) for r in rows])


class Table(list):
    """The bench's rows, each written out the moment it is measured: printed, and the
    whole table so far rewritten (atomically) to ``out``.

    A run cut short (a borrowed GPU's time limit, a machine taken back) leaves every
    row measured before it, and the file's header says the run did not finish.
    """

    def __init__(self, out: Path, started: float, argv: list[str] = ()) -> None:
        super().__init__()
        self.out, self.started, self.argv = out, started, list(argv)
        print("\n".join(HEAD), flush=True)

    def append(self, row: tuple) -> None:
        super().append(row)
        print(render_row(row), flush=True)
        self.write(done=False)

    def extend(self, rows) -> None:
        for row in rows:
            self.append(row)

    def __iadd__(self, rows) -> "Table":
        self.extend(rows)
        return self

    @property
    def failed(self) -> list[tuple]:
        return [r for r in self if r[2] == "failed"]

    def write(self, done: bool) -> None:
        """The table so far, under a header saying what made it: command, commit, machine."""
        import shlex

        from selfprompt.utils.io import atomic_write_text
        from selfprompt.utils.provenance import cpu_model, kit_commit

        seconds = time.perf_counter() - self.started
        state = (f"{seconds:.0f} s in all" if done else
                 f"NOT FINISHED: the rows measured in its first {seconds:.0f} s")
        if self.failed:
            state += f"; {len(self.failed)} failed (see their detail)"
        gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
        command = shlex.join(["python", "-m", "benchmarks.bench"] + self.argv)
        header = (f"# make bench\n\n`{command}`\n\n{time.strftime('%Y-%m-%d %H:%M')}, kit "
                  f"{kit_commit()}, torch {torch.__version__}, {cpu_model()} "
                  f"({os.cpu_count()} CPUs){gpu}; {state}. "
                  f"Sections: 1 passes and wall time of a sweep, 2 encoder speed, 3 arithmetic "
                  f"rate, 4 peak memory, 5 the sweep after encoding, 6 predict on one's own "
                  f"images.\n\n")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out, header + render(self) + "\n")


@contextlib.contextmanager
def measuring(rows: list, section: str, label: str):
    """Run one measurement; if it raises, add a ``failed`` row that names the error
    (its traceback goes to stderr) and go on with the next one.

    A borrowed GPU gives a few minutes for one prepared run: one model that runs out of
    memory, or one kernel a driver refuses, must not cost the rows after it. The bench
    still exits with status 1 when a row failed.
    """
    import traceback

    try:
        yield
    except Exception as err:  # noqa: BLE001 -- reported as a row, and in the exit status
        traceback.print_exc()
        first = (str(err).strip().splitlines() or [""])[0][:200]
        rows.append((section, label, "failed", "", f"{type(err).__name__}: {first}"))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
