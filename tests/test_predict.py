"""Using the kit on one's own images: `suggest` which to label, `predict` the rest.

The writer (streaming, resume, the table, unreadable files) is tested with a plain
function standing in for a fitted model, so that what is checked is the writer's own
behaviour; the command line end to end, the saved model and the agreement with `run`
(the k-shot protocol) use real fits (the tiny backbone; LiteMedSAM on real Kvasir-SEG
where ../shared holds it).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from selfprompt.cli import main
from selfprompt.datasets.layouts import DatasetError
from selfprompt.own.images import list_images
from selfprompt.own.predict import (FAILED, JOURNAL, overlay, predict_images,
                                    read_table)


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path


def _images(synthetic_dir: Path, folder: Path, names) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(synthetic_dir / "images" / name, folder / name)
    return folder


# --------------------------------------------------------------------------- listing
def test_images_are_found_as_check_finds_them_and_sorted_by_name(tmp_path):
    pixel = np.zeros((8, 8, 3), np.uint8)
    for rel in ("a/b.png", "a/a.jpg", "a/.hidden.png", "a/notes.txt", "c/d/e.png", "f.bmp"):
        _write(tmp_path / rel, pixel) if rel.endswith(("png", "jpg", "bmp")) else \
            (tmp_path / rel).write_text("x")
    folder = list_images([tmp_path / "a"])
    assert [(i.name, i.path.name) for i in folder] == [("a", "a.jpg"), ("b", "b.png")]
    pattern = list_images([f"{tmp_path}/**/*.png"])
    assert [i.name for i in pattern] == ["b", "e"]      # shortest unique tails, hidden left out
    files = list_images([tmp_path / "f.bmp", tmp_path / "a"])
    assert [i.name for i in files] == ["a", "b", "f"]


def test_two_images_of_one_name_and_a_missing_folder_are_one_error_naming_them(tmp_path):
    pixel = np.zeros((8, 8, 3), np.uint8)
    _write(tmp_path / "x" / "a.jpg", pixel)
    _write(tmp_path / "y" / "a.png", pixel)
    with pytest.raises(DatasetError) as err:
        list_images([tmp_path / "x", tmp_path / "y", tmp_path / "nowhere"])
    text = str(err.value)
    assert "a.png: same name 'a'" in text and "nowhere: folder missing" in text


# --------------------------------------------------------------------------- overlay
def test_the_overlay_tints_and_outlines_the_mask_and_leaves_the_rest():
    image = np.full((60, 80, 3), 100, np.uint8)
    mask = np.zeros((60, 80), bool)
    mask[20:40, 30:60] = True
    out = overlay(image, mask)
    assert out.shape == image.shape
    near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert (out[~near] == 100).all()                            # away from it: untouched
    assert out[30, 45, 1] > 100 and out[30, 45, 0] < 100        # inside: tinted green
    assert tuple(out[20, 45]) == (0, 255, 0)                    # its edge: the outline


# --------------------------------------------------------------------------- the writer
@dataclass
class Guess:
    mask: np.ndarray
    score: float
    prompt: str


class DiscModel:
    """A stand-in for a fitted model: a disc whose radius comes from the image's seed,
    a score from its embedding; it counts its calls and may stop as Ctrl-C would."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls, self.stop_at = [], stop_at

    def __call__(self, features, size, seed):
        if self.stop_at is not None and len(self.calls) == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append(seed)
        yy, xx = np.mgrid[:size[0], :size[1]]
        radius = 20 + seed[-1] % 30
        mask = (yy - size[0] // 2) ** 2 + (xx - size[1] // 2) ** 2 < radius ** 2
        return Guess(mask, float(np.abs(features[:, :8, :8]).mean()) % 1, "box")


@pytest.fixture
def tiny_encoding(tiny_backbone, tmp_path):
    from selfprompt.embeddings import EmbeddingCache
    from selfprompt.models.encoder import ImageEncoder

    encoder = ImageEncoder(tiny_backbone)
    return {"encoder": encoder,
            "cache": EmbeddingCache.for_backbone(tmp_path / "cache", tiny_backbone,
                                                 encoder=encoder)}


def test_a_mask_and_an_overlay_per_image_and_the_least_confident_first(
        synthetic_dir, tmp_path, tiny_encoding):
    images = list_images([synthetic_dir / "images"])
    out = tmp_path / "out"
    summary = predict_images(DiscModel(), images, out, identity="m", **tiny_encoding,
                             progress=False)
    rows = read_table(out / "predictions.csv")
    assert [r["score"] for r in rows] == sorted(r["score"] for r in rows)
    assert len(rows) == len(images) == summary.computed and summary.reused == 0
    for row in rows:
        image = cv2.imread(row["image"])
        mask = cv2.imread(str(out / row["mask"]), cv2.IMREAD_UNCHANGED)
        assert mask.shape == image.shape[:2] and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255} and row["area_px"] == (mask == 255).sum()
        assert cv2.imread(str(out / row["overlay"])).shape == image.shape
        assert Path(row["mask"]).stem == Path(row["image"]).stem and row["prompt"] == "box"
    assert not (out / FAILED).exists()


