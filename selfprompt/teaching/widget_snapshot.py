"""An ipywidgets display, frozen as plain HTML from the state its notebook saved.

Why: a page read without a kernel cannot run widgets, and nbconvert's way of showing
them loads a widget manager from a CDN, which a book that must open offline leaves out.
The executed notebook keeps every widget's last state (papermill saves it), images
included, so notebook 07's explorer can still be shown as it was: its pictures, its
labels and tables, and each control with the value it held, readable but inert.
"""
from __future__ import annotations

import html

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CSS = """
.widget-snapshot { display: flex; gap: .5em; margin: .3em 0; }
.widget-snapshot.column { flex-direction: column; align-items: flex-start; }
.widget-snapshot.row { flex-direction: row; flex-wrap: wrap; align-items: flex-start; }
.widget-snapshot img { max-width: 100%; }
.widget-snapshot .control { font: 13px system-ui, sans-serif; border: 1px solid #d0d7de;
  border-radius: 3px; padding: .1em .5em; background: #f6f8fa; }
.widget-snapshot-note { font: italic 13px system-ui, sans-serif; color: #57606a; }
"""
NOTE = ("A snapshot of the interactive widget as it was when the notebook ran: the controls "
        "do nothing here. Open the notebook in JupyterLab (<code>make lab</code>) to use it.")


def _children(state: dict) -> list[str]:
    return [c.removeprefix("IPY_MODEL_") for c in state.get("children", [])
            if isinstance(c, str)]


def _chosen(state: dict) -> str:
    labels, index = state.get("_options_labels", []), state.get("index")
    picked = index if isinstance(index, (list, tuple)) else [index]
    return ", ".join(str(labels[i]) for i in picked if isinstance(i, int) and i < len(labels))


def render(model_id: str, models: dict, depth: int = 0) -> str:
    """One widget and everything inside it, as HTML (unknown models: their description)."""
    model = models.get(model_id)
    if model is None or depth > 50:
        return ""
    name, state = model.get("model_name", ""), model.get("state", {})
    if name in ("VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel"):
        inner = "".join(render(c, models, depth + 1) for c in _children(state))
        kind = "row" if name == "HBoxModel" else "column"
        return f'<div class="widget-snapshot {kind}">{inner}</div>'
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{state.get('value', '')}</div>"   # the notebook's own HTML
    if name == "ImageModel":
        data = next((b.get("data") for b in model.get("buffers", [])
                     if b.get("path") == ["value"] and b.get("encoding") == "base64"), None)
        fmt = html.escape(str(state.get("format", "png")))
        return f'<img src="data:image/{fmt};base64,{data}" alt="">' if data else ""
    label = html.escape(str(state.get("description", "")))
    if "_options_labels" in state:
        value = _chosen(state)
    elif "value" in state and name != "ButtonModel":
        value = state["value"]
    elif name == "ButtonModel":
        return f'<span class="control">{label}</span>' if label else ""
    else:
        return ""
    sep = ": " if label else ""
    return f'<span class="control">{label}{sep}<b>{html.escape(str(value))}</b></span>'


def freeze(nb) -> int:
    """Replace every widget view in ``nb``'s outputs by its snapshot (HTML); drop the saved
    widget state, which nothing reads once the views are snapshots. Returns how many views
    were frozen."""
    saved = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    frozen = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            snapshot = render(view.get("model_id", ""), saved)
            note = f'<p class="widget-snapshot-note">{NOTE}</p>'
            plain = out["data"].get("text/plain", "")
            out["data"] = {"text/html": f"<style>{CSS}</style>{note}{snapshot}",
                           "text/plain": plain}
            frozen += 1
    return frozen
