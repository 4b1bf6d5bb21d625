"""make book: executed notebooks and the guide as a static site that opens from disk.

What must hold: every link of the contents and of the prev/next bars lands on a page and
an anchor that exist; the reader is told plainly whether the data were real; a cell that
errored stops the build, naming the notebook and the cell; no page fetches a script or
a style sheet from the network. The slow test builds the real tutorial, CI-sized.
"""
import base64
import html
import json
import re
from pathlib import Path

import nbformat
import pytest

from selfprompt.teaching import book

PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)).decode()


def _executed(path: Path, title: str, kind: str = "real", error: bool = False) -> Path:
    """A small notebook as papermill leaves it: outputs, run time, one figure."""
    v4 = nbformat.v4
    printed = v4.new_output("stream", name="stdout", text=(
        f"kvasir: 12 images ({kind}) | backbone medsam_lite | embeddings 0 encoded, "
        "12 from cache\n"))
    figure = v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})
    cells = [v4.new_markdown_cell(f"# {title}\n\nWhat it teaches."),
             v4.new_markdown_cell("## Data set · backbone (real?)"),
             v4.new_code_cell("print(describe(s))", execution_count=1, outputs=[printed]),
             v4.new_markdown_cell("## Summary\n### A detail"),
             v4.new_code_cell("plot()\nmore()", execution_count=2, outputs=[figure])]
    if error:
        cells.append(v4.new_code_cell("\nfit(k=0)", execution_count=3, outputs=[v4.new_output(
            "error", ename="ValueError", evalue="k must be positive", traceback=["..."])]))
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["papermill"] = {"duration": 3.21, "start_time": "2026-01-02T03:04:05.678"}
    nbformat.write(nb, path)
    return path


def _guide(path: Path) -> Path:
    path.write_text("# The guide\n\n## Before the session\n\ntext\n\n## Plans\n\n"
                    "| a | b |\n|---|---|\n| 1 | 2 |\n\n## Plans\n\nagain\n")
    return path


def _ids(page: Path) -> set[str]:
    return {html.unescape(i) for i in re.findall(r'\sid="([^"]*)"', page.read_text())}


def _links(page: Path) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'<a [^>]*href="([^"]*)"', page.read_text())]


def assert_links_resolve(out: Path) -> int:
    """Every local link of every page: the file exists, the anchor is an id in it."""
    checked = 0
    for page in out.glob("*.html"):
        for href in _links(page):
            if re.match(r"[a-z]+:", href):
                continue  # an external link in the text is the author's, not navigation
            target, _, anchor = href.partition("#")
            file = page.parent / target if target else page
            assert file.is_file(), f"{page.name} links to missing {href}"
            if anchor and file.suffix == ".html":
                assert anchor in _ids(file), f"{page.name}: no #{anchor} in {file.name}"
            checked += 1
    return checked


def assert_offline(out: Path) -> None:
    for page in out.glob("*.html"):
        text = page.read_text()
        assert not re.search(r'<script[^>]+src="https?:', text), page.name
        assert not re.search(r'<link[^>]+href="https?:', text), page.name
        assert not re.search(r"@import\s+(url\()?['\"]?https?:", text), page.name


