"""Figures for the notebooks and the report: data, embeddings, masks, prompts, scores.

Why a module: a figure drawn in a notebook cell is code nobody tests and every
notebook copies. Here each function takes arrays or result rows and returns a
``matplotlib`` figure, so notebooks stay one line per figure and the report writes the
same pictures to ``reports/figures``. Colours: truth green, prediction red/magenta,
prompts yellow (point) and cyan (box), as in the paper's figures.
"""
from __future__ import annotations

from collections import defaultdict

import cv2
import matplotlib.pyplot as plt
import numpy as np

from ..frame import GRID, IMG_SIZE, input_size
from .results import k_order

TRUTH, PRED, POINT, BOX = "lime", "magenta", "yellow", "cyan"


def _axes(n: int, ncols: int, size: float = 3.0):
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 0.8 * nrows),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes.ravel()


def overlay(ax, image: np.ndarray, mask: np.ndarray | None = None, color: str = TRUTH,
            title: str | None = None, fill: float = 0.0) -> None:
    """The image with the outline (and optionally a translucent fill) of ``mask``."""
    ax.imshow(image)
    if mask is not None and np.any(mask):
        m = np.asarray(mask, dtype=float)
        if fill:
            ax.imshow(np.ma.masked_where(m == 0, m), cmap="spring", alpha=fill, vmin=0, vmax=1)
        ax.contour(m, levels=[0.5], colors=color, linewidths=1.2)
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")


def gallery(dataset, indices=None, ncols: int = 4, threshold: int = 127):
    """A few images with their true mask outlined, named and sized."""
    indices = list(range(min(len(dataset), 8))) if indices is None else list(indices)
    fig, axes = _axes(len(indices), ncols)
    for ax, i in zip(axes, indices):
        image = dataset.image(i)
        overlay(ax, image, dataset.mask(i, threshold),
                title=f"{dataset.samples[i].name[:18]}\n{image.shape[1]}x{image.shape[0]}")
    fig.tight_layout()
    return fig


def data_statistics(facts: list[dict], components: list[int] | None = None):
    """Image sizes (width x height) and the lesion's share of each image."""
    fig, axes = plt.subplots(1, 3 if components is not None else 2, figsize=(11, 3))
    w = [f["width"] for f in facts]
    h = [f["height"] for f in facts]
    axes[0].scatter(w, h, s=8, alpha=0.6)
    axes[0].set(xlabel="width (px)", ylabel="height (px)", title="image sizes")
    axes[1].hist([100 * (f["foreground"] or 0) for f in facts], bins=20)
    axes[1].set(xlabel="lesion area (% of image)", ylabel="images", title="lesion size")
    if components is not None:
        values, counts = np.unique(components, return_counts=True)
        axes[2].bar(values, counts)
        axes[2].set(xlabel="lesions (connected components)", ylabel="images",
                    title="lesions per image")
    fig.tight_layout()
    return fig


