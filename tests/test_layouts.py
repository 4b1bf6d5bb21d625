"""Data sets as published: CVC-ClinicDB, PH2, BUSI copies (tests/published.py), declared
layouts (suffix, regular expression, callable), mask conventions with known answers,
and Kvasir-SEG masks locked to the authors' reading."""
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from selfprompt.datasets import catalog
from selfprompt.datasets.reader import (DatasetError, mask_grey, open_dataset, read_mask,
                                        summarise_check, validate)
from selfprompt.datasets.layouts import parse_pair, unique_names

sys.path.insert(0, str(Path(__file__).resolve().parent))
from published import (H, W, make_busi, make_cvc, make_ph2, rectangle,  # noqa: E402
                       save_grey, write_bmp_1bit)


# --------------------------------------------------------------------------- published layouts
def test_cvc_clinicdb_as_published(tmp_path):
    top = make_cvc(tmp_path)
    ds = open_dataset(tmp_path)                                  # found one level down
    assert ds.layout == "cvc-clinicdb" and ds.root == top
    assert ds.names == ["1", "2", "3", "4"]
    assert ds.samples[1].image_path.name == "2.tif" and ds.samples[1].mask_path.name == "2.tif"
    assert ds.samples[0].mask_path.parent.name == "Ground Truth"  # the space is fine
    assert [int(ds.mask(i).sum()) for i in range(4)] == [630] * 4  # grey 128 in, 100 out
    facts = validate(ds, progress=False)
    assert [f["grey"] for f in facts] == [60] * 4
    assert [f["masks"] for f in facts] == [1] * 4
    assert any("240 grey mask pixels" in line and "> 127" in line
               for line in summarise_check(facts))


def test_cvc_copy_with_png_and_tif_trees_takes_png(tmp_path):
    png = make_cvc(tmp_path / "CVC" / "PNG", n=2, tif=())
    make_cvc(tmp_path / "CVC" / "TIF", n=2, tif=(1, 2))
    # CVC/PNG/CVC-ClinicDB/Original is three levels down: give the release folder
    ds = open_dataset(tmp_path / "CVC" / "PNG", "cvc-clinicdb")
    assert ds.root == png and ds.names == ["1", "2"]


def test_ph2_as_published(tmp_path):
    top = make_ph2(tmp_path)
    ds = open_dataset(top)                                       # PH2Dataset/PH2 Dataset images
    assert ds.layout == "ph2" and ds.root == top / "PH2 Dataset images"
    assert ds.names == ["IMD002", "IMD003", "IMD004"]
    assert all(len(s.mask_paths) == 1 and s.mask_path.parent.name.endswith("_lesion")
               for s in ds.samples)                              # the roi folders are not read
    assert (ds.samples[0].mask_path.read_bytes()[28]) == 1       # really a 1-bit BMP
    assert [int(ds.mask(i).sum()) for i in range(3)] == [600] * 3
    validate(ds, progress=False)


def test_busi_as_published_several_masks_and_an_empty_one(tmp_path):
    top = make_busi(tmp_path)
    ds = open_dataset(tmp_path)
    assert ds.layout == "busi" and ds.root == top
    assert ds.names == ["benign (1)", "benign (2)", "malignant (1)", "normal (1)"]
    two = ds.samples[1]
    assert [p.name for p in two.mask_paths] == ["benign (2)_mask.png", "benign (2)_mask_1.png"]
    assert int(ds.mask(1).sum()) == 600 + 150                    # united
    assert int(ds.mask(3).sum()) == 0                            # normal: empty mask
    facts = validate(ds, progress=False)
    assert [f["masks"] for f in facts] == [1, 2, 1, 1]
    assert facts[1]["foreground"] == pytest.approx(750 / (H * W))
    lines = summarise_check(facts)
    assert any(line.startswith("1 image(s) have several lesion masks") for line in lines)
    assert any(line.startswith("1 mask(s) are empty") for line in lines)


@pytest.mark.parametrize("name,make", [("cvc-clinicdb", make_cvc), ("ph2", make_ph2),
                                       ("busi", make_busi)])
