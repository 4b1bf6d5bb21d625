"""Re-record the expected outputs of the notebooks' checked cells (``make notebook-outputs``).

nbval compares each cell tagged ``nbval-check-output`` with the output
committed in the notebook. After a deliberate change of what those cells print (a new
default encoder, say), this runs every notebook as nbval does (``SELFPROMPT_NBVAL=1``:
synthetic data, fresh output folders) and writes back, for checked cells only, their
standard output; every other cell is committed without outputs. Review the diff
before committing it: it is the new expected behaviour.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

REPO = Path(__file__).resolve().parents[1]
CHECK = "nbval-check-output"


def refresh(path: Path) -> int:
    """Execute ``path`` and store its checked cells' stdout; returns cells changed."""
    original = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        papermill.execute_notebook(str(path), str(out), cwd=str(path.parent),
                                   progress_bar=False, kernel_name="python3")
        executed = nbformat.read(out, as_version=4)
    ran = [c for c in executed.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    if [c.source for c in ran] != [c.source for c in original.cells]:
        raise RuntimeError(f"{path.name}: executed cells do not line up with the original")
    changed = 0
    for cell, done in zip(original.cells, ran):
        if cell.cell_type != "code":
            continue
        if CHECK in cell.metadata.get("tags", []):
            outputs = [o for o in done.outputs
                       if o.output_type == "stream" and o.get("name") == "stdout"]
            count = done.execution_count
        else:
            outputs, count = [], None
        changed += outputs != cell.outputs
        cell.outputs, cell.execution_count = outputs, count
    nbformat.write(original, path)
    return changed


def main(argv: list[str]) -> int:
    os.environ["SELFPROMPT_NBVAL"] = "1"
    paths = [Path(a) for a in argv] or sorted((REPO / "notebooks").glob("*.ipynb"))
    for path in paths:
        print(f"{path.name}: {refresh(path.resolve())} checked cell(s) changed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