def padded_frame(image: np.ndarray, img_size: int = IMG_SIZE) -> np.ndarray:
    """The image as the encoder sees it: longest side ``img_size`` (SAM: 1024,
    LiteMedSAM: 256), padded bottom/right."""
    h, w = input_size(*image.shape[:2], img_size)
    frame = np.zeros((img_size, img_size) + image.shape[2:], image.dtype)
    frame[:h, :w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return frame


def embedding_rgb(features: np.ndarray, n: int = 3) -> np.ndarray:
    """First ``n`` principal components of the 4096 cells, each scaled to [0, 1].

    Cells with similar 256-d vectors get similar colours: a picture of what the linear
    classifier can separate. Signs of components are fixed (largest loading positive)
    so that the picture does not flip between runs.
    """
    X = np.asarray(features, np.float32).reshape(features.shape[0], -1).T
    X = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    vt = vt[:n] * np.sign(vt[:n, [np.argmax(np.abs(r)) for r in vt[:n]]].diagonal())[:, None]
    pcs = X @ vt.T
    lo, hi = np.percentile(pcs, 1, axis=0), np.percentile(pcs, 99, axis=0)
    return np.clip((pcs - lo) / np.maximum(hi - lo, 1e-8), 0, 1).reshape(GRID, GRID, n)


def embedding_figure(image: np.ndarray, features: np.ndarray, img_size: int = IMG_SIZE):
    """Image, its padded frame (``img_size``), and the embedding's first 3 PCs as RGB."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    axes[0].imshow(image)
    axes[0].set_title(f"image {image.shape[1]}x{image.shape[0]}")
    axes[1].imshow(padded_frame(image, img_size))
    axes[1].set_title(f"encoder's input: {img_size}x{img_size}, padded")
    axes[2].imshow(embedding_rgb(features), interpolation="nearest")
    axes[2].set_title("embedding 256x64x64: PCs 1-3 as RGB")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def label_grids(mask: np.ndarray, img_size: int = IMG_SIZE):
    """D4 in one picture: the padded frame's mask, stretched labels, aligned labels."""
    from ..frame import labels_aligned, labels_stretched

    aligned, valid = labels_aligned(mask, img_size)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    axes[0].imshow(cv2.resize(padded_frame(mask * 255, img_size), (GRID, GRID),
                              interpolation=cv2.INTER_AREA), cmap="gray")
    axes[0].set_title("truth in SAM's frame (64x64 view)")
    axes[1].imshow(labels_stretched(mask), cmap="gray")
    axes[1].set_title("paper: stretched labels (D4)")
    axes[2].imshow(aligned + 0.25 * (~valid), cmap="gray", vmin=0, vmax=1)
    axes[2].set_title("corrected: aligned (grey = padding)")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def coarse_figure(rows: list[tuple]):
    """Per row ``(image, truth, probability, coarse, title)``: truth, p, coarse mask."""
    fig, axes = plt.subplots(len(rows), 3, figsize=(10, 2.8 * len(rows)), squeeze=False)
    for (image, truth, prob, coarse, title), ax in zip(rows, axes):
        overlay(ax[0], image, truth, title=f"{title}: truth")
        ax[1].imshow(prob, cmap="magma", vmin=0, vmax=1)
        ax[1].set_title("lesion probability", fontsize=9)
        ax[1].axis("off")
        overlay(ax[2], image, coarse, PRED, title="coarse mask (p > 0.5)", fill=0.3)
    fig.tight_layout()
    return fig


def draw_prompts(ax, prompts, variant: str | None = None) -> None:
    """The point (star) and the box (rectangle) SAM is prompted with; for the ``point``
    or ``box`` variant only the prompt it was given (others: both, where present)."""
    if prompts.box is not None and variant != "point":
        x0, y0, x1, y1 = (float(v) for v in prompts.box)
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=BOX, lw=1.5))
    if prompts.points is not None and variant != "box":
        ax.scatter(prompts.points[:, 0], prompts.points[:, 1], marker="*", s=160, c=POINT,
                   edgecolors="black", linewidths=0.6)


def prompt_figure(image: np.ndarray, truth: np.ndarray, coarse: np.ndarray, prompts):
    """Coarse mask, cleaned mask, and the prompts derived from them on the image."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    overlay(axes[0], image, coarse, PRED, "coarse mask (classifier)", fill=0.3)
    overlay(axes[1], image, prompts.cleaned, PRED, "after clean-up (3 erode, 5 dilate)",
            fill=0.3)
    overlay(axes[2], image, truth, TRUTH, "prompts on the image, truth outlined")
    draw_prompts(axes[2], prompts)
    fig.tight_layout()
    return fig


def method_figure(image: np.ndarray, truth: np.ndarray, seg, scores: dict,
                  variants=("box", "point_box"), labels: dict | None = None):
    """The method on one image, left to right: the image with its truth, the
    classifier's coarse mask, the point and the box taken from it (drawn on the cleaned
    mask), then SAM's mask from each of ``variants``; Dice against the truth in the titles."""
    labels = {"point": "point", "box": "box", "point_box": "point + box", **(labels or {})}
    n = 3 + len(variants)
    height = 2.6 * image.shape[0] / image.shape[1]
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, height + 0.4), squeeze=False)
    axes = axes.ravel()
    overlay(axes[0], image, truth, TRUTH, "image, truth in green")
    overlay(axes[1], image, seg.masks.get("linear", seg.coarse), PRED,
            f"1. coarse mask: Dice {scores['linear']:.2f}", fill=0.35)
    overlay(axes[2], image, seg.prompts.cleaned, PRED, "2. point and box from it", fill=0.2)
    draw_prompts(axes[2], seg.prompts)
    for ax, name in zip(axes[3:], variants):
        overlay(ax, image, seg.masks[name], PRED,
                f"3. SAM, {labels.get(name, name)}: Dice {scores[name]:.2f}", fill=0.35)
        ax.contour(np.asarray(truth, float), levels=[0.5], colors=TRUTH, linewidths=0.8)
        draw_prompts(ax, seg.prompts, name)
    fig.tight_layout(w_pad=0.4)
    return fig


