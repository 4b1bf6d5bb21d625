"""Several prompts of one image through SAM's mask decoder in one call, with the work
that does not depend on the prompt done once.

Why: a sweep decodes three prompts per test image (point, box, point + box), and after
the embeddings are cached decoding is ~90 % of its time. SAM's own code runs one
prompt per call and recomputes everything for each. This module runs the same weights
through the same arithmetic, reorganised, and is about twice as fast on a CPU
(``make bench`` section 5 measures it against SAM's calls; benchmarks/README.md):

* **one call for all prompts.** SAM cannot batch them because they have different
  numbers of tokens (a point alone is padded with SAM's "not a point" token to 2, a box
  is 2 corners, a point and a box 3) and its attention has no mask. Here the shorter
  prompts are filled up with *masked* tokens: a filler's attention weight is exactly 0,
  so every real token and every image token sees what it sees in SAM's own call.
* **the image is shared until it differs.** In the first block the image tokens are
  the same for every prompt, so their key, value and query projections are computed
  once, not once per prompt.
* **tokens attend to the image without projecting it.** A token's score against image
  cell x is ``q . (W_k x + b_k)`` = ``(W_k^T q) . x`` + a constant that softmax drops,
  and its output ``sum_n a_n (W_v x_n + b_v)`` = ``W_v (sum_n a_n x_n) + b_v``. With a
  few tokens and 8 heads that is half the work of projecting 4096 cells, and in the
  last attention, where only the mask token is needed, a sixteenth. Where the image
  attends to the tokens, the same algebra moves both of its cell projections (queries,
  output) to the tokens' side.
* **the output upscaling is per-cell matrix products.** A 2 x 2 stride-2 transposed
  convolution maps each input cell to its own 2 x 2 output cells, so both of SAM's
  are matrix products over cells, LayerNorm2d a LayerNorm over the last axis, and the
  cells are put in place once, after the hypernetwork's product.
* **the image attends to the few tokens with softmax along the token axis** laid out
  so that it vectorises over the image cells.

All of it is exact algebra; the results equal SAM's per-prompt calls up to float
rounding (tests hold logits within 2e-4 and masks against ``SamPredictor.predict``).
``PromptDecoder(batched=False)`` keeps SAM's own calls, bit for bit.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

Prompt = tuple  #: (points (N, 2) | None, labels (N,) | None, box (4,) | None)


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    """``(b, n, c)`` -> ``(b, h, n, c / h)``, as SAM's ``_separate_heads``."""
    return x.unflatten(-1, (h, -1)).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """``(b, h, n, d)`` -> ``(b, n, h * d)``, as SAM's ``_recombine_heads``."""
    return x.transpose(1, 2).flatten(2)


def _self_attention(layer, q: torch.Tensor, v: torch.Tensor,
                    key_bias: torch.Tensor) -> torch.Tensor:
    """SAM's ``Attention`` over the tokens (queries and keys ``q``, values ``v``), the
    fillers masked as keys by ``key_bias`` (0 real, -inf filler)."""
    h = layer.num_heads
    qh, kh, vh = (_heads(layer.q_proj(q), h), _heads(layer.k_proj(q), h),
                  _heads(layer.v_proj(v), h))
    attn = (qh * (1 / math.sqrt(qh.shape[-1]))) @ kh.transpose(-1, -2)
    attn = torch.softmax(attn + key_bias[:, None, None, :], dim=-1)
    return layer.out_proj(_merge(attn @ vh))


def _tokens_to_image(layer, q: torch.Tensor, image_k: torch.Tensor,
                     image_v: torch.Tensor) -> torch.Tensor:
    """SAM's token-to-image ``Attention``: tokens ``q (b, t, C)`` attend the image cells,
    keys ``image_k`` (cells + positional encoding) and values ``image_v``, each
    ``(1 or b, N, C)``. Takes whichever of two exact routes costs less: project the
    cells (``k_proj``, ``v_proj``: cost ~ image batch x internal width) or move the
    projections to the tokens' side (cost ~ b x heads x t)."""
    h = layer.num_heads
    qp = layer.q_proj(q)
    b, t, c = qp.shape
    d = c // h
    qh = _heads(qp, h) * (1 / math.sqrt(d))                        # (b, h, t, d)
    if b * h * t >= image_k.shape[0] * c:                         # project the cells
        kh, vh = _heads(layer.k_proj(image_k), h), _heads(layer.v_proj(image_v), h)
        if kh.shape[0] == 1 and b > 1:                            # one image, b prompts
            qh = qh.transpose(0, 1).reshape(1, h, b * t, d)
            out = torch.softmax(qh @ kh.transpose(-1, -2), dim=-1) @ vh
            out = out.reshape(h, b, t, d).transpose(0, 1)
        else:
            out = torch.softmax(qh @ kh.transpose(-1, -2), dim=-1) @ vh
        return layer.out_proj(_merge(out))
    w_k = layer.k_proj.weight.view(h, d, -1)                       # (h, d, C)
    qk = (qh @ w_k).reshape(b, h * t, -1)                          # W_k^T q: (b, h*t, C)
    attn = torch.softmax(qk @ image_k.transpose(1, 2), dim=-1)     # (b, h*t, N)
    ax = (attn @ image_v).view(b, h, t, -1)                        # sum_n a_n x_n
    w_v = layer.v_proj.weight.view(h, d, -1)
    out = ax @ w_v.transpose(1, 2) + layer.v_proj.bias.view(h, 1, d)
    return layer.out_proj(_merge(out))


