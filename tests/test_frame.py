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
