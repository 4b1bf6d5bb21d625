"""Data sets: pairing rules, odd pixel formats, and one clear error listing every bad file."""
import shutil

import cv2
import numpy as np
import pytest

from selfprompt.datasets.reader import DatasetError, open_dataset, read_image, read_mask, validate


def write_pair(root, name, h=60, w=80, img_dir="images", msk_dir="masks", suffix="", ext=".png"):
    (root / img_dir).mkdir(parents=True, exist_ok=True)
    (root / msk_dir).mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), 120, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[10:30, 10:40] = 255
    cv2.imwrite(str(root / img_dir / f"{name}{ext}"), img)
    cv2.imwrite(str(root / msk_dir / f"{name}{suffix}.png"), mask)
    return root / img_dir / f"{name}{ext}", root / msk_dir / f"{name}{suffix}.png"


def test_folder_pairs_sorted_by_name(tmp_path):
    for n in ["b", "a", "c"]:
        write_pair(tmp_path, n)
    ds = open_dataset(tmp_path)
    assert ds.names == ["a", "b", "c"] and ds.layout == "folder"   # not named kvasir
    facts = validate(ds, progress=False)
    assert facts[0] == {"name": "a", "height": 60, "width": 80,
                        "foreground": pytest.approx(600 / 4800), "masks": 1, "grey": 0}


def test_isic_layout_and_suffix_rule(tmp_path):
    for n in ["ISIC_0000001", "ISIC_0000000"]:
        write_pair(tmp_path, n, img_dir="ISIC2018_Task1-2_Training_Input",
                   msk_dir="ISIC2018_Task1_Training_GroundTruth", suffix="_segmentation",
                   ext=".jpg")
    (tmp_path / "ISIC2018_Task1-2_Training_Input" / "LICENSE.txt").write_text("x")
    ds = open_dataset(tmp_path)
    assert ds.layout == "isic2018" and ds.names == ["ISIC_0000000", "ISIC_0000001"]
    assert ds.samples[0].mask_path.name == "ISIC_0000000_segmentation.png"
    validate(ds, progress=False)


def test_generic_folder_with_mask_suffix(tmp_path):
    write_pair(tmp_path, "case1", suffix="_mask")
    ds = open_dataset(tmp_path, layout="folder")
    assert ds.samples[0].mask_path.name == "case1_mask.png"


def test_every_problem_is_listed_in_one_error(tmp_path):
    write_pair(tmp_path, "good")
    img, _ = write_pair(tmp_path, "nomask")
    (tmp_path / "masks" / "nomask.png").unlink()
    _, msk = write_pair(tmp_path, "noimage")
    (tmp_path / "images" / "noimage.png").unlink()
    with pytest.raises(DatasetError) as err:
        open_dataset(tmp_path)
    text = str(err.value)
    assert "2 problem(s)" in text
    assert f"{img}: no mask" in text and f"{msk}: mask with no matching image" in text


def test_validation_lists_every_bad_file(tmp_path):
    write_pair(tmp_path, "good")
    # truncated JPEG (OpenCV would decode it silently, filling the rest with grey)
    write_pair(tmp_path, "truncated", ext=".jpg")
    jpg = tmp_path / "images" / "truncated.jpg"
    jpg.write_bytes(jpg.read_bytes()[:-200])
    # unreadable: not an image at all
    write_pair(tmp_path, "garbage")
    (tmp_path / "images" / "garbage.png").write_bytes(b"this is not a png")
    # mask of another size
    write_pair(tmp_path, "wrongsize")
    cv2.imwrite(str(tmp_path / "masks" / "wrongsize.png"), np.zeros((30, 80), np.uint8))
    # a soft map, not a two-valued mask
    write_pair(tmp_path, "soft")
    ramp = np.tile(np.linspace(0, 255, 80, dtype=np.uint8), (60, 1))
    cv2.imwrite(str(tmp_path / "masks" / "soft.png"), ramp)
    # empty file
    write_pair(tmp_path, "zero")
    (tmp_path / "masks" / "zero.png").write_bytes(b"")
    with pytest.raises(DatasetError) as err:
        validate(open_dataset(tmp_path), progress=False)
    text = str(err.value)
    assert "5 problem(s)" in text
    assert "truncated.jpg: truncated" in text
    assert "garbage.png: not a readable image" in text
    assert "wrongsize.png: mask size 80x30 differs from its image's 80x60" in text
    assert "soft.png: not a two-valued mask" in text
    assert "zero.png: empty file" in text
    assert "good" not in text


def test_two_files_with_one_name_are_a_problem_not_a_silent_choice(tmp_path):
    write_pair(tmp_path, "a")
    write_pair(tmp_path, "a", ext=".jpg")
    with pytest.raises(DatasetError, match="a.png: same name as a.jpg"):
        open_dataset(tmp_path)


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetError, match="empty data set"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no known data-set layout"):
        open_dataset(tmp_path / "images")


def test_grey_rgba_and_16_bit_inputs_are_handled(tmp_path):
    grey = np.full((20, 30), 200, np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 2], rgba[..., 3] = 255, 128                       # red (BGRA), half transparent
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    deep = np.full((20, 30, 3), 65535, np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    for name, first in [("grey", [200, 200, 200]), ("rgba", [255, 0, 0]), ("deep", [255] * 3)]:
        img = read_image(tmp_path / f"{name}.png")
        assert img.shape == (20, 30, 3) and img.dtype == np.uint8
        assert img[0, 0].tolist() == first
    m16 = np.zeros((20, 30), np.uint16)
    m16[5:10, 5:10] = 65535
    cv2.imwrite(str(tmp_path / "m16.png"), m16)
    assert read_mask(tmp_path / "m16.png").sum() == 25
    labels01 = (m16 > 0).astype(np.uint8)                      # a 0/1 label image
    cv2.imwrite(str(tmp_path / "m01.png"), labels01)
    assert read_mask(tmp_path / "m01.png").sum() == 25


def test_passing_check_is_remembered_until_a_file_changes(tmp_path):
    data = tmp_path / "data"
    write_pair(data, "a")
    ds = open_dataset(data)
    validate(ds, record_dir=tmp_path / "rec", progress=False)
    assert len(list((tmp_path / "rec").glob("check-*.json"))) == 1
    shutil.copy(data / "images" / "a.png", tmp_path / "orig.png")
    (data / "images" / "a.png").write_bytes(b"broken")           # changed: check again
    with pytest.raises(DatasetError):
        validate(open_dataset(data), record_dir=tmp_path / "rec", progress=False)


def test_real_kvasir_pairs_and_sizes(kvasir_dir):
    ds = open_dataset(kvasir_dir)
    assert len(ds) == 1000 and ds.names == sorted(ds.names)
    small = ds.subset(5)
    facts = validate(small, progress=False)
    assert all(f["height"] != f["width"] for f in facts)         # non-square, as documented
    assert all(0 < f["foreground"] < 1 for f in facts)
