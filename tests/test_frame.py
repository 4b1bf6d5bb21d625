"""SAM's padded frame: labels must lie under the embedding cells they train (D4)."""
import numpy as np
import pytest
from segment_anything.utils.transforms import ResizeLongestSide

from selfprompt.frame import (GRID, content_fraction, grid_to_image, input_size, labels_aligned,
                              labels_stretched)
from selfprompt.metrics import dice


@pytest.mark.parametrize("hw", [(576, 720), (720, 576), (1024, 1024), (332, 487), (1072, 1920)])
def test_input_size_matches_segment_anything(hw):
    assert input_size(*hw) == ResizeLongestSide.get_preprocess_shape(*hw, 1024)


def test_content_rows_of_a_576x720_image():
    frac = content_fraction(576, 720)        # resized to 819 x 1024: 51.2 rows of cells
    assert (frac[:51] == 1).all()
    assert frac[51, 0] == pytest.approx(3 / 16)
    assert (frac[52:] == 0).all()
    assert (frac[:, :] >= 0).all() and frac[:51].min() == 1


def test_label_cells_line_up_with_image_content_for_non_square_images():
    h, w = 576, 720
    mask = np.zeros((h, w), np.uint8)
    mask[432:, :] = 1                        # bottom quarter of the image is lesion
    aligned, valid = labels_aligned(mask)
    # In the padded frame the lesion spans rows 614..819 -> cells 38.4..51.2
    assert aligned[39:51].all() and not aligned[:38].any()
    assert not aligned[52:].any() and not valid[52:].any()   # padding: no tissue, no label
    # The authors' stretched labels put the lesion in the bottom quarter of the grid,
    # i.e. under cells 48..63, twelve of which hold only padding (D4).
    stretched = labels_stretched(mask)
    assert stretched[48:].all() and not stretched[:47].any()
    assert stretched[52:].sum() == 12 * GRID


def test_aligned_round_trip_recovers_the_mask_stretched_mapping_does_not():
    h, w = 576, 720
    mask = np.zeros((h, w), np.uint8)
    mask[100:300, 200:500] = 1
    aligned, _ = labels_aligned(mask)
    back = grid_to_image(aligned, h, w, aligned=True)
    assert back.shape == (h, w)
    assert dice(back, mask) > 0.95
    # Reading aligned labels back as if stretched shifts and squeezes them
    assert dice(grid_to_image(aligned, h, w, aligned=False), mask) < 0.8


def test_smooth_grid_to_image_keeps_probability_range():
    grid = np.linspace(0, 1, GRID * GRID, dtype=np.float32).reshape(GRID, GRID)
    out = grid_to_image(grid, 300, 500, aligned=True, smooth=True)
    assert out.shape == (300, 500) and out.min() >= 0 and out.max() <= 1


# --- LiteMedSAM's 256 x 256 frame: one cell is 4 x 4 input pixels instead of 16 x 16 ---

@pytest.mark.parametrize("hw", [(576, 720), (720, 576), (256, 256), (332, 487), (1072, 1920)])
def test_input_size_at_256_is_the_reference_int_plus_half(hw):
    h, w = hw
    scale = 256 / max(h, w)  # CVPR24_LiteMedSAM_infer.resize_longest_side
    assert input_size(h, w, 256) == (int(h * scale + 0.5), int(w * scale + 0.5))


def test_content_rows_of_a_576x720_image_at_256():
    frac = content_fraction(576, 720, img_size=256)  # resized to 205 x 256: 51.25 rows
    assert (frac[:51] == 1).all()
    assert frac[51, 0] == pytest.approx(1 / 4)
    assert (frac[52:] == 0).all()


def test_label_cells_line_up_at_256_as_at_1024():
    h, w = 576, 720
    mask = np.zeros((h, w), np.uint8)
    mask[432:, :] = 1                        # bottom quarter: frame rows 153.75..205 of 256
    aligned, valid = labels_aligned(mask, img_size=256)
    assert aligned[39:51].all() and not aligned[:38].any()    # cells 38.4..51.25
    assert not aligned[52:].any() and not valid[52:].any()
    assert valid[:51].all() and not valid[51:].any()          # row 51 is 1/4 content
    # same image, same lesion: the two frames give the same cells except at the edge
    big, _ = labels_aligned(mask, img_size=1024)
    assert (aligned != big).sum() <= GRID


def test_aligned_round_trip_at_256():
    h, w = 576, 720
    mask = np.zeros((h, w), np.uint8)
    mask[100:300, 200:500] = 1
    aligned, _ = labels_aligned(mask, img_size=256)
    back = grid_to_image(aligned, h, w, aligned=True, img_size=256)
    assert dice(back, mask) > 0.95
    assert dice(grid_to_image(aligned, h, w, aligned=False), mask) < 0.8  # D4 at 256 too


def test_frame_side_must_be_a_multiple_of_the_grid():
    with pytest.raises(ValueError, match="multiple"):
        labels_aligned(np.ones((10, 10), np.uint8), img_size=250)