def test_a_book_of_executed_notebooks_has_contents_that_resolve(tmp_path):
    runs = tmp_path / "executed"
    runs.mkdir()
    _executed(runs / "01_a.ipynb", "01 · First: the data")
    _executed(runs / "02_b.ipynb", "02 · Second")
    out = tmp_path / "book"
    start = tmp_path / "START_HERE.md"
    start.write_text("# Start here\n\nOpen [the data](01_a.ipynb) first, then "
                     "[the guide](INSTRUCTORS.md).\n")
    manifest = book.build(out, runs, solutions=False, guide=_guide(tmp_path / "guide.md"),
                          notebooks=("01_a", "02_b"), progress=False, start=start)

    assert sorted(p.name for p in out.iterdir()) == [
        "01_a.html", "02_b.html", "book.json", "guide.html", "index.html", "ipynb",
        "start.html"]
    assert 'href="start.html"' in (out / "index.html").read_text()
    assert 'href="01_a.html"' in (out / "start.html").read_text()
    assert not (tmp_path / "book.partial").exists()
    assert json.loads((out / "book.json").read_text()) == manifest
    assert manifest["errors"] == 0 and manifest["run_seconds"] == pytest.approx(6.4)
    assert [p["title"] for p in manifest["pages"]] == [
        "01 · First: the data", "02 · Second", "The guide"]
    assert manifest["provenance"]["data"] == "real"
    assert manifest["provenance"]["backbones"] == ["medsam_lite"]
    assert manifest["provenance"]["executed"] == "2026-01-02T03:04:05Z"

    index = (out / "index.html").read_text()
    assert "Real images: kvasir" in index and "SYNTHETIC" not in index
    assert "ran in 3.2 s" in index and index.count('href="ipynb/') == 2
    assert "Data set · backbone (real?)" in index and "A detail" not in index  # sections: ##
    assert index.count('href="guide.html#plans') == 2                          # unique anchors
    assert assert_links_resolve(out) > 20
    assert_offline(out)
    assert "data:image/png;base64," in (out / "01_a.html").read_text()         # figure inline
    first, last = (out / "01_a.html").read_text(), (out / "guide.html").read_text()
    assert 'href="02_b.html" rel="next"' in first and 'rel="prev"' not in first
    assert 'href="02_b.html" rel="prev"' in last and 'rel="next"' not in last
    assert "<table>" in last                                          # the guide's tables


def test_the_students_start_page_links_to_pages_the_book_has():
    """START_HERE.md's links, rendered for the book, name only pages a full book has."""
    pages = {book.page_file(n) for n in (*book.NOTEBOOKS, book.SOLUTIONS)} | {"guide.html"}
    page = book.start_html(book.START.read_text(encoding="utf-8"))
    links = [h for h in re.findall(r'href="([^"#]+)', page) if not re.match(r"[a-z]+:", h)]
    assert links and set(links) <= pages, set(links) - pages
    for link in re.findall(r"\]\(([^)]+)\)", book.START.read_text()):  # and on GitHub
        assert (book.START.parent / link).is_file(), link


def test_synthetic_data_is_said_plainly(tmp_path):
    runs = tmp_path / "executed"
    runs.mkdir()
    _executed(runs / "01_a.ipynb", "01 · First", kind="SYNTHETIC stand-in")
    out = tmp_path / "book"
    manifest = book.build(out, runs, solutions=False, guide=None, notebooks=("01_a",),
                          progress=False)
    assert manifest["provenance"]["data"] == "synthetic"
    assert re.search(r'<li class="warning">Data: SYNTHETIC data: .*not patients',
                     (out / "index.html").read_text())


def test_an_errored_cell_stops_the_build_naming_notebook_and_cell(tmp_path, capsys):
    runs = tmp_path / "executed"
    runs.mkdir()
    _executed(runs / "01_data.ipynb", "01 · First")
    _executed(runs / "02_embedding.ipynb", "02 · Second", error=True)
    out = tmp_path / "book"
    out.mkdir()
    (out / "index.html").write_text("the last good book")
    (out / "book.json").write_text("{}")
    with pytest.raises(book.BookError) as caught:
        book.build(out, runs, solutions=False, guide=None,
                   notebooks=("01_data", "02_embedding"), progress=False)
    message = str(caught.value)
    assert ("02_embedding.ipynb: cell In [3] ('fit(k=0)'): ValueError: k must be positive"
            in message) and "01_data" not in message
    assert (out / "index.html").read_text() == "the last good book"   # not half replaced

    # the command line: exit status 1, the same message; a missing notebook is named too
    from selfprompt.cli import main

    assert main(["book", "--out", str(out), "--executed", str(runs)]) == 1
    err = capsys.readouterr().err
    assert "02_embedding.ipynb: cell In [3]" in err
    assert f"03_classifier.ipynb: no executed copy at {runs / '03_classifier.ipynb'}" in err
    assert "solutions" not in err                               # optional: left out, no error


