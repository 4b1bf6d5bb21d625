"""SAM's mask decoder with PerSAM's two hooks (target-guided attention and
target-semantic prompting), on the stock modules' weights: the forward
:mod:`selfprompt.methods.persam` decodes with, beside :mod:`.batchdecode`'s batched one."""
from __future__ import annotations

import math

import numpy as np
import torch


def _attend(layer, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
            bias: torch.Tensor | None) -> torch.Tensor:
    """SAM's ``Attention`` module on ``(q, k, v)``; with ``bias`` (broadcast over batch,
    heads and tokens, one value per key) PerSAM's guidance: its softmax weights plus the
    bias, normalised by a second softmax."""
    if bias is None:
        return layer(q=q, k=k, v=v)
    h = layer.num_heads

    def heads(x):
        return x.unflatten(-1, (h, -1)).transpose(1, 2)

    qh, kh, vh = heads(layer.q_proj(q)), heads(layer.k_proj(k)), heads(layer.v_proj(v))
    weights = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(qh.shape[-1]), dim=-1)
    weights = torch.softmax(weights + bias, dim=-1)
    return layer.out_proj((weights @ vh).transpose(1, 2).flatten(2))


def _block(block, queries, keys, query_pe, key_pe, bias):
    """One of SAM's ``TwoWayAttentionBlock``: tokens attend to themselves, to the image
    (where the bias acts), pass their MLP, and the image attends to the tokens."""
    if block.skip_first_layer_pe:
        queries = block.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + query_pe
        queries = queries + block.self_attn(q=q, k=q, v=queries)
    queries = block.norm1(queries)
    k = keys + key_pe
    queries = block.norm2(queries + _attend(block.cross_attn_token_to_image,
                                            queries + query_pe, k, keys, bias))
    queries = block.norm3(queries + block.mlp(queries))
    attended = block.cross_attn_image_to_token(q=k, k=queries + query_pe, v=queries)
    return queries, block.norm4(keys + attended)


def guided_decode(mask_decoder, image: torch.Tensor, image_pe: torch.Tensor,
                  sparse: torch.Tensor, dense: torch.Tensor, bias: torch.Tensor | None = None,
                  target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's mask decoder with PerSAM's two hooks; the stock modules' weights throughout.

    ``image`` ``(1, C, h, w)``, ``image_pe`` the prompt encoder's dense positional
    encoding, ``sparse`` ``(b, t, C)`` and ``dense`` ``(b, C, h, w)`` its prompt
    embeddings. ``bias`` ``(h * w,)``: added to the token-to-image attention weights of
    each two-way block; ``target`` ``(C,)``: added to the tokens before each block and
    the final attention. Returns the logits of all ``1 + num_multimask`` mask tokens
    ``(b, n, 4h, 4w)`` and their IoU scores ``(b, n)``, as ``MaskDecoder.predict_masks``.

    The target also enters the tokens' positional term: in the authors' transformer
    the first addition is in place on the tensor that is also the positional term, so
    that is what their numbers were computed with, and what this reproduces.
    """
    dec, tf = mask_decoder, mask_decoder.transformer
    b = sparse.shape[0]
    heads = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
    tokens = torch.cat([heads[None].expand(b, -1, -1), sparse], dim=1)
    src = torch.repeat_interleave(image, b, dim=0) + dense
    _, c, h, w = src.shape
    keys = src.flatten(2).transpose(1, 2)
    key_pe = torch.repeat_interleave(image_pe, b, dim=0).flatten(2).transpose(1, 2)
    if bias is not None:
        bias = bias.reshape(1, 1, 1, h * w).to(src)
    query_pe, queries = tokens, tokens
    if target is not None:
        target = target.reshape(1, 1, -1).to(src)
        query_pe = tokens + target
    for block in tf.layers:
        if target is not None:
            queries = queries + target
        queries, keys = _block(block, queries, keys, query_pe, key_pe, bias)
    q = queries + query_pe
    if target is not None:
        q = q + target
    queries = tf.norm_final_attn(queries + tf.final_attn_token_to_image(
        q=q, k=keys + key_pe, v=keys))
    n = dec.num_mask_tokens
    upscaled = dec.output_upscaling(keys.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack([mlp(queries[:, 1 + i]) for i, mlp in
                         enumerate(dec.output_hypernetworks_mlps)], dim=1)     # (b, n, C')
    bu, cu, hu, wu = upscaled.shape
    logits = (hyper @ upscaled.view(bu, cu, hu * wu)).view(bu, n, hu, wu)
    return logits, dec.iou_prediction_head(queries[:, 0])


@torch.no_grad()
def decode(decoder, points=None, labels=None, box=None, mask_input=None,
           multimask: bool = True, bias: np.ndarray | None = None,
           target: np.ndarray | None = None):
    """One prompt on the image a :class:`~selfprompt.decode.PromptDecoder` holds, through
    :func:`guided_decode`: SAM's ``predict`` with PerSAM's hooks. Returns ``bool
    (n, H, W)`` masks, IoU scores ``(n,)`` and low-resolution logits ``(n, 256, 256)``
    (``n`` = 3 with ``multimask``, else 1), as ``SamPredictor.predict``."""
    p = decoder.predictor
    sam, dev = p.model, p.device
    pts = bx = msk = None
    if points is not None:
        coords = p.transform.apply_coords(np.asarray(points, np.float32), p.original_size)
        pts = (torch.as_tensor(coords, dtype=torch.float, device=dev)[None],
               torch.as_tensor(np.asarray(labels), dtype=torch.int, device=dev)[None])
    if box is not None:
        b = p.transform.apply_boxes(np.asarray(box, np.float32)[None], p.original_size)
        bx = torch.as_tensor(b, dtype=torch.float, device=dev)
    if mask_input is not None:
        msk = torch.as_tensor(np.asarray(mask_input, np.float32), device=dev)[None, None]
    sparse, dense = sam.prompt_encoder(points=pts, boxes=bx, masks=msk)
    as_t = (lambda a: None if a is None else torch.as_tensor(np.asarray(a, np.float32),
                                                             device=dev))
    low, iou = guided_decode(sam.mask_decoder, p.features, sam.prompt_encoder.get_dense_pe(),
                             sparse, dense, as_t(bias), as_t(target))
    pick = slice(1, None) if multimask else slice(0, 1)
    low, iou = low[:, pick], iou[:, pick]
    masks = sam.postprocess_masks(low, p.input_size, p.original_size) > sam.mask_threshold
    return masks[0].cpu().numpy(), iou[0].cpu().numpy(), low[0].cpu().numpy()