def test_registry_name_gives_the_same_pairs(tmp_path, name, make):
    make(tmp_path)
    named, auto = open_dataset(tmp_path, name), open_dataset(tmp_path)
    assert named.layout == name and named.samples == auto.samples
    with pytest.raises(DatasetError, match="does not look like|folder missing"):
        open_dataset(tmp_path, "isic2018" if name != "isic2018" else "busi")


def test_same_names_in_two_class_folders_keep_their_folder(tmp_path):
    for cls in ("a", "b"):
        save_grey(tmp_path / cls / "1.png", np.full((H, W), 90, np.uint8))
        save_grey(tmp_path / cls / "1_mask.png", rectangle(0))
    save_grey(tmp_path / "b" / "2.png", np.full((H, W), 90, np.uint8))
    save_grey(tmp_path / "b" / "2_mask.png", rectangle(0))
    ds = open_dataset(tmp_path, images="*/*.png", masks="*/*_mask.png", pair="_mask")
    assert ds.names == ["a/1", "b/1", "2"]
    assert unique_names(["x/y/1", "z/y/1", "z/y/2"]) == ["x/y/1", "z/y/1", "2"]


# --------------------------------------------------------------------------- declared layouts
def test_declared_suffix_rule(tmp_path):
    make_busi(tmp_path)
    ds = open_dataset(tmp_path / "Dataset_BUSI_with_GT", images="*/*.png",
                      masks="*/*_mask*.png", pair="_mask")
    assert ds.layout == "folder" and len(ds) == 4 and len(ds.samples[1].mask_paths) == 2


def test_declared_regex_rule(tmp_path):
    top = make_ph2(tmp_path) / "PH2 Dataset images"
    ds = open_dataset(top, images="IMD*/*_Dermoscopic_Image/*.bmp",
                      masks="IMD*/*_lesion/*.bmp", pair=r"(?P<key>IMD\d+)_lesion")
    assert ds.names == ["IMD002", "IMD003", "IMD004"]
    # the same in command-line words
    assert parse_pair(r"(?P<key>IMD\d+)_lesion") == r"(?P<key>IMD\d+)_lesion"
    assert parse_pair("_mask") == "_mask" and parse_pair(",_seg") == ("", "_seg")


def test_declared_callable_rule(tmp_path):
    top = make_cvc(tmp_path, n=3, tif=())
    ds = open_dataset(top, images="Original", masks="Ground Truth",
                      pair=lambda image: Path("Ground Truth") / image.name)
    assert ds.names == ["1", "2", "3"] and ds.samples[2].mask_path == top / "Ground Truth/3.png"
    with pytest.raises(DatasetError) as err:                     # two images, one mask
        open_dataset(top, images="Original", masks="Ground Truth",
                     pair=lambda image: "Ground Truth/1.png")
    text = str(err.value)
    assert "2.png: maps to the same mask" in text and "Ground Truth/1.png" in text
    assert "Ground Truth/3.png: mask with no matching image" in text


def test_declared_layout_errors_name_the_files(tmp_path):
    top = make_cvc(tmp_path, n=3, tif=())
    (top / "Ground Truth" / "2.png").rename(top / "Ground Truth" / "9.png")
    with pytest.raises(DatasetError) as err:
        open_dataset(top, images="Original", masks="Ground Truth", pair="")
    text = str(err.value)
    assert f"{top / 'Original' / '2.png'}: no mask" in text
    assert f"{top / 'Ground Truth' / '9.png'}: mask with no matching image" in text
    with pytest.raises(DatasetError, match=r"pattern 'Original/\*.jpg' matches no image"):
        open_dataset(top, images="Original/*.jpg", masks="Ground Truth")
    with pytest.raises(DatasetError, match="has no named group"):
        open_dataset(top, images="Original", masks="Ground Truth", pair=r"(\d+)")
    with pytest.raises(DatasetError, match="folder missing"):
        open_dataset(top, images="Originals", masks="Ground Truth")


