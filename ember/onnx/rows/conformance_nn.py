"""Conformance rows: losses, normalizations, attention, Lp pooling, quantization.

Fallback rows (see conformance_common.py): a row in nn.py for the same op wins. Losses,
normalizations and attention are composed from ember ops (they keep their gradient); the index
and mask bookkeeping around them is computed on arrays.
"""

import numpy

import ember
from ember.onnx import table
from ember.onnx.rows import conformance_common as K

# ---- losses -----------------------------------------------------------------------------------


def _nll(node, logp, target, weight, reduction, ignore_index):
    t = K.arr(target).astype(numpy.int64)
    ignored = (t == ignore_index) if ignore_index is not None else numpy.zeros(t.shape, bool)
    safe = numpy.where(ignored, 0, t)
    picked = ember.gather(logp, 1, K.wrap(numpy.expand_dims(safe, 1))).squeeze(1)
    dtype = K.arr(logp).dtype
    w = numpy.ones(t.shape, dtype) if weight is None else K.arr(weight)[safe].astype(dtype)
    w = numpy.where(ignored, 0, w).astype(dtype)
    loss = -picked * K.wrap(w)
    how = K.text(reduction)
    if how == "none":
        return loss
    if how == "sum":
        return loss.sum()
    if how == "mean":
        return loss.sum() / K.wrap(numpy.asarray(w.sum(), dtype))
    K.fail(node, f"reduction={how!r} is not one of 'none', 'sum', 'mean'")


def _load_nll(ctx, node, x, target, weight=None, reduction="mean", ignore_index=None):
    return _nll(node, x, target, weight, reduction, ignore_index)


def _load_sce(ctx, node, scores, labels, weights=None, reduction="mean", ignore_index=None):
    logp = ember.log_softmax(scores, dim=1)
    return _nll(node, logp, labels, weights, reduction, ignore_index), logp


# ---- normalizations ---------------------------------------------------------------------------


def _load_rms_norm(ctx, node, x, scale, axis=-1, epsilon=1e-5, stash_type=1):
    dims = tuple(range(axis % x.ndim, x.ndim))
    ms = (x * x).mean(dim=dims, keepdim=True)
    return x / ember.sqrt(ms + epsilon) * scale


