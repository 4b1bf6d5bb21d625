"""``selfprompt.models.onednn``: a layer and the steps after it in one oneDNN call compute what
the plain functions compute, to rounding, and fall back to them where oneDNN cannot run."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import selfprompt.models.onednn as onednn

# (in, out, kernel, stride, padding, groups): LiteMedSAM's kinds of convolution
CONVS = [(8, 32, 1, 1, 0, 1),       # MBConv's expansion
         (32, 32, 3, 1, 1, 32),     # its depthwise 3 x 3
         (32, 8, 1, 1, 0, 1),       # its projection (with the residual added)
         (16, 16, 3, 2, 1, 16)]     # PatchMerging's strided depthwise


@pytest.fixture(params=[True, False], ids=["onednn", "fallback"])
def route(request, monkeypatch):
    """Both routes: oneDNN's kernels (where this build has them) and the plain functions."""
    monkeypatch.setattr(onednn, "_HAVE_LINEAR", request.param and onednn._HAVE_LINEAR)
    monkeypatch.setattr(onednn, "_HAVE_CONV", request.param and onednn._HAVE_CONV)
    return request.param


@pytest.mark.parametrize("gelu", [False, True])
def test_linear_equals_torchs_linear_and_gelu(route, gelu):
    torch.manual_seed(1)
    layer = torch.nn.Linear(48, 96)
    x = torch.randn(2, 7, 5, 48)                          # any leading shape, as SAM's
    with torch.inference_mode():
        ref = F.linear(x, layer.weight, layer.bias)
        ref = F.gelu(ref) if gelu else ref
        got = onednn.linear(layer, x, gelu=gelu)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", CONVS, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("gelu", [False, True])
@pytest.mark.parametrize("residual", [False, True])
def test_conv2d_equals_torchs_conv_add_and_gelu(route, shape, gelu, residual):
    c_in, c_out, kernel, stride, padding, groups = shape
    torch.manual_seed(2)
    layer = torch.nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups).eval()
    layer = layer.to(memory_format=torch.channels_last)
    x = torch.randn(2, c_in, 17, 12).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = layer(x)
        add = torch.randn_like(ref) if residual else None
        if residual:
            ref = ref + add
        ref = F.gelu(ref) if gelu else ref
        kept = add.clone() if residual else None
        got = onednn.conv2d(layer, x, gelu=gelu, add=add)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    if residual:
        assert torch.equal(add, kept)                     # the residual is read, not written


def test_plain_functions_where_onednn_cannot_run():
    """float64, and autocast, take the plain route: the same values as torch's own."""
    torch.manual_seed(3)
    layer = torch.nn.Conv2d(4, 6, 3, padding=1).double().eval()
    x = torch.randn(1, 4, 9, 9, dtype=torch.float64)
    assert not onednn.applies(x)
    with torch.inference_mode():
        assert torch.equal(onednn.conv2d(layer, x, gelu=True), F.gelu(layer(x)))
        lin = torch.nn.Linear(9, 5).double()
        assert torch.equal(onednn.linear(lin, x, gelu=True), F.gelu(lin(x)))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not onednn.applies(x.float())


def test_torch_compile_traces_the_plain_route():
    """Under ``torch.compile`` the helpers hand the compiler the plain functions, which
    inductor fuses itself (given oneDNN's operators with unfrozen weights, it fails to
    lower them). A recording backend shows the traced graph; it needs no C++ compiler."""
    torch.manual_seed(4)
    layer = torch.nn.Linear(16, 32)
    conv = torch.nn.Conv2d(4, 8, 3, padding=1).eval()
    x, y = torch.randn(3, 16), torch.randn(1, 4, 8, 8)
    traced = []

    def recording(graph, example_inputs):
        traced.extend(str(node.target) for node in graph.graph.nodes
                      if node.op == "call_function")
        return graph.forward

    torch._dynamo.reset()
    with torch.inference_mode():
        both = torch.compile(lambda x, y: (onednn.linear(layer, x, gelu=True),
                                           onednn.conv2d(conv, y, gelu=True)),
                             backend=recording, fullgraph=True)
        got_linear, got_conv = both(x, y)
        torch.testing.assert_close(got_linear, F.gelu(layer(x)), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got_conv, F.gelu(conv(y)), atol=1e-5, rtol=1e-5)
    assert traced and any("linear" in t for t in traced) and any("conv2d" in t for t in traced)
    assert not any("mkldnn" in t for t in traced)