def test_a_folder_that_is_not_a_book_is_never_replaced(tmp_path):
    runs = tmp_path / "executed"
    runs.mkdir()
    _executed(runs / "01_a.ipynb", "01 · First")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("months of work")
    with pytest.raises(book.BookError, match="holds no book.json: not replacing it"):
        book.build(tmp_path / "mine", runs, solutions=False, guide=None, notebooks=("01_a",),
                   progress=False)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "months of work"
    book.build(tmp_path / "book", runs, solutions=False, guide=None, notebooks=("01_a",),
               progress=False)
    book.build(tmp_path / "book", runs, solutions=False, guide=None, notebooks=("01_a",),
               progress=False)                                  # an earlier book: replaced
    assert (tmp_path / "book" / "01_a.html").is_file()


def test_a_widget_is_shown_frozen_in_its_last_state(tmp_path):
    """07's explorer: no widget manager offline, so its saved state is drawn as HTML."""
    runs = tmp_path / "executed"
    runs.mkdir()
    nb = nbformat.read(_executed(runs / "07_explore.ipynb", "07 · Explore"), as_version=4)

    def model(name, state, buffers=None):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls",
                "model_module_version": "2.0.0", "state": state,
                **({"buffers": buffers} if buffers else {})}

    nb.metadata["widgets"] = {book.widget_snapshot.WIDGET_STATE: {"state": {
        "box": model("VBoxModel", {"children": ["IPY_MODEL_title", "IPY_MODEL_img",
                                                "IPY_MODEL_thr", "IPY_MODEL_pick"]}),
        "title": model("HTMLModel", {"value": "<b>SAM's mask</b>"}),
        "img": model("ImageModel", {"format": "png"},
                     [{"path": ["value"], "encoding": "base64", "data": PNG}]),
        "thr": model("FloatSliderModel", {"description": "threshold", "value": 0.5}),
        "pick": model("ToggleButtonsModel", {"description": "prompts", "index": 1,
                                             "_options_labels": ["point", "box"]})},
        "version_major": 2, "version_minor": 0}}
    nb.cells[2].outputs.append(nbformat.v4.new_output("execute_result", execution_count=1, data={
        book.widget_snapshot.WIDGET_VIEW: {"model_id": "box", "version_major": 2},
        "text/plain": "VBox(...)"}))
    nbformat.write(nb, runs / "07_explore.ipynb")
    book.build(tmp_path / "book", runs, solutions=False, guide=None, notebooks=("07_explore",),
               progress=False)
    page = (tmp_path / "book" / "07_explore.html").read_text()
    assert "<b>SAM's mask</b>" in page and f"data:image/png;base64,{PNG}" in page
    assert "threshold: <b>0.5</b>" in page and "prompts: <b>box</b>" in page
    assert "make lab" in page and "widget-state+json" not in page
    assert_offline(tmp_path / "book")


@pytest.mark.slow
def test_the_tutorial_builds_ci_sized_with_no_errored_cell(tmp_path, monkeypatch):
    """Every tutorial notebook and the solutions executed (synthetic data, as under nbval),
    then rendered: the check CI makes that `make book` works."""
    monkeypatch.setenv("SELFPROMPT_NBVAL", "1")
    out = tmp_path / "book"
    manifest = book.build(out)
    names = [p["name"] for p in manifest["pages"]]
    assert names == [*book.NOTEBOOKS, book.SOLUTIONS, "guide"]
    assert manifest["errors"] == 0 and manifest["provenance"]["data"] == "synthetic"
    assert all(p["headings"] >= 2 for p in manifest["pages"])
    assert all(p["seconds"] for p in manifest["pages"] if p["kind"] == "notebook")
    assert (out / "solutions.html").is_file() and not (out / "exercises.html").exists()
    assert assert_links_resolve(out) > 100
    assert_offline(out)
