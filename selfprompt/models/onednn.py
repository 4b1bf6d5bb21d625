"""oneDNN's fused CPU kernels: a layer and what follows it in one pass over memory.

Why: on a CPU, an encoder's elementwise steps (adding a bias, GELU, adding the residual)
each read and write a whole activation tensor, and for LiteMedSAM's first stage (256 x
256 cells, 256 channels: 64 MiB a tensor) that traffic costs as much as the
convolutions' arithmetic. oneDNN applies them as post-ops while the product's output is
still in cache. PyTorch exposes these kernels as ``torch.ops.mkldnn`` operators (the
ones ``torch.compile`` emits on a CPU); these helpers call them where they can run and
fall back to the plain functions elsewhere (GPU, autocast, other dtypes, a build
without oneDNN), so callers need no branch of their own.

The results differ from the plain functions in the last bits only (a different
summation order); the encoder tests bound the difference.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_HAVE_LINEAR = (torch.backends.mkldnn.is_available()
                and hasattr(torch.ops.mkldnn, "_linear_pointwise"))
_HAVE_CONV = (torch.backends.mkldnn.is_available()
              and hasattr(torch.ops.mkldnn, "_convolution_pointwise"))


def applies(x: torch.Tensor) -> bool:
    """Whether oneDNN's fused kernels run for ``x``: float32 on the CPU, no autocast,
    and not while ``torch.compile`` traces (inductor makes these fusions itself, and
    rejects the operators when their weights are not frozen constants)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling())


def is_erf_gelu(module) -> bool:
    """Whether ``module`` is the GELU these helpers apply (erf, not the tanh
    approximation): a fusion may replace only that one."""
    return isinstance(module, torch.nn.GELU) and module.approximate == "none"


def _unary(gelu: bool) -> tuple:
    """oneDNN's post-op arguments (attr, scalars, algorithm): erf-GELU, or none."""
    return ("gelu", [None], "none") if gelu else ("none", [], "")


def linear(layer: torch.nn.Linear, x: torch.Tensor, gelu: bool = False) -> torch.Tensor:
    """``layer(x)`` (then erf-GELU when ``gelu``), through oneDNN where it can run.

    oneDNN's linear adds the bias and applies GELU inside the matrix product, where
    PyTorch's CPU ``addmm`` first copies the bias into the output and GELU reads it all
    back, an extra pass over memory that costs vit_b's MLPs a noticeable share of an
    image's encoding time on a CPU.
    """
    if _HAVE_LINEAR and applies(x):
        return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, *_unary(gelu))
    y = F.linear(x, layer.weight, layer.bias)
    return F.gelu(y) if gelu else y


def conv2d(layer: torch.nn.Conv2d, x: torch.Tensor, gelu: bool = False,
           add: torch.Tensor | None = None) -> torch.Tensor:
    """``layer(x)``, then ``+ add`` when given, then erf-GELU when ``gelu``: one oneDNN
    call where it can run (with ``add``, GELU follows in place: oneDNN fuses only ReLU
    after a sum).

    On LiteMedSAM's 1 x 1 expansion (64 to 256 channels at 256 x 256) the one call takes
    about half the time of a convolution followed by a GELU. ``x`` in
    ``channels_last`` avoids a reorder; ``add`` must have the output's shape.
    """
    if _HAVE_CONV and applies(x) and layer.padding_mode == "zeros" \
            and not isinstance(layer.padding, str):
        geometry = (list(layer.padding), list(layer.stride), list(layer.dilation), layer.groups)
        if add is None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, layer.weight, layer.bias, *geometry, *_unary(gelu))
        y = torch.ops.mkldnn._convolution_pointwise.binary(
            x, add, layer.weight, layer.bias, *geometry, "add", None, None, [], None)
        return torch.ops.aten.gelu_(y) if gelu else y
    y = layer(x)
    if add is not None:
        y = y + add
    return F.gelu(y) if gelu else y
