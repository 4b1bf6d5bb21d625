"""The book: the executed notebooks and the instructors' guide as a static HTML site.

Why: a student (or a reviewer) should be able to read the tutorial with its real outputs
(LiteMedSAM's masks on real Kvasir-SEG, the tables, the figures) before installing
anything, and an instructor can hand it out before class. ``make book`` executes every
tutorial notebook with its defaults (:func:`selfprompt.teaching.classroom.run_notebook`, the
same run ``make classroom-check`` times), or takes executed copies (``--executed DIR``,
e.g. ``make classroom-check``'s ``reports/executed``), and writes ``reports/book/``:

- ``index.html``: the table of contents (each notebook's title and sections, the guide)
  and where the book came from: kit commit, dates, backbone, data (real or synthetic,
  said plainly), each notebook's run time;
- one page per notebook and one for the guide, each with previous/next/contents links;
- ``ipynb/``: the executed notebooks themselves; ``book.json``: the same facts for tools.

The pages open from disk, with no server and no network: images are inline, and
nbconvert's scripts from a CDN (require.js, MathJax, Mermaid, the widget manager) are
left out; the notebooks use none of them (no LaTeX, no diagrams), and 07's explorer is
shown frozen in its last state (pictures and control values, inert). A cell that errored
stops the build (exit status 1), naming the notebook and the cell: the book never shows
a broken run as if it were one.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from ..utils.console import say
from .classroom import NOTEBOOKS, run_notebook
from .notebook import REPO
from . import widget_snapshot

NOTEBOOK_DIR = REPO / "notebooks"
GUIDE = NOTEBOOK_DIR / "INSTRUCTORS.md"
#: the students' first page: linked at the top of the book's contents
START = NOTEBOOK_DIR / "START_HERE.md"
#: optional last chapter: the exercises' solutions (never the student copy: it raises)
SOLUTIONS = "exercises/solutions"
#: the line ``selfprompt.teaching.notebook.describe`` prints: what a notebook ran on
DESCRIBE = re.compile(r"^(?P<data>\S+): (?P<n>\d+) images \((?P<kind>real|SYNTHETIC stand-in)\)"
                      r" \| backbone (?P<backbone>\S+)", re.M)

CSS = """
body { margin: 0; }
nav.book { font: 14px/1.4 system-ui, sans-serif; display: flex; gap: 1.5em;
  justify-content: space-between; padding: .6em 1.2em; background: #f3f5f7;
  border-bottom: 1px solid #d0d7de; }
nav.book.bottom { border-top: 1px solid #d0d7de; border-bottom: none; margin-top: 2em; }
nav.book a { color: #0b5cad; text-decoration: none; }
nav.book span { flex: 1; }
nav.book .next { text-align: right; }
nav.book .up { text-align: center; }
"""
PAGE_CSS = CSS + """
main.book { font: 16px/1.55 system-ui, sans-serif; max-width: 52em; margin: 0 auto;
  padding: 1em 1.5em; color: #1f2328; }
main.book table { border-collapse: collapse; margin: 1em 0; }
main.book th, main.book td { border: 1px solid #d0d7de; padding: .3em .7em; text-align: left; }
main.book code, main.book pre { background: #f3f5f7; font-size: 90%; }
main.book pre { padding: .7em; overflow-x: auto; }
main.book .meta { color: #57606a; font-size: 90%; }
main.book .provenance { background: #f6f8fa; border: 1px solid #d0d7de; padding: .2em 1em; }
main.book .warning { background: #fff8c5; border: 1px solid #d4a72c; padding: .5em 1em; }
main.book ul.toc li { margin: .15em 0; }
"""
#: nbconvert's lab template, without the scripts it would fetch from a CDN
NOTEBOOK_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style type="text/css">{{ resources.book_css }}</style>
{%- endblock extra_css -%}
{%- block body_header -%}{{ super() }}{{ resources.book_nav_top }}{%- endblock body_header -%}
{%- block body_footer -%}{{ resources.book_nav_bottom }}{{ super() }}{%- endblock body_footer -%}
"""


class BookError(RuntimeError):
    """The book cannot be built as asked (a cell errored, a notebook is missing)."""


@dataclass
class Heading:
    level: int
    text: str
    anchor: str


@dataclass
class Page:
    """One page of the book: a notebook or the guide."""

    name: str                   # notebook path under notebooks/, without .ipynb; "guide"
    file: str                   # the page, e.g. 01_data.html
    title: str
    kind: str                   # "notebook" or "guide"
    seconds: float | None = None
    ran_on: list[dict] = field(default_factory=list)   # describe() lines it printed
    headings: list[Heading] = field(default_factory=list)


# ----------------------------------------------------------------------- notebooks
def find_errors(nb) -> list[str]:
    """Every errored cell of an executed notebook, as ``cell In [n]: Error: message``.

    Why scan instead of trusting the run: copies executed elsewhere (``--executed``) may
    hold a failed run, and papermill's error cell is only one way a traceback is stored."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                label = (f"In [{cell.execution_count}]" if cell.execution_count
                         else f"#{i + 1}")
                first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                found.append(f"cell {label} ({first.strip()[:60]!r}): "
                             f"{out.get('ename', 'Error')}: {out.get('evalue', '')}")
    return found


def notebook_title(nb, fallback: str) -> str:
    """The first Markdown heading of the notebook (its title in JupyterLab's outline)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                m = re.match(r"^#{1,6}\s+(.*\S)", line)
                if m:
                    return m.group(1).strip()
    return fallback


def ran_on(nb) -> list[dict]:
    """What the notebook said it ran on (``describe``'s lines in its printed output)."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream":
                found += [{**m.groupdict(), "n": int(m["n"])}
                          for m in DESCRIBE.finditer(out.get("text", ""))]
    return found


def run_seconds(nb) -> float | None:
    """Papermill's own record of how long the notebook ran (also in copies made elsewhere)."""
    duration = nb.metadata.get("papermill", {}).get("duration")
    return round(float(duration), 1) if duration is not None else None


def page_file(name: str) -> str:
    return Path(name).name + ".html"


def execute(name: str, target: Path, timeout: int = 900) -> tuple[bool, str]:
    """Run ``notebooks/<name>.ipynb`` with its defaults into ``target`` (kept)."""
    return run_notebook(NOTEBOOK_DIR / f"{name}.ipynb", timeout=timeout, output=target)


# ----------------------------------------------------------------------- HTML
class _Headings(HTMLParser):
    """Headings with an ``id`` in rendered HTML: the anchors the contents link to.

    Why parse the output: the anchors are then exactly those the page has, whatever
    nbconvert or mistune make of punctuation and non-ASCII characters."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[Heading] = []
        self._open: tuple[int, str] | None = None
        self._text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if re.fullmatch(r"h[1-6]", tag) and attrs.get("id"):
            self._open, self._text = (int(tag[1]), attrs["id"]), []
        elif tag == "a" and "anchor-link" in (attrs.get("class") or "") and self._open:
            self._skip += 1

    def handle_endtag(self, tag):
        if tag == "a" and self._skip:
            self._skip -= 1
        elif self._open and tag == f"h{self._open[0]}":
            text = " ".join("".join(self._text).split())
            self.found.append(Heading(self._open[0], text, self._open[1]))
            self._open = None

    def handle_data(self, data):
        if self._open and not self._skip:
            self._text.append(data)


def headings(page_html: str) -> list[Heading]:
    parser = _Headings()
    parser.feed(page_html)
    return parser.found


def nav(pages: list[Page], i: int, where: str) -> str:
    """Previous / contents / next links of page ``i`` (``where``: top or bottom)."""
    def link(j: int, cls: str, arrow: str) -> str:
        if not 0 <= j < len(pages):
            return f'<span class="{cls}"></span>'
        text = html.escape(pages[j].title)
        text = f"← {text}" if arrow == "prev" else f"{text} →"
        return f'<span class="{cls}"><a href="{pages[j].file}" rel="{arrow}">{text}</a></span>'

    return (f'<nav class="book {where}">{link(i - 1, "prev", "prev")}'
            f'<span class="up"><a href="index.html" rel="contents">Contents</a></span>'
            f'{link(i + 1, "next", "next")}</nav>')


def render_notebook(nb, page: Page, pages: list[Page], i: int) -> str:
    """The executed notebook as one self-contained HTML page (images inline; widgets
    frozen into their last state, :mod:`selfprompt.teaching.widget_snapshot`)."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file="book.html.j2",
                            extra_loaders=[DictLoader({"book.html.j2": NOTEBOOK_TEMPLATE})],
                            embed_images=True)
    resources = {"metadata": {"name": page.title}, "book_css": CSS,
                 "book_nav_top": nav(pages, i, "top"),
                 "book_nav_bottom": nav(pages, i, "bottom")}
    widget_snapshot.freeze(nb)
    for cell in nb.cells:  # the tests' checks: their output stays, their code is folded away
        if cell.get("metadata", {}).get("jupyter", {}).get("source_hidden"):
            cell.metadata["transient"] = {"remove_source": True}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def markdown_to_html(text: str) -> str:
    """Markdown (the guide) to HTML, with an ``id`` on every heading (contents links)."""
    import mistune
    from mistune.toc import add_toc_hook

    seen: set[str] = set()

    def slug(token: dict, index: int) -> str:
        """``## 1 · Dice`` -> ``1-dice``: readable anchors, made unique here."""
        text = re.sub(r"[`*_]", "", token.get("text", ""))
        base = re.sub(r"[^\w]+", "-", text.lower()).strip("-") or f"section-{index + 1}"
        anchor, n = base, 1
        while anchor in seen:
            n += 1
            anchor = f"{base}-{n}"
        seen.add(anchor)
        return anchor

    md = mistune.create_markdown(plugins=["table", "strikethrough", "url"])
    add_toc_hook(md, min_level=1, max_level=4, heading_id=slug)
    out, _ = md.parse(text)
    return out


def html_page(title: str, body: str, top: str = "", bottom: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
            f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n"
            f'<body>\n{top}\n<main class="book">\n{body}\n</main>\n{bottom}\n</body>\n</html>\n')


# ----------------------------------------------------------------------- provenance
def data_said(pages: list[Page]) -> tuple[str, str]:
    """``(kind, sentence)``: real, synthetic, mixed or unknown, and how to say it."""
    lines = [d for p in pages for d in p.ran_on]
    kinds = {d["kind"] for d in lines}
    sets = sorted({d["data"] for d in lines})
    if not lines:
        return "unknown", "No notebook said which data it ran on."
    if kinds == {"real"}:
        return "real", (f"Real images: {', '.join(sets)} (each notebook reads the first few "
                        "images of the data set; sizes below).")
    if kinds == {"SYNTHETIC stand-in"}:
        return "synthetic", ("SYNTHETIC data: the machine that ran these notebooks had no "
                             "data set, so every figure shows generated shapes, not patients' "
                             "images, and every number is about those shapes.")
    return "mixed", ("MIXED data: some notebooks ran on real images, others on a SYNTHETIC "
                     "stand-in (see each notebook's line below).")


def provenance(pages: list[Page], source: str, starts: list[str | None]) -> dict:
    """Where the book came from (``starts``: papermill's start time of each notebook)."""
    from .. import __version__
    from ..utils.provenance import kit_commit

    kind, sentence = data_said(pages)
    starts = sorted(str(s)[:19] + "Z" for s in starts if s)
    return {"commit": kit_commit(), "version": __version__,
            "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "executed": starts[0] if starts else None, "source": source,
            "backbones": sorted({d["backbone"] for p in pages for d in p.ran_on}),
            "data": kind, "data_sentence": sentence}


def start_html(text: str, pages: set[str] | None = None) -> str:
    """START_HERE.md as a page of the book: its links to notebooks go to their pages (the
    exercises to the executed solutions), the guide's to the guide's page; a link to a
    page this book lacks (``pages``: the files it has) stays as plain text."""
    def link(m: re.Match) -> str:
        label, target = m.group(1), m.group(2)
        if target.endswith(".ipynb"):
            name = SOLUTIONS if target == "exercises/exercises.ipynb" else target[:-6]
            target = page_file(name)
        elif target == "INSTRUCTORS.md":
            target = "guide.html"
        else:
            return m.group(0)
        return f"[{label}]({target})" if pages is None or target in pages else label
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", link, text)
    return html_page("Start here", markdown_to_html(text))


def index_html(pages: list[Page], prov: dict, start: bool = False) -> str:
    """The contents page: provenance first (what the reader is looking at), then chapters."""
    total = sum(p.seconds or 0 for p in pages)
    backbones = ", ".join(prov["backbones"]) or "not said by the notebooks"
    warn = ' class="warning"' if prov["data"] != "real" else ""
    rows = [
        "<h1>Self-prompting SAM for few-shot medical image segmentation: the book</h1>",
        "<p>The selfprompt-kit tutorial, executed: every notebook as it ran, with its "
        "outputs and figures, to read without installing or running anything. To run it "
        "yourself: <code>make lab</code> in a clone of the kit.</p>",
        *(['<p><a href="start.html"><strong>Start here</strong></a>: which notebook to open '
           "first, how long each takes, what you will see.</p>"] if start else []),
        '<div class="provenance"><ul>',
        f"<li>Kit commit <code>{html.escape(prov['commit'])}</code> "
        f"(selfprompt {html.escape(prov['version'])})</li>",
        f"<li>Notebooks executed {html.escape(prov['executed'] or 'at an unknown time')}; "
        f"book built {html.escape(prov['built'])}; {html.escape(prov['source'])}</li>",
        f"<li>Backbone: {html.escape(backbones)}</li>",
        f"<li{warn}>Data: {html.escape(prov['data_sentence'])}</li>",
        f"<li>Run time of all notebooks: {total:.0f} s</li>",
        "</ul></div>", "<h2>Contents</h2>", '<ol class="toc">']
    for p in pages:
        meta = []
        if p.seconds is not None:
            meta.append(f"ran in {p.seconds:.1f} s")
        meta += [f"{d['data']}: {d['n']} images ({d['kind']}), backbone {d['backbone']}"
                 for d in p.ran_on[:1]]
        if p.kind == "notebook":
            meta.append(f'<a href="ipynb/{Path(p.name).name}.ipynb">executed .ipynb</a>')
        else:
            meta.append("the instructors' guide")
        rows.append(f'<li><a href="{p.file}"><strong>{html.escape(p.title)}</strong></a> '
                    f'<span class="meta">{" · ".join(meta)}</span><ul class="toc">')
        rows += [f'<li><a href="{p.file}#{html.escape(h.anchor, quote=True)}">'
                 f"{html.escape(h.text)}</a></li>" for h in p.headings if h.level == 2]
        rows.append("</ul></li>")
    rows.append("</ol>")
    return html_page("selfprompt-kit: the book", "\n".join(rows))


# ----------------------------------------------------------------------- build
def collect(names: list[str], stage: Path, executed: Path | None = None, timeout: int = 900,
            progress: bool = True) -> tuple[list[Page], list, list[str]]:
    """Each notebook executed (or its copy taken from ``executed``) into ``stage/ipynb``:
    ``(pages, notebooks, errors)``. Every notebook is tried, so that one failure does not
    hide the next: the error list names them all."""
    import nbformat

    pages, nbs, errors = [], [], []
    for name in names:
        target = stage / "ipynb" / f"{Path(name).name}.ipynb"
        if executed is not None:
            given = Path(executed) / f"{Path(name).name}.ipynb"
            if not given.is_file():
                if name == SOLUTIONS:  # optional, and `make classroom-check` does not run it
                    say(f"[book] {name}: not in {executed}, left out", quiet=not progress)
                else:
                    errors.append(f"{name}.ipynb: no executed copy at {given}")
                continue
            shutil.copyfile(given, target)
        else:
            say(f"[book] executing {name}.ipynb ...", quiet=not progress)
            start = time.perf_counter()
            ok, detail = execute(name, target, timeout)
            say(f"[book]   {'ok' if ok else 'FAILED'} in {time.perf_counter() - start:.1f} s",
                quiet=not progress)
            if not ok and not target.is_file():
                errors.append(f"{name}.ipynb: {detail}")
                continue
        nb = nbformat.read(target, as_version=4)
        errors += [f"{name}.ipynb: {e}" for e in find_errors(nb)]
        pages.append(Page(name, page_file(name), notebook_title(nb, name), "notebook",
                          run_seconds(nb), ran_on(nb)))
        nbs.append(nb)
    return pages, nbs, errors


def _replaceable(out: Path) -> bool:
    """Only an earlier book (or nothing) is replaced: ``--out`` pointed at another
    folder by mistake must not be deleted."""
    return not out.exists() or not any(out.iterdir()) or (out / "book.json").is_file()


def build(out: Path, executed: Path | None = None, solutions: bool = True,
          guide: Path | None = GUIDE, notebooks=NOTEBOOKS, timeout: int = 900,
          progress: bool = True, start: Path | None = START) -> dict:
    """Build the book into ``out``; return its manifest (also ``out/book.json``).

    It is assembled in ``<out>.partial`` and moved into place only when every notebook
    ran without an error, so a failed build never leaves a book that looks complete
    (the partial folder is kept: its ``ipynb/`` holds the failed runs)."""
    import nbformat

    out = Path(out)
    if not _replaceable(out):
        raise BookError(f"{out} is not empty and holds no book.json: not replacing it; "
                        "give --out a new folder or an earlier book's")
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "ipynb").mkdir(parents=True)
    names = list(notebooks) + ([SOLUTIONS] if solutions else [])
    pages, nbs, errors = collect(names, stage, executed, timeout, progress)
    if errors:
        raise BookError("not every notebook ran cleanly, so no book was written:\n  "
                        + "\n  ".join(errors) + f"\n(executed copies: {stage / 'ipynb'})")
    guide_html = None
    if guide is not None:
        text = Path(guide).read_text(encoding="utf-8")
        title = notebook_title(nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_markdown_cell(text)]), "Guide")
        pages.append(Page("guide", "guide.html", title, "guide"))
        guide_html = markdown_to_html(text)
    for i, page in enumerate(pages):
        say(f"[book] rendering {page.file}", quiet=not progress)
        if page.kind == "notebook":
            body = render_notebook(nbs[i], page, pages, i)
        else:
            body = html_page(page.title, guide_html, nav(pages, i, "top"),
                             nav(pages, i, "bottom"))
        page.headings = headings(body)
        (stage / page.file).write_text(body, encoding="utf-8")
    source = (f"rendered from executed copies in {executed}" if executed
              else "executed for this book with each notebook's defaults")
    starts = [nb.metadata.get("papermill", {}).get("start_time") for nb in nbs]
    prov = provenance(pages, source, starts)
    if start is not None:
        have = {p.file for p in pages}
        (stage / "start.html").write_text(
            start_html(Path(start).read_text(encoding="utf-8"), have), encoding="utf-8")
    (stage / "index.html").write_text(index_html(pages, prov, start is not None),
                                      encoding="utf-8")
    manifest = {"pages": [{**asdict(p), "headings": len(p.headings)} for p in pages],
                "run_seconds": round(sum(p.seconds or 0 for p in pages), 1),
                "errors": 0, "provenance": prov}
    (stage / "book.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    say(f"[book] {len(pages)} pages, {size / 1e6:.1f} MB: open {out / 'index.html'}",
        quiet=not progress)
    return manifest