def test_an_unreadable_image_is_one_line_and_the_others_are_written(
        synthetic_dir, tmp_path, tiny_encoding):
    folder = _images(synthetic_dir, tmp_path / "in", ["synthetic_000.jpg", "synthetic_001.jpg"])
    good = (folder / "synthetic_001.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(good[: len(good) // 2])     # cut short
    (folder / "noise.png").write_bytes(b"not an image at all")
    lines: list[str] = []
    out = tmp_path / "out"
    summary = predict_images(DiscModel(), list_images([folder]), out, identity="m",
                             **tiny_encoding, progress=False, say=lines.append)
    assert len(lines) == 2 and "broken.jpg: truncated" in lines[0]
    assert "noise.png: not a readable image" in lines[1]
    assert [r.name for r in summary.failed] == ["broken", "noise"]
    assert len(read_table(out / "predictions.csv")) == 2
    assert (out / FAILED).read_text().count("\n") == 2
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["synthetic_000.png",
                                                                 "synthetic_001.png"]


def test_a_stopped_run_resumes_where_it_stopped_and_writes_what_one_run_writes(
        synthetic_dir, tmp_path, tiny_encoding):
    images = list_images([synthetic_dir / "images"])
    whole = tmp_path / "whole"
    predict_images(DiscModel(), images, whole, identity="m", **tiny_encoding, progress=False)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt, match="3 image"):
        predict_images(DiscModel(stop_at=3), images, out, identity="m", **tiny_encoding,
                       progress=False)
    assert len(list((out / "masks").iterdir())) == 3
    assert not list(out.rglob("*.tmp"))                         # nothing half-written
    # a crash cut the journal's last line short: that line is ignored, its image redone
    journal = out / JOURNAL
    journal.write_text(journal.read_text()[:-20])
    rest = DiscModel()
    summary = predict_images(rest, images, out, identity="m", **tiny_encoding,
                             progress=False)
    assert len(rest.calls) == len(images) - 2 and summary.reused == 2
    for name in ("predictions.csv", *(f"masks/{i.name}.png" for i in images)):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    again = DiscModel()
    predict_images(again, images, out, identity="m", **tiny_encoding, progress=False)
    assert again.calls == []                                    # all finished: nothing redone
    (out / "overlays" / f"{images[4].name}.png").unlink()       # a lost file is redone
    other = DiscModel()
    lines: list[str] = []
    predict_images(other, images, out, identity="another fit", **tiny_encoding,
                   progress=False, say=lines.append)
    assert len(other.calls) == len(images) and "another model" in lines[0]


def test_an_images_seed_is_the_runs_not_its_place(synthetic_dir, tmp_path, tiny_encoding):
    first = DiscModel()
    images = list_images([synthetic_dir / "images"])
    predict_images(first, images, tmp_path / "a", identity="m", seed=7, **tiny_encoding,
                   progress=False)
    assert first.calls == [(7,)] * len(images)
    later = DiscModel()
    predict_images(later, images[3:], tmp_path / "b", identity="m", seed=7, **tiny_encoding,
                   progress=False)
    assert later.calls == first.calls[3:]