def test_two_images_with_one_key_and_an_ambiguous_mask(tmp_path):
    for folder in ("x", "y"):
        save_grey(tmp_path / "imgs" / folder / "a.png", np.full((H, W), 90, np.uint8))
    save_grey(tmp_path / "gts" / "a.png", rectangle(0))
    with pytest.raises(DatasetError, match="could be the mask of any of"):
        open_dataset(tmp_path, images="imgs/*/*.png", masks="gts")
    with pytest.raises(DatasetError, match="maps to the same mask as"):
        open_dataset(tmp_path, images="imgs/*/*.png", masks="gts", pair=r"(?P<key>a)")


# --------------------------------------------------------------------------- mask conventions
def _grey(path):
    return mask_grey(path.read_bytes(), path)


def test_mask_conventions_known_answers(tmp_path):
    lesion = rectangle(0) > 0                                    # 600 pixels
    cases = {
        "zero_one.png": lesion.astype(np.uint8),
        "zero_38.png": lesion.astype(np.uint8) * 38,             # a label value below 127
        "deep01.png": lesion.astype(np.uint16),
        "deep255.png": lesion.astype(np.uint16) * 255,
        "deep1000.png": lesion.astype(np.uint16) * 1000,
        "deepfull.png": lesion.astype(np.uint16) * 65535,
    }
    for name, array in cases.items():
        save_grey(tmp_path / name, array)
    red = np.zeros((H, W, 3), np.uint8)
    red[lesion] = (0, 0, 200)                                    # BGR: red on black
    red[lesion & (np.arange(W) < 25)] = (0, 0, 255)              # two shades of red
    cv2.imwrite(str(tmp_path / "red.png"), red)
    write_bmp_1bit(tmp_path / "one_bit.bmp", lesion.astype(np.uint8))
    for name in list(cases) + ["red.png", "one_bit.bmp"]:
        grey = _grey(tmp_path / name)
        assert grey.dtype == np.uint8 and grey.shape == (H, W), name
        for threshold in (127, 128):
            assert int(read_mask(tmp_path / name, threshold).sum()) == 600, name
    assert int(read_mask(tmp_path / "deepfull.png").sum()) == 600
    assert _grey(tmp_path / "red.png").max() == 255              # brightest channel, not 76
    empty16 = np.zeros((H, W), np.uint16)
    save_grey(tmp_path / "empty16.png", empty16)
    assert int(read_mask(tmp_path / "empty16.png").sum()) == 0


def test_palette_mask(tmp_path):
    image = pytest.importorskip("PIL.Image")
    indices = rectangle(0) // 255                                # 0 / 1
    pal = image.fromarray(indices.astype(np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)             # VOC-style dark red lesion
    pal.save(tmp_path / "pal.png")
    assert image.open(tmp_path / "pal.png").mode == "P"
    for threshold in (127, 128):
        assert int(read_mask(tmp_path / "pal.png", threshold).sum()) == 600


def _authors_mask(path, threshold):
    """The reading every committed Kvasir-SEG result depends on (do not change)."""
    bgr = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    return (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) > threshold).astype(np.uint8)


def test_kvasir_style_jpeg_masks_are_read_as_before(synthetic_dir):
    ds = open_dataset(synthetic_dir)
    for i, sample in enumerate(ds.samples):
        for threshold in (127, 128):
            assert np.array_equal(ds.mask(i, threshold), _authors_mask(sample.mask_path,
                                                                       threshold))


def test_real_kvasir_masks_are_bit_identical_to_the_authors_reading(kvasir_dir):
    ds = open_dataset(kvasir_dir)
    assert ds.layout == "kvasir"
    assert ds.names == sorted(p.stem for p in (kvasir_dir / "images").glob("*.jpg"))
    for i in range(0, len(ds), 40):                             # 25 masks across the set
        for threshold in (127, 128):
            assert np.array_equal(ds.mask(i, threshold),
                                  _authors_mask(ds.samples[i].mask_path, threshold))


