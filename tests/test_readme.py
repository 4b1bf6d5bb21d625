"""The README and docs/: the Python quick start runs as printed, and every link resolves.

The quick start is read from the README itself and run verbatim in a scratch folder, so
the README cannot drift from the package. Its data are real Kvasir-SEG where the folder
beside the clone has them, else a synthetic set in the same layout.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KVASIR = REPO.parent / "shared" / "data" / "kvasir-seg"
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
VARIANTS = ("linear", "point", "box", "point_box")


def quick_start_blocks() -> list[str]:
    """The ```python blocks of the README's quick start section, in order."""
    text = README.read_text()
    heading = re.search(r"^## Python quick start\s*$", text, re.MULTILINE)
    assert heading, "README.md has no '## Python quick start' heading"
    section = re.split(r"^## ", text[heading.end():], maxsplit=1, flags=re.MULTILINE)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert blocks, "no ```python block after the README's Python quick start heading"
    return blocks


def quick_start_code() -> str:
    """The step-by-step block: the method's own calls, one Dice per variant."""
    return quick_start_blocks()[-1]


def _run(code: str, tmp_path: Path) -> str:
    data = tmp_path / "data" / "kvasir-seg"
    if not data.exists():
        data.parent.mkdir(exist_ok=True)
        if (KVASIR / "images").is_dir():
            data.symlink_to(KVASIR)
        else:
            from selfprompt.datasets.synthetic import make_synthetic

            make_synthetic(data, 30, 0)
    (tmp_path / "quick_start.py").write_text(code)
    env = {**os.environ, "SELFPROMPT_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "quick_start.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_python_quick_start_fits_predicts_and_saves(tmp_path):
    """The first block: SelfPrompt on one's own images, a line per unlabelled image."""
    out = _run(quick_start_blocks()[0], tmp_path)
    lines = [line for line in out.splitlines() if "quality" in line]
    assert len(lines) == 5, out
    for line in lines:
        assert re.fullmatch(r"\S+\.jpg  \w+  quality [01]\.\d\d  \d+ pixels", line), line
    import selfprompt as sp

    model = sp.SelfPrompt.load(tmp_path / "polyps.npz")
    assert model.n_shots_ == 20 and model.prompt_ in {line.split()[1] for line in lines}


@pytest.mark.slow
def test_python_quick_start_runs(tmp_path):
    out = _run(quick_start_code(), tmp_path)
    lines = [line for line in out.splitlines() if "Dice" in line]
    assert [line.split()[0] for line in lines] == list(VARIANTS), out
    for line in lines:
        match = re.fullmatch(r"(\w+)\s+Dice (\d\.\d{3})", line.strip())
        assert match, line
        assert 0.0 <= float(match.group(2)) <= 1.0


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_point_to_files(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#")[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.name}: links to missing files {broken}"


FIGURE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)|<img\s[^>]*\bsrc=\"([^\"]+)\"")
#: a figure the README shows is committed with the kit: small enough for a clone
FIGURE_BYTES = 300_000


def test_readme_figures_resolve_to_small_committed_pngs():
    """Every figure the README shows (Markdown or <img>) is a PNG of the repository that
    git tracks (a file only on the author's disk would be a broken picture on GitHub)."""
    figures = [a or b for a, b in FIGURE.findall(README.read_text())]
    assert len(figures) >= 2, "the README shows the method on one image and Dice against k"
    files = subprocess.run(["git", "ls-files", *figures], cwd=REPO, capture_output=True,
                           text=True)
    tracked = set(files.stdout.split()) if files.returncode == 0 else None
    for figure in figures:
        path = README.parent / figure
        assert not re.match(r"[a-z]+:", figure), f"{figure}: a figure from outside the kit"
        assert path.is_file(), f"README.md shows {figure}, which does not exist"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{figure} is not a PNG"
        assert path.stat().st_size < FIGURE_BYTES, f"{figure}: {path.stat().st_size} bytes"
        assert tracked is None or figure in tracked, f"{figure} is not committed"


def test_docs_exist():
    names = {p.name for p in DOCS}
    assert {"method.md", "performance.md", "classroom.md", "datasets.md",
            "reference.md"} <= names


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_file_outside_the_repository_is_cited(page):
    text = page.read_text()
    for outside in ("shared/docs", "METHOD.md", "../shared"):
        assert outside not in text, f"{page.name} cites {outside}"


def test_no_tracked_file_cites_a_document_outside_the_repository():
    """The method's facts live in docs/method.md; a user's clone has no ../shared/docs."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    citing = []
    for name in files.stdout.splitlines():
        path = REPO / name
        if path == Path(__file__).resolve() or path.suffix in (".gz", ".png", ".npy"):
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if "shared/docs" in text or "METHOD.md" in text:
            citing.append(name)
    assert not citing, f"cite a document outside the repository: {citing}"