# --------------------------------------------------------------------------- suggest
def test_suggest_lists_the_medoids_of_the_images_embeddings(
        synthetic_dir, tmp_path, tiny_checkpoint, tiny_backbone, capsys):
    from selfprompt.embeddings import EmbeddingCache, image_key
    from selfprompt.models.encoder import ImageEncoder
    from selfprompt.shots import select_shots

    listing = tmp_path / "to_label.txt"
    args = ["-q", "suggest", "--images", str(synthetic_dir / "images"), "--k", "3",
            "--out", str(listing), "--backbone", "tiny", "--checkpoint", str(tiny_checkpoint),
            "--cache", str(tmp_path / "cache")]
    assert main(args) == 0
    chosen = listing.read_text().splitlines()
    assert len(chosen) == 3 and chosen == sorted(chosen)
    assert "label these 3 of 10 images first" in capsys.readouterr().out
    # the shot strategy's own medoids on the same cached embeddings
    images = sorted((synthetic_dir / "images").iterdir())
    cache = EmbeddingCache.for_backbone(tmp_path / "cache", tiny_backbone,
                                        encoder=ImageEncoder(tiny_backbone))
    embeddings = [cache.read(image_key(p.read_bytes())) for p in images]
    expected = select_shots(embeddings, range(len(images)), 3, "medoids", 42)
    assert chosen == [str(images[i]) for i in sorted(expected)]
    assert main(args) == 0 and listing.read_text().splitlines() == chosen