def test_catalog_entries_are_complete():
    assert list(catalog.CATALOG) == ["isic2018", "kvasir", "cvc-clinicdb", "ph2", "busi"]
    for entry in catalog.CATALOG.values():
        assert entry.licence and entry.citation and entry.homepage.startswith("https://")
        assert entry.download or "http" in entry.how_to_get
        assert entry.name in catalog.describe(entry)
    from selfprompt.assets import load_registry

    registry = load_registry()
    for entry in catalog.downloads().values():  # what a download extracts to, and from where
        assert entry.download_layout.folder == entry.folder
        assert all(registry[a].kind == "archive" for a in entry.download.archives)


def test_regex_rule_names_an_image_without_mask(tmp_path):
    top = make_ph2(tmp_path) / "PH2 Dataset images"
    (top / "IMD003" / "IMD003_lesion" / "IMD003_lesion.bmp").unlink()
    with pytest.raises(DatasetError) as err:
        open_dataset(top, "ph2")
    assert "IMD003.bmp: no mask (looked for a file of '*/*_lesion/*.bmp' whose key" in str(
        err.value)


# --------------------------------------------------------------------------- pairing with no rule
def _pairs(ds):
    return [(s.image_path.name, tuple(m.name for m in s.mask_paths)) for s in ds.samples]


def _image(path):
    return save_grey(path, np.full((H, W), 90, np.uint8))


def test_no_rule_pairs_ph2_like_case_folders(tmp_path):
    top = make_ph2(tmp_path) / "PH2 Dataset images"
    ds = open_dataset(top, images="*/*_Dermoscopic_Image/*.bmp", masks="*/*_lesion/*.bmp")
    assert _pairs(ds) == [(f"IMD00{i}.bmp", (f"IMD00{i}_lesion.bmp",)) for i in (2, 3, 4)]
    assert ds.names == ["IMD002", "IMD003", "IMD004"]
    # a suffix now pairs across the case's folders too, as the regular expression did
    assert open_dataset(top, images="*/*_Dermoscopic_Image/*.bmp", masks="*/*_lesion/*.bmp",
                        pair="_lesion").samples == ds.samples
    assert open_dataset(top, "ph2").samples == ds.samples


def test_no_rule_pairs_a_parallel_labels_folder_and_a_flat_gt_folder(tmp_path):
    for name in ("scan7", "scan12", "scan1"):
        _image(tmp_path / "a" / "scans" / f"{name}.png")
        save_grey(tmp_path / "a" / "labels" / f"{name}_label.png", rectangle(0))
        _image(tmp_path / "b" / f"{name}.png")
        save_grey(tmp_path / "b" / f"{name}_gt.png", rectangle(0))
    labels = open_dataset(tmp_path / "a", images="scans", masks="labels")
    assert _pairs(labels) == [(f"scan{i}.png", (f"scan{i}_label.png",)) for i in (1, 12, 7)]
    flat = open_dataset(tmp_path / "b", images="*.png", masks="*_gt.png")
    assert _pairs(flat) == [(f"scan{i}.png", (f"scan{i}_gt.png",)) for i in (1, 12, 7)]
    from selfprompt.datasets.layouts import describe_suffixes
    assert describe_suffixes((s.image_path, s.mask_paths) for s in flat.samples) == (
        "masks are named image + '_gt' (3)")


def test_no_rule_same_stems_in_two_splits_take_the_nearest_folder(tmp_path):
    for split in ("train", "test"):
        _image(tmp_path / split / "images" / "x.png")
        save_grey(tmp_path / split / "masks" / "x_mask.png", rectangle(0))
        save_grey(tmp_path / split / "masks" / "x_mask_1.png", rectangle(1))
    ds = open_dataset(tmp_path, images="*/images/*.png", masks="*/masks/*.png")
    assert [(s.image_path.parent.parent.name, [m.parent.parent.name for m in s.mask_paths],
             [m.name for m in s.mask_paths]) for s in ds.samples] == [
        ("test", ["test", "test"], ["x_mask.png", "x_mask_1.png"]),
        ("train", ["train", "train"], ["x_mask.png", "x_mask_1.png"])]
    assert ds.names == ["test/images/x", "train/images/x"]