def _image_to_tokens(layer, image_q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     key_bias: torch.Tensor) -> torch.Tensor:
    """SAM's image-to-token ``Attention``: image cells ``image_q (1 or b, N, C)`` attend
    the tokens ``k``, ``v (b, t, C)``, fillers masked. Scores are laid out tokens by
    cells, so the softmax over the few tokens runs along an axis of 4096 cells.

    With ``h * t`` below the internal width both projections of the cells move to the
    tokens' side: a score ``k . (W_q x + b_q)`` is ``(W_q^T k) . x + k . b_q`` (the
    second term differs by token, so it stays), and the output ``W_o [sum_t a_t v_t] +
    b_o`` is ``sum_t a_t (W_o v_t) + b_o`` per head. The queries are projected all the
    same when one image serves every prompt and that costs less (the first block)."""
    h = layer.num_heads
    kp, vh = layer.k_proj(k), _heads(layer.v_proj(v), h)          # (b, t, c), (b, h, t, d)
    b, t, c = kp.shape
    d = c // h
    kh = _heads(kp, h) * (1 / math.sqrt(d))                        # (b, h, t, d)
    bias = key_bias[:, None, :, None]
    if h * t >= c:                                                 # SAM's own order
        qh = _heads(layer.q_proj(image_q), h)                      # (1 or b, h, N, d)
        attn = torch.softmax(kh @ qh.transpose(-1, -2) + bias, dim=-2)   # (b, h, t, N)
        return layer.out_proj(_merge(attn.transpose(-1, -2) @ vh))
    if image_q.shape[0] * c <= b * h * t:                          # project the shared cells
        qh = _heads(layer.q_proj(image_q), h)
        scores = kh @ qh.transpose(-1, -2)                         # (b, h, t, N)
    else:                                                          # W_q^T k: (b, h*t, C)
        w_q = layer.q_proj.weight.view(h, d, -1)
        qk = (kh @ w_q).reshape(b, h * t, -1)
        const = (kh * layer.q_proj.bias.view(h, 1, d)).sum(-1).reshape(b, h * t, 1)
        scores = (qk @ image_q.transpose(1, 2) + const).view(b, h, t, -1)
    attn = torch.softmax(scores + bias, dim=-2).view(b, h * t, -1)    # (b, h*t, N)
    w_o = layer.out_proj.weight.view(-1, h, d).transpose(0, 1)        # (h, C, d)
    u = (vh @ w_o.transpose(1, 2)).reshape(b, h * t, -1)              # W_o v: (b, h*t, C)
    return torch.baddbmm(layer.out_proj.bias, attn.transpose(1, 2), u)


def _two_way(transformer, image: torch.Tensor, image_pe: torch.Tensor,
             tokens: torch.Tensor, key_bias: torch.Tensor):
    """``TwoWayTransformer.forward`` for b prompts of one image: ``image``, ``image_pe``
    ``(1, N, C)``, ``tokens (b, t, C)``. Returns the mask token's output ``(b, 1, C)``
    (the only one a single-mask prediction reads), the image cells ``(b, N, C)``, and
    the tokens before the final attention with their positional term (``queries``,
    ``query_pe``: :func:`_iou_token` reads the IoU token from them)."""
    keys, key_pe = image, image_pe
    queries, query_pe = tokens, tokens
    for block in transformer.layers:
        if block.skip_first_layer_pe:
            queries = _self_attention(block.self_attn, queries, queries, key_bias)
        else:
            q = queries + query_pe
            queries = queries + _self_attention(block.self_attn, q, queries, key_bias)
        queries = block.norm1(queries)
        k = keys + key_pe
        queries = block.norm2(queries + _tokens_to_image(
            block.cross_attn_token_to_image, queries + query_pe, k, keys))
        queries = block.norm3(queries + block.mlp(queries))
        keys = block.norm4(keys + _image_to_tokens(
            block.cross_attn_image_to_token, k, queries + query_pe, queries, key_bias))
    mask_token = queries[:, 1:2]                     # after the IoU token: mask token 0
    attended = _tokens_to_image(transformer.final_attn_token_to_image,
                                mask_token + query_pe[:, 1:2], keys + key_pe, keys)
    return transformer.norm_final_attn(mask_token + attended), keys, queries, query_pe