def variant_figure(image: np.ndarray, truth: np.ndarray, masks: dict, prompts=None,
                   scores: dict | None = None, ncols: int | None = None):
    """One panel per variant (``linear``, ``point``, ``box``, ``point_box``, or any of the
    ablations'), Dice in titles; ``ncols`` panels a row (default: all in one row)."""
    fig, axes = _axes(len(masks), ncols or len(masks), size=2.8)
    for ax, (name, mask) in zip(axes, masks.items()):
        title = name if scores is None else f"{name}: Dice {scores[name]:.2f}"
        overlay(ax, image, mask, PRED, title, fill=0.35)
        ax.contour(np.asarray(truth, float), levels=[0.5], colors=TRUTH, linewidths=0.8)
        if prompts is not None and name != "linear":
            draw_prompts(ax, prompts, name)
    fig.tight_layout()
    return fig


def settings_figure(image: np.ndarray, cases: dict, variants=("linear", "point", "box")):
    """One row per setting (``{label: (truth, segmentation, scores)}``), one panel per
    variant: the same image under several presets or k, Dice in the titles."""
    fig, axes = _axes(len(cases) * len(variants), len(variants), size=2.8)
    for r, (label, (truth, seg, scores)) in enumerate(cases.items()):
        for c, name in enumerate(variants):
            ax = axes[r * len(variants) + c]
            overlay(ax, image, seg.masks[name], PRED, f"{label}\n{name}: Dice {scores[name]:.2f}",
                    fill=0.35)
            ax.contour(np.asarray(truth, float), levels=[0.5], colors=TRUTH, linewidths=0.8)
            if name != "linear":
                draw_prompts(ax, seg.prompts, name)
    fig.tight_layout()
    return fig


def prior_figure(image: np.ndarray, truth: np.ndarray, prior: np.ndarray, points,
                 masks: dict, scores: dict):
    """PerSAM on one image: its location prior (similarity to the shots' target feature)
    with the positive (star) and negative (cross) points, then each mask with its Dice."""
    fig, axes = _axes(1 + len(masks), 1 + len(masks), size=2.8)
    axes[0].imshow(image)
    axes[0].imshow(prior, cmap="viridis", alpha=0.6)
    axes[0].contour(np.asarray(truth, float), levels=[0.5], colors=TRUTH, linewidths=0.8)
    (pts, labels) = points
    for (x, y), label in zip(pts, labels):
        axes[0].scatter([x], [y], marker="*" if label else "X", s=160,
                        c=POINT if label else "red", edgecolors="black", linewidths=0.6)
    axes[0].set_title("location prior, points")
    for ax, (name, mask) in zip(axes[1:], masks.items()):
        overlay(ax, image, mask, PRED, f"{name}: Dice {scores[name]:.2f}", fill=0.35)
        ax.contour(np.asarray(truth, float), levels=[0.5], colors=TRUTH, linewidths=0.8)
    fig.tight_layout()
    return fig


def dice_histogram(rows: list[dict], variants=None):
    """Per-image Dice distribution of each variant (counted rows)."""
    by = defaultdict(list)
    for r in rows:
        if r["counted"]:
            by[r["variant"]].append(r["dice"])
    variants = [v for v in (variants or by) if v in by]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist([by[v] for v in variants], bins=np.linspace(0, 1, 21), label=variants)
    ax.set(xlabel="Dice per image", ylabel="images", title="Dice distribution")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def dice_vs_k(summary: list[dict], title: str = "", variants=None):
    """Mean Dice against k, error bars = spread (std) of the fold means, one line per
    (preset, variant). ``k = all`` is drawn at the right end."""
    lines = defaultdict(list)
    for s in summary:
        if str(s["fold"]) == "all" and (variants is None or s["variant"] in variants):
            lines[(s["preset"], s["variant"])].append(s)
    ks = sorted({s["k"] for v in lines.values() for s in v},
                key=k_order)
    x_of = {k: i for i, k in enumerate(ks)}
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for (preset, variant), pts in sorted(lines.items()):
        pts = sorted(pts, key=lambda s: x_of[s["k"]])
        ax.errorbar([x_of[s["k"]] for s in pts], [100 * s["dice_mean"] for s in pts],
                    yerr=[100 * s["dice_std"] for s in pts], capsize=3, marker="o",
                    linestyle="-" if preset == "paper" else "--", label=f"{preset} {variant}")
    ax.set_xticks(range(len(ks)), ks)
    ax.set(xlabel="k (training images)", ylabel="Dice % (bars: sd of fold means, ddof=1)",
           title=title or "Dice against k")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