# --------------------------------------------------------------------------- errors first
@pytest.mark.parametrize("fault", ["no mask", "mask size"])
def test_a_labelled_image_without_its_mask_stops_before_any_encoding(
        synthetic_dir, tmp_path, tiny_checkpoint, capsys, fault):
    labelled = tmp_path / "labelled"
    shutil.copytree(synthetic_dir, labelled)
    victim = labelled / "masks" / "synthetic_002.jpg"
    if fault == "no mask":
        victim.unlink()
    else:
        cv2.imwrite(str(victim), np.zeros((50, 60), np.uint8))
    cache = tmp_path / "cache"
    code = main(["-q", "predict", "--labelled", str(labelled), "--images",
                 str(synthetic_dir / "images"), "--out", str(tmp_path / "out"),
                 "--backbone", "tiny", "--checkpoint", str(tiny_checkpoint),
                 "--cache", str(cache)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert ("synthetic_002.jpg: no mask" in err if fault == "no mask"
            else "mask size 60x50 differs from its image's" in err)
    assert not list(cache.rglob("*.npy"))                       # nothing was encoded


# --------------------------------------------------------------------------- real fits
def _predict_cli(labelled, images, out, backbone, checkpoint, cache, *extra):
    args = ["-q", "predict", "--labelled", str(labelled), "--images", str(images), "--out",
            str(out), "--backbone", backbone, "--cache", str(cache), *map(str, extra)]
    return main(args + (["--checkpoint", str(checkpoint)] if checkpoint else []))


def test_predict_end_to_end_then_again_from_the_saved_model(
        synthetic_dir, tmp_path, tiny_checkpoint, capsys):
    labelled = tmp_path / "labelled"
    for sub in ("images", "masks"):
        (labelled / sub).mkdir(parents=True)
        for i in range(5):
            shutil.copy(synthetic_dir / sub / f"synthetic_00{i}.jpg", labelled / sub)
    todo = _images(synthetic_dir, tmp_path / "todo", [f"synthetic_00{i}.jpg" for i in range(5, 10)])
    (todo / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    fit = tmp_path / "fit.npz"
    out = tmp_path / "out"
    code = _predict_cli(labelled, todo, out, "tiny", tiny_checkpoint, tmp_path / "cache",
                        "--prompt", "box", "--save-model", fit)
    printed = capsys.readouterr()
    assert code == 1                                            # one image failed ...
    lines = printed.out.strip().splitlines()
    skipped = [line for line in printed.err.splitlines() if "broken.png" in line]
    assert len(skipped) == 1 and skipped[0].startswith("skipped: ")
    assert "1 image(s) could not be read" in printed.out and "broken.png" in \
        (out / FAILED).read_text()
    rows = read_table(out / "predictions.csv")                  # ... the five others are written
    assert sorted(Path(r["image"]).name for r in rows) == sorted(
        f"synthetic_00{i}.jpg" for i in range(5, 10))
    assert [r["score"] for r in rows] == sorted(r["score"] for r in rows)
    assert {r["prompt"] for r in rows} == {"box"}
    assert "least confident first" in lines[-1] and Path(rows[0]["image"]).stem in lines[-1]
    # the same command again: every finished image is kept, the unreadable one retried
    assert _predict_cli(labelled, todo, out, "tiny", tiny_checkpoint, tmp_path / "cache",
                        "--prompt", "box") == 1
    printed = capsys.readouterr()
    assert "(0 computed, 5 kept from an earlier run" in printed.out
    assert "broken.png" in printed.err
    # the saved fit, without the labelled images, writes the same masks
    again = tmp_path / "again"
    assert main(["-q", "predict", "--model", str(fit), "--images", str(todo), "--out",
                 str(again), "--cache", str(tmp_path / "cache"), "--checkpoint",
                 str(tiny_checkpoint)]) == 1
    for r in rows:
        assert (again / r["mask"]).read_bytes() == (out / r["mask"]).read_bytes()
    assert read_table(again / "predictions.csv") == rows
    # and the Python API's predict, on each path, gives the command's mask and score
    from selfprompt.api import SelfPrompt

    model = SelfPrompt.load(fit, checkpoint=tiny_checkpoint, cache=tmp_path / "cache")
    for r in rows:
        got = model.predict(r["image"])
        written = cv2.imread(str(out / r["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        assert np.array_equal(got.mask, written) and round(got.score, 6) == r["score"]


def _dice_of(out: Path, rows: list[dict], truth) -> dict[str, float]:
    from selfprompt.metrics import dice

    return {Path(r["image"]).stem: round(dice(cv2.imread(str(out / r["mask"]),
                                                         cv2.IMREAD_GRAYSCALE) > 127,
                                              truth[Path(r["image"]).stem]), 6)
            for r in rows}


def _predict_scores_what_run_scores(root: Path, n_images: int, k: int, backbone, checkpoint,
                                    cache: Path, tmp_path: Path, prompt: str = "box"):
    """``run``'s fold 0 (2 folds over the first ``n_images``, k shots) and ``predict``
    fitted on the same shots in the same order, over the fold's held-out images: the
    per-image Dice of the written masks against the true ones.

    Returns (run's Dice, the CLI's Dice with ``--prompt linear``, the Dice of the CLI's
    saved ``prompt`` fit through the writer with the protocol's seeds, and the CLI's own
    ``prompt`` Dice with its own seed)."""
    from selfprompt.api import SelfPrompt
    from selfprompt.datasets.reader import open_dataset
    from selfprompt.embeddings import embed_dataset
    from selfprompt.evaluation.protocol import Experiment
    from selfprompt.models.encoder import ImageEncoder
    from selfprompt.presets import get_preset

    preset = get_preset("corrected")
    data = open_dataset(root).subset(n_images)
    embeddings, _ = embed_dataset(data, backbone, cache, progress=False)
    exp = Experiment(data, embeddings, backbone, tmp_path / "run", n_folds=2,
                     variants=("linear", prompt), progress=False)
    rows = exp.score(preset, str(k), 0)[0]
    run = {v: {r["image"]: r["dice"] for r in rows if r["variant"] == v}
           for v in ("linear", prompt)}
    shots, test = exp.shots(str(k), 0), [int(i) for i in exp.folds[0][1]]
    # the labelled folder: the shots, named so that name order is the order drawn
    labelled, held = tmp_path / "labelled", tmp_path / "held"
    for j, i in enumerate(shots):
        s = data.samples[i]
        for sub, path in (("images", s.image_path), ("masks", s.mask_path)):
            (labelled / sub).mkdir(parents=True, exist_ok=True)
            (labelled / sub / f"{j:03d}_{path.name}").symlink_to(path)
    held.mkdir()
    for i in test:
        (held / data.samples[i].image_path.name).symlink_to(data.samples[i].image_path)
    truth = {data.samples[i].name: data.mask(i, preset.mask_threshold) for i in test}
    kind = backbone.model_type
    out = {}
    for p in ("linear", prompt):
        folder = tmp_path / f"cli-{p}"
        assert _predict_cli(labelled, held, folder, kind, checkpoint, cache, "--prompt", p,
                            "--save-model", tmp_path / f"{p}.npz") == 0
        out[p] = _dice_of(folder, read_table(folder / "predictions.csv"), truth)
    # the saved fit through the writer, each image seeded as the protocol seeds it
    model = SelfPrompt.load(tmp_path / f"{prompt}.npz", checkpoint=checkpoint, cache=cache)
    index = {data.samples[i].name: i for i in test}
    encoder = ImageEncoder(model.backbone_)
    from selfprompt.embeddings import EmbeddingCache

    seeded = tmp_path / "seeded"
    predict_images(lambda f, size, seed: model.method_.predict(f, size, seed=seed),
                   list_images([held]), seeded,
                   cache=EmbeddingCache.for_backbone(cache, model.backbone_, encoder=encoder),
                   encoder=encoder, identity="protocol seeds",
                   seed_of=lambda image, key: (42, 0, index[image.name]), progress=False)
    protocol_seeds = _dice_of(seeded, read_table(seeded / "predictions.csv"), truth)
    return run, out["linear"], protocol_seeds, out[prompt]


@pytest.mark.parametrize("prompt", ["box", "auto"])
def test_predict_scores_what_run_scores_on_synthetic_data(synthetic_dir, tmp_path,
                                                          tiny_checkpoint, tiny_backbone, prompt):
    run, linear, seeded, cli = _predict_scores_what_run_scores(
        synthetic_dir, 10, 3, tiny_backbone, tiny_checkpoint, tmp_path / "cache", tmp_path,
        prompt)
    assert len(linear) == 5 and linear == run["linear"]
    assert seeded == run[prompt]
    assert cli.keys() == seeded.keys()


@pytest.mark.slow
def test_predict_scores_what_run_scores_on_real_kvasir(kvasir_dir, tmp_path):
    """LiteMedSAM's real weights, k = 5 shots, 10 held-out Kvasir-SEG images."""
    from selfprompt.models.backbone import load_backbone
    from selfprompt.utils.paths import cache_folder

    backbone = load_backbone("medsam_lite", device="cpu")
    run, linear, box, cli_box = _predict_scores_what_run_scores(
        kvasir_dir, 20, 5, backbone, None, cache_folder(), tmp_path)
    assert len(linear) == 10 and linear == run["linear"]
    assert box == run["box"]
    # the command's own seed (the run's, for every image) moves the boxes by a few pixels
    assert abs(np.mean(list(cli_box.values())) - np.mean(list(box.values()))) < 0.05


def test_labelled_pairs_from_a_pattern_are_paired_as_check_pairs_them(synthetic_dir, tmp_path):
    import argparse

    from selfprompt.cli.own import _labelled

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i in range(3):      # images and masks in one folder: x.jpg beside x_mask.png
        shutil.copy(synthetic_dir / "images" / f"synthetic_00{i}.jpg", mixed)
        mask = cv2.imread(str(synthetic_dir / "masks" / f"synthetic_00{i}.jpg"),
                          cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(mixed / f"synthetic_00{i}_mask.png"), mask)
    args = argparse.Namespace(labelled=f"{mixed}/*.jpg", labelled_images=None,
                              labelled_masks="*_mask.png", pair=None, dataset=None,
                              cache=tmp_path / "cache", quiet=True)
    data = _labelled(args)
    assert data.names == ["synthetic_000", "synthetic_001", "synthetic_002"]
    assert [s.mask_path.name for s in data.samples] == [f"synthetic_00{i}_mask.png"
                                                        for i in range(3)]
