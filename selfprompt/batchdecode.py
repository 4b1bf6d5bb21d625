"""Several prompts of one image through SAM's mask decoder in one call.

Why: a sweep decodes three prompts per test image (point, box, point + box). On a GPU
each of SAM's decoder calls is a few hundred small kernels, so three calls cost about
three times one: batching them is the way to a faster sweep there. SAM's own code
cannot batch them, because the prompts have different numbers of tokens (a point alone
is padded with SAM's "not a point" token to 2, a box is 2 corners, a point and a box
3), and its attention has no mask.

This module runs the same weights through the same computation with the shorter
prompts filled up to the longest by *masked* tokens: a filler is never attended to
(its attention weight is exactly 0), so every real token and every image token sees
what it sees in SAM's own call. The results equal SAM's per-prompt calls up to float
rounding (a test holds masks and logits against ``SamPredictor.predict``). SAM's own
padding token of a point-only prompt is a real token here too, as in SAM.

On a CPU the arithmetic is the same as three calls and the gain small (measured in
``make bench``); the kit batches by default only on CUDA, so the CPU results stay
bit-identical to SAM's own calls.
"""
from __future__ import annotations

import math

import numpy as np
import torch

Prompt = tuple  #: (points (N, 2) | None, labels (N,) | None, box (4,) | None)


def _attend(layer, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
            key_bias: torch.Tensor | None = None) -> torch.Tensor:
    """``segment_anything``'s ``Attention.forward`` with an additive bias on the keys
    (``0`` for a real token, ``-inf`` for a filler), same projections and scaling."""
    q, k, v = layer.q_proj(q), layer.k_proj(k), layer.v_proj(v)
    b, heads = q.shape[0], layer.num_heads
    q = q.reshape(b, q.shape[1], heads, -1).transpose(1, 2)
    k = k.reshape(b, k.shape[1], heads, -1).transpose(1, 2)
    v = v.reshape(b, v.shape[1], heads, -1).transpose(1, 2)
    attn = q @ k.permute(0, 1, 3, 2) / math.sqrt(q.shape[-1])
    if key_bias is not None:
        attn = attn + key_bias[:, None, None, :]
    out = torch.softmax(attn, dim=-1) @ v
    out = out.transpose(1, 2).reshape(b, -1, heads * out.shape[-1])
    return layer.out_proj(out)


def _two_way(transformer, image: torch.Tensor, image_pe: torch.Tensor,
             tokens: torch.Tensor, key_bias: torch.Tensor):
    """``TwoWayTransformer.forward`` with the fillers masked wherever tokens are keys
    (the tokens' self-attention and the image's attention to the tokens)."""
    keys = image.flatten(2).permute(0, 2, 1)
    key_pe = image_pe.flatten(2).permute(0, 2, 1)
    queries, query_pe = tokens, tokens
    for block in transformer.layers:
        if block.skip_first_layer_pe:
            queries = _attend(block.self_attn, queries, queries, queries, key_bias)
        else:
            q = queries + query_pe
            queries = queries + _attend(block.self_attn, q, q, queries, key_bias)
        queries = block.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = block.norm2(queries + _attend(block.cross_attn_token_to_image, q, k, keys))
        queries = block.norm3(queries + block.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = block.norm4(keys + _attend(block.cross_attn_image_to_token, k, q, queries,
                                          key_bias))
    q, k = queries + query_pe, keys + key_pe
    queries = transformer.norm_final_attn(
        queries + _attend(transformer.final_attn_token_to_image, q, k, keys))
    return queries, keys


@torch.no_grad()
def decode_batch(predictor, prompts: list[Prompt], return_logits: bool = False):
    """Single-mask prediction (``multimask_output=False``) for each prompt of the image
    the ``SamPredictor`` holds, in one decoder call: ``bool (H, W)`` masks, in order
    (and, with ``return_logits``, SAM's ``(n, 256, 256)`` low-resolution logits).

    Each prompt needs a point or a box (an unprompted call has no tokens to batch)."""
    sam = predictor.model
    pe, dev = sam.prompt_encoder, predictor.device
    sparse = []
    for points, labels, box in prompts:
        if points is None and box is None:
            raise ValueError("decode_batch: every prompt needs a point or a box")
        pts = None
        if points is not None:
            coords = predictor.transform.apply_coords(np.asarray(points, np.float32),
                                                      predictor.original_size)
            pts = (torch.as_tensor(coords, dtype=torch.float, device=dev)[None],
                   torch.as_tensor(np.asarray(labels), dtype=torch.int, device=dev)[None])
        boxes = None
        if box is not None:
            b = predictor.transform.apply_boxes(np.asarray(box, np.float32)[None],
                                                predictor.original_size)
            boxes = torch.as_tensor(b, dtype=torch.float, device=dev)
        s, dense = pe(points=pts, boxes=boxes, masks=None)
        sparse.append(s[0])
    n = max(len(s) for s in sparse)
    tokens = torch.zeros((len(sparse), n, sparse[0].shape[-1]), device=dev)
    bias = torch.full((len(sparse), n), float("-inf"), device=dev)
    for i, s in enumerate(sparse):
        tokens[i, :len(s)] = s
        bias[i, :len(s)] = 0.0
    dec = sam.mask_decoder
    out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
    head = out_tokens.shape[0]                        # 1 IoU + 4 mask tokens, never masked
    tokens = torch.cat([out_tokens[None].expand(len(sparse), -1, -1), tokens], dim=1)
    bias = torch.cat([torch.zeros((len(sparse), head), device=dev), bias], dim=1)
    src = predictor.features.expand(len(sparse), -1, -1, -1) + dense  # no mask: one dense
    pos = pe.get_dense_pe().expand(len(sparse), -1, -1, -1)
    b, c, h, w = src.shape
    hs, src = _two_way(dec.transformer, src, pos, tokens, bias)
    up = dec.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = dec.output_hypernetworks_mlps[0](hs[:, 1])  # single-mask output: token 0
    low = (hyper[:, None] @ up.flatten(2)).reshape(b, 1, *up.shape[-2:])
    masks = sam.postprocess_masks(low, predictor.input_size, predictor.original_size)
    masks = list((masks > sam.mask_threshold)[:, 0].cpu().numpy())
    return (masks, low[:, 0].cpu().numpy()) if return_logits else masks