def _iou_token(transformer, queries: torch.Tensor, query_pe: torch.Tensor,
               image: torch.Tensor, image_pe: torch.Tensor) -> torch.Tensor:
    """The IoU token's output ``(b, C)`` after the final attention: the same step as the
    mask token's, for token 0 (each token attends to the image on its own, so doing it
    apart leaves the mask token's arithmetic exactly as it was)."""
    iou_token = queries[:, 0:1]
    attended = _tokens_to_image(transformer.final_attn_token_to_image,
                                iou_token + query_pe[:, 0:1], image + image_pe, image)
    return transformer.norm_final_attn(iou_token + attended)[:, 0]


def _low_res_logits(decoder, image: torch.Tensor, hyper: torch.Tensor,
                    h: int, w: int) -> torch.Tensor:
    """SAM's ``output_upscaling`` (transposed conv, LayerNorm2d, GELU, transposed conv,
    GELU) and the hypernetwork's product with it: ``image (b, h*w, C)``, ``hyper
    (b, C')`` -> logits ``(b, 1, 4h, 4w)``. Each transposed convolution is a matrix
    product over cells with the weight's output laid out (di, dj, channel)."""
    conv1, norm, act1, conv2, act2 = decoder.output_upscaling
    b, c1, c2 = image.shape[0], conv1.weight.shape[1], conv2.weight.shape[1]
    w1 = conv1.weight.permute(0, 2, 3, 1).reshape(conv1.weight.shape[0], 4 * c1)
    x = torch.addmm(conv1.bias.repeat(4), image.reshape(-1, image.shape[-1]), w1)
    x = act1(F.layer_norm(x.view(-1, c1), (c1,), norm.weight, norm.bias, norm.eps))
    w2 = conv2.weight.permute(0, 2, 3, 1).reshape(c1, 4 * c2)
    y = act2(torch.addmm(conv2.bias.repeat(4), x, w2)).view(b, -1, c2)
    low = (y @ hyper[:, :, None]).view(b, h, w, 2, 2, 2, 2)       # cell, (di1, dj1), (di2, dj2)
    return low.permute(0, 1, 3, 5, 2, 4, 6).reshape(b, 1, 4 * h, 4 * w)


def _prompt_tokens(predictor,
                   prompts: list[Prompt]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SAM's prompt encoder on each prompt; the sparse embeddings filled up to the
    longest with masked tokens: ``tokens (b, t, C)``, ``key_bias (b, t)`` (0 for a
    real token, -inf for a filler), and the dense (no-mask) embedding."""
    pe, dev = predictor.model.prompt_encoder, predictor.device
    sparse, dense = [], None
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
    return tokens, bias, dense


@torch.no_grad()
def decode_batch(predictor, prompts: list[Prompt], return_logits: bool = False,
                 return_iou: bool = False):
    """Single-mask prediction (``multimask_output=False``) for each prompt of the image
    the ``SamPredictor`` holds, in one decoder call: ``bool (H, W)`` masks, in order
    (and, with ``return_logits``, SAM's ``(n, 256, 256)`` low-resolution logits; with
    ``return_iou``, SAM's predicted IoU of each mask ``(n,)``, last). The masks are the
    same either way: the IoU token is carried through the final attention apart.

    Each prompt needs a point or a box (an unprompted call has no tokens to batch)."""
    sam = predictor.model
    dec = sam.mask_decoder
    tokens, bias, dense = _prompt_tokens(predictor, prompts)
    out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
    head = out_tokens.shape[0]                        # 1 IoU + 4 mask tokens, never masked
    b = tokens.shape[0]
    tokens = torch.cat([out_tokens[None].expand(b, -1, -1), tokens], dim=1)
    bias = torch.cat([torch.zeros((b, head), device=bias.device), bias], dim=1)
    _, c, h, w = predictor.features.shape
    image = (predictor.features + dense[:1]).flatten(2).transpose(1, 2).contiguous()
    image_pe = sam.prompt_encoder.get_dense_pe().flatten(2).transpose(1, 2).contiguous()
    mask_token, image, queries, query_pe = _two_way(dec.transformer, image, image_pe,
                                                    tokens, bias)
    hyper = dec.output_hypernetworks_mlps[0](mask_token[:, 0])   # single mask: token 0
    low = _low_res_logits(dec, image, hyper, h, w)
    masks = sam.postprocess_masks(low, predictor.input_size, predictor.original_size)
    masks = list((masks > sam.mask_threshold)[:, 0].cpu().numpy())
    out = [masks] + ([low[:, 0].cpu().numpy()] if return_logits else [])
    if return_iou:   # single mask: the IoU head's first output, as MaskDecoder keeps it
        iou = dec.iou_prediction_head(_iou_token(dec.transformer, queries, query_pe, image,
                                                 image_pe))[:, 0]
        out.append(iou.cpu().numpy())
    return tuple(out) if len(out) > 1 else masks