def test_no_rule_ambiguous_unpaired_and_mixed_masks_are_errors_naming_each_file(tmp_path):
    for folder in ("x", "y"):                                   # equally near: ambiguous
        _image(tmp_path / "imgs" / folder / "a.png")
    save_grey(tmp_path / "gts" / "a_seg.png", rectangle(0))
    _image(tmp_path / "imgs" / "1.png")                          # `12` is not `1` + a suffix
    save_grey(tmp_path / "gts" / "1_seg.png", rectangle(0))
    save_grey(tmp_path / "gts" / "12_seg.png", rectangle(0))
    _image(tmp_path / "imgs" / "b.png")                          # two kinds of mask
    save_grey(tmp_path / "gts" / "b_seg.png", rectangle(0))
    save_grey(tmp_path / "gts" / "b_gt.png", rectangle(0))
    _image(tmp_path / "imgs" / "c.png")                          # no mask at all
    with pytest.raises(DatasetError) as err:
        open_dataset(tmp_path, images="imgs/**/*.png", masks="gts")
    text = str(err.value)
    assert (f"{tmp_path / 'gts' / 'a_seg.png'}: could be the mask of any of "
            f"{tmp_path / 'imgs' / 'x' / 'a.png'}, {tmp_path / 'imgs' / 'y' / 'a.png'}") in text
    assert f"{tmp_path / 'gts' / '12_seg.png'}: mask with no matching image" in text
    assert (f"{tmp_path / 'imgs' / 'b.png'}: masks with different suffixes ('_gt', '_seg'"
            in text and "give --pair SUFFIX" in text)
    assert f"{tmp_path / 'imgs' / 'c.png'}: no mask (no file of 'gts' is named 'c' or " \
           "'c' + a suffix such as '_mask')" in text
    assert f"{tmp_path / 'imgs' / '1.png'}: no mask" not in text
    assert text.startswith(f"{tmp_path}: 6 problem(s)")


def test_no_rule_names_the_rule_that_would_pair_what_is_left(tmp_path):
    for i in (3, 7, 11):
        _image(tmp_path / "images" / f"img_{i:03d}.png")
        save_grey(tmp_path / "masks" / f"seg{i:03d}.png", rectangle(i))
    with pytest.raises(DatasetError) as err:
        open_dataset(tmp_path, images="images", masks="masks")
    text = str(err.value)
    assert text.count(": no mask") == 3 and text.count("mask with no matching image") == 3
    assert text.endswith("every unpaired image would pair with one unpaired mask under "
                         r"--pair '(?P<key>\d+)' (a regular expression: the group 'key' is "
                         "compared)")
    ds = open_dataset(tmp_path, images="images", masks="masks", pair=r"(?P<key>\d+)")
    assert _pairs(ds) == [(f"img_{i:03d}.png", (f"seg{i:03d}.png",)) for i in (3, 7, 11)]
    for p in (tmp_path / "masks").iterdir():                     # mask_<image stem>
        p.rename(p.with_name("mask_img_" + p.name[3:]))
    with pytest.raises(DatasetError, match=re.escape(r"--pair '(?P<key>\d+)'")):
        open_dataset(tmp_path, images="images", masks="masks")
    (tmp_path / "masks" / "mask_img_011.png").rename(tmp_path / "masks" / "mask_img_x.png")
    (tmp_path / "images" / "img_011.png").rename(tmp_path / "images" / "img_x.png")
    with pytest.raises(DatasetError, match=re.escape("--pair 'mask_(?P<key>.+)'")):
        open_dataset(tmp_path, images="images", masks="masks")
    ds = open_dataset(tmp_path, images="images", masks="masks", pair="mask_(?P<key>.+)")
    assert [p[1] for p in _pairs(ds)] == [("mask_img_003.png",), ("mask_img_007.png",),
                                          ("mask_img_x.png",)]