def _load_group_norm(ctx, node, x, scale, bias, epsilon=1e-5, num_groups=1, stash_type=1):
    n, c = x.shape[:2]
    g = x.reshape(n, num_groups, -1)
    mean = g.mean(dim=2, keepdim=True)
    var = ((g - mean) * (g - mean)).mean(dim=2, keepdim=True)
    y = ((g - mean) / ember.sqrt(var + epsilon)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    if scale.numel() != c:  # opset 18: one scale and bias per group
        scale = scale.repeat_interleave(c // num_groups) if hasattr(scale, "repeat_interleave") \
            else K.wrap(numpy.repeat(K.arr(scale), c // num_groups))
        bias = K.wrap(numpy.repeat(K.arr(bias), c // num_groups))
    return y * scale.reshape(shape) + bias.reshape(shape)


# ---- Lp pooling (on arrays: a sliding-window view over the padded input) -----------------------


def _window_pads(node, shape, kernel, strides, dilations, pads, auto_pad, ceil_mode):
    nd = len(kernel)
    auto = K.text(auto_pad)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
        for i in range(nd):
            out = -(-shape[i] // strides[i])
            span = (kernel[i] - 1) * dilations[i] + 1
            total = max(0, (out - 1) * strides[i] + span - shape[i])
            small, big = total // 2, total - total // 2
            pads[i], pads[i + nd] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    pads = list(pads or [0] * (2 * nd))
    if ceil_mode:
        for i in range(nd):
            span = (kernel[i] - 1) * dilations[i] + 1
            size = shape[i] + pads[i] + pads[i + nd] - span
            pads[i + nd] += (-size) % strides[i]
    return pads


def _load_lp_pool(ctx, node, x, kernel_shape, p=2, strides=None, dilations=None, pads=None,
                  auto_pad="NOTSET", ceil_mode=0):
    a = K.arr(x)
    nd = len(kernel_shape)
    strides = strides or [1] * nd
    dilations = dilations or [1] * nd
    pads = _window_pads(node, a.shape[2:], kernel_shape, strides, dilations, pads, auto_pad,
                        ceil_mode)
    padded = numpy.pad(a, [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)])
    spans = [(k - 1) * d + 1 for k, d in zip(kernel_shape, dilations)]
    view = numpy.lib.stride_tricks.sliding_window_view(padded, spans, axis=tuple(
        range(2, 2 + nd)))
    view = view[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)]
    view = view[(Ellipsis,) + tuple(slice(None, None, d) for d in dilations)]
    axes = tuple(range(-nd, 0))
    out = numpy.power(numpy.power(numpy.abs(view), p).sum(axis=axes), 1.0 / p)
    return K.wrap(out.astype(a.dtype))


def _load_global_lp_pool(ctx, node, x, p=2):
    a = K.arr(x)
    axes = tuple(range(2, a.ndim))
    out = numpy.power(numpy.power(numpy.abs(a), p).sum(axis=axes, keepdims=True), 1.0 / p)
    return K.wrap(out.astype(a.dtype))


# ---- attention (opset 23) -----------------------------------------------------------------------


def _load_attention(ctx, node, q, k, v, attn_mask=None, past_key=None, past_value=None,
                    nonpad_kv_seqlen=None, scale=None, is_causal=0, q_num_heads=None,
                    kv_num_heads=None, softmax_precision=None, softcap=0.0,
                    qk_matmul_output_mode=0, left_window_size=-1, right_window_size=-1):
    three_d = q.ndim == 3
    if three_d:
        if not q_num_heads or not kv_num_heads:
            K.fail(node, "3-D inputs need the q_num_heads and kv_num_heads attributes")
        b = q.shape[0]
        q = q.reshape(b, q.shape[1], q_num_heads, -1).permute(0, 2, 1, 3)
        k = k.reshape(b, k.shape[1], kv_num_heads, -1).permute(0, 2, 1, 3)
        v = v.reshape(b, v.shape[1], kv_num_heads, -1).permute(0, 2, 1, 3)
    if past_key is not None:
        k = ember.cat([past_key, k], dim=2)
        v = ember.cat([past_value, v], dim=2)
    present_k, present_v = k, v
    dtype = K.arr(q).dtype
    lq, lk = q.shape[2], k.shape[2]
    bias = _attention_bias(attn_mask, is_causal, past_key, nonpad_kv_seqlen, lq, lk, dtype,
                           (left_window_size, right_window_size))
    hq, hk = q.shape[1], k.shape[1]
    if hq != hk:  # grouped-query attention: each key/value head serves hq // hk query heads
        reps = hq // hk
        k = k.unsqueeze(2).expand(k.shape[0], hk, reps, lk, k.shape[3]).reshape(
            k.shape[0], hq, lk, k.shape[3])
        v = v.unsqueeze(2).expand(v.shape[0], hk, reps, lk, v.shape[3]).reshape(
            v.shape[0], hq, lk, v.shape[3])
    s = numpy.sqrt(scale if scale is not None else 1.0 / numpy.sqrt(q.shape[3]))
    scores = ember.matmul(q * float(s), k.transpose(-1, -2) * float(s))
    if softcap:
        scores = ember.tanh(scores / softcap) * softcap
    qk = scores
    scores = scores + K.wrap(bias)
    if qk_matmul_output_mode == 2:
        qk = scores
    probs = ember.softmax(scores, dim=-1)
    all_masked = numpy.isneginf(bias.max(axis=-1, keepdims=True)) if bias.size else \
        numpy.zeros((1, 1), bool)
    probs = ember.where(K.wrap(all_masked), ember.zeros_like(probs), probs)
    if qk_matmul_output_mode == 3:
        qk = probs
    y = ember.matmul(probs, v)
    if three_d:
        y = y.permute(0, 2, 1, 3).reshape(y.shape[0], lq, -1)
    return y, present_k, present_v, qk


def _attention_bias(mask, is_causal, past_key, nonpad, lq, lk, dtype, window=(-1, -1)):
    """The additive bias (0 or -inf, or the float mask) that masking and causality ask for."""
    bias = numpy.zeros((lq, lk), dtype)
    m = None if mask is None else K.arr(mask)
    if m is not None and m.shape[-1] < lk:
        pad = [(0, 0)] * (m.ndim - 1) + [(0, lk - m.shape[-1])]
        m = numpy.pad(m, pad, constant_values=False if m.dtype == bool else -numpy.inf)
    if m is not None:
        m = numpy.where(m, 0, -numpy.inf).astype(dtype) if m.dtype == bool else m.astype(dtype)
        bias = bias + m
    i = numpy.arange(lq).reshape(-1, 1)
    j = numpy.arange(lk).reshape(1, -1)
    if nonpad is not None and past_key is None:
        offset = K.arr(nonpad).reshape(-1, 1, 1, 1) - lq
    else:
        offset = past_key.shape[2] if past_key is not None else 0
    if is_causal:  # query i sees keys up to its own position (after any cached ones)
        bias = bias + numpy.where(j <= i + offset, 0, -numpy.inf).astype(dtype)
    left, right = window
    if left >= 0 or right >= 0:  # a sliding window around each query's position
        diff = i + offset - j
        allowed = numpy.ones(numpy.shape(diff), bool)
        if left >= 0:
            allowed &= diff <= left
        if right >= 0:
            allowed &= -diff <= right
        bias = bias + numpy.where(allowed, 0, -numpy.inf).astype(dtype)
    if nonpad is not None:
        lens = K.arr(nonpad).reshape(-1, 1, 1, 1)
        bias = bias + numpy.where(numpy.arange(lk) < lens, 0, -numpy.inf).astype(dtype)
    return bias


# ---- quantization -------------------------------------------------------------------------------


def _q_dtype(zero_point, output_dtype):
    from onnx import helper  # noqa: PLC0415

    if output_dtype:
        return numpy.dtype(helper.tensor_dtype_to_np_dtype(output_dtype))
    return numpy.dtype(numpy.uint8) if zero_point is None else zero_point.dtype


def _broadcast_param(p, x, axis, block_size):
    """A scale or zero point shaped to broadcast against ``x`` (per tensor, axis or block)."""
    if p is None or p.ndim == 0 or p.size == 1:
        return None if p is None else p.reshape(())
    ax = axis % x.ndim
    if block_size:
        return numpy.repeat(p, block_size, axis=ax)[tuple(
            slice(0, n) for n in x.shape)]
    return p.reshape([-1 if i == ax else 1 for i in range(x.ndim)])


def _int_range(dtype):
    import ml_dtypes  # noqa: PLC0415  (onnx's own dependency, for int4/uint4/int2)

    info = ml_dtypes.iinfo(dtype) if dtype.kind == "V" else numpy.iinfo(dtype)
    return int(info.min), int(info.max)


def _quantize(node, x, scale, zero_point=None, axis=1, block_size=0, saturate=1,
              output_dtype=0, precision=0):
    dt = _q_dtype(zero_point, output_dtype)
    s = _broadcast_param(scale, x, axis, block_size)
    zp = _broadcast_param(zero_point, x, axis, block_size)
    y = x.astype(numpy.float32) / s.astype(numpy.float32)
    is_float8 = dt.kind == "V" and "float" in dt.name
    if is_float8:
        if zp is not None:
            y = y + zp.astype(numpy.float32)
        if saturate:
            import ml_dtypes  # noqa: PLC0415

            big = float(ml_dtypes.finfo(dt).max)
            y = numpy.where(numpy.isinf(y), y, numpy.clip(y, -big, big))
        return y.astype(dt)
    y = numpy.rint(y)
    if zp is not None:
        y = y + zp.astype(numpy.float32)
    lo, hi = _int_range(dt)
    return numpy.clip(y, lo, hi).astype(dt)


def _dequantize(node, x, scale, zero_point=None, axis=1, block_size=0, output_dtype=0):
    s = _broadcast_param(scale, x, axis, block_size)
    zp = _broadcast_param(zero_point, x, axis, block_size)
    xf = x.astype(numpy.float32)
    if zp is not None:
        xf = xf - zp.astype(numpy.float32)
    out_dt = s.dtype
    if output_dtype:
        from onnx import helper  # noqa: PLC0415

        out_dt = helper.tensor_dtype_to_np_dtype(output_dtype)
    return (xf * s.astype(numpy.float32)).astype(out_dt)


def _dynamic_quantize(node, x):
    lo = min(0.0, float(x.min()))
    hi = max(0.0, float(x.max()))
    scale = numpy.float32((hi - lo) / 255.0)
    zp = numpy.clip(numpy.rint(0 - lo / scale) if scale else 0, 0, 255)
    y = numpy.clip(numpy.rint(x / scale) + zp if scale else zp, 0, 255).astype(numpy.uint8)
    return y, numpy.asarray(scale, numpy.float32), numpy.asarray(zp, numpy.uint8)


K.register_array_ops({
    "QuantizeLinear": _quantize,
    "DequantizeLinear": _dequantize,
    "DynamicQuantizeLinear": _dynamic_quantize,
})

table.register(
    K.row("NegativeLogLikelihoodLoss", _load_nll),
    K.row("SoftmaxCrossEntropyLoss", _load_sce),
    K.row("RMSNormalization", _load_rms_norm),
    K.row("GroupNormalization", _load_group_norm),
    K.row("LpPool", _load_lp_pool),
    K.row("GlobalLpPool", _load_global_lp_pool),
    K.row("Attention", _load_attention),
)
