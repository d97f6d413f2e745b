"""Attention: scaled_dot_product_attention (SDPA) and multi_head_attention_forward.

SDPA is one fused node, ``_Attention``: scores, mask, softmax, dropout and the product with
``value`` run in place on one scores buffer (kept transposed, see the class), so a forward
makes two elementwise passes over it (exp, and a multiply by 1 / column sums) besides the
matrix products, plus two (max, subtract) when the scores are masked or could be large
enough for exp to overflow (_exp_is_safe), and one for a mask. nn.MultiheadAttention's
self-attention (query is key is value, packed weights) is one ``_SelfAttention`` node on the
packed projection: the same math on head views of it. The backward of both has two
branches:

- without ``create_graph`` it works on arrays (two products for the value/probability
  gradients, one pass for the softmax gradient, two products for query/key; see
  _backward_arrays), because the attention block is the hot spot of every Transformer;
- with ``create_graph`` it recomputes the probabilities with ember ops from the saved
  (graph-linked) query, key and mask, and writes the gradient with ember ops, so double
  backward is right by construction.

Masks follow PyTorch: in SDPA a bool mask is True where a query may attend; in
multi_head_attention_forward (as in nn.MultiheadAttention) a bool mask is True where it may
NOT. Float masks are added to the scores either way. A query row whose keys are all masked
gets zero probabilities (and a zero output and gradient), as PyTorch's SDPA does.
"""

import math

from ember import dtypes, errors, random
from ember.autograd import grad_mode
from ember.autograd.function import Function, _Tracing
from ember.backend import gemm
from ember.ops import index, linalg, reduce
from ember.ops import shape as shape_ops
from ember.ops import activation
from ember.tensor import Tensor

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]

_State = grad_mode._State
_shape_str = errors.shape_str


def _const(array):
    return Tensor._make(array, False, None, 0)


class _Attention(Function):
    """``softmax(q @ k^T * scale + mask) * keep @ v`` in one node.

    ``mask``: an additive float array/Tensor broadcastable to the scores, or None.
    ``keep``: the scaled dropout keep-mask, shaped like the transposed scores (..., S, L),
    or None. ``weights``: also return the probabilities (before dropout) as a second output.
    ``order``: memory order of the output's axes (a permutation), so that a caller that
    permutes the output next (multi-head attention merging its heads) gets a contiguous view.

    NOTE: the scores are kept transposed, (..., S, L): NumPy reduces over a short last axis
    3-4x slower than across rows (measured for (16, 4, 64, 64) float32: max 1.6 ms vs 0.47 ms),
    and the softmax needs up to two reductions forward. The matrix products take the
    transposes as strided views where a row-major copy does not pay (_scores_t).
    """

    @staticmethod
    def forward(ctx, q, k, v, mask, scale, keep, weights, order):
        o, st = _attend(ctx, ctx.xp, q, k, v, mask, scale, keep, order)
        ctx.save_for_backward(q, k, v, mask, st, o)
        if weights:
            return o, ctx.xp.swapaxes(st, -1, -2)
        return o

    @staticmethod
    def backward(ctx, go, gw=None):
        q, k, v, mask, pt, o = ctx.saved_tensors
        need_q, need_k, need_v, need_mask = ctx.needs_input_grad[:4]
        if not _State.enabled:
            return _backward_arrays(ctx, go._data, None if gw is None else gw._data,
                                    q._data, k._data, v._data, pt._data, o._data,
                                    need_q, need_k, need_v, need_mask)
        return _graph_grads(ctx, q, k, v, mask, go, gw, need_q, need_k, need_v, need_mask)


class _SelfAttention(Function):
    """Multi-head self-attention from the packed input projection ``qkv`` ((N, L, 3E) with
    ``batch_first``, else (L, N, 3E)) to the heads' merged output ((N, L, E) / (L, N, E)) in
    one node: the same math as _Attention on head views of ``qkv``, and the gradient of
    ``qkv`` is written by the three products straight into one (..., 3E) buffer.

    NOTE (measured, W5 shapes: (16, 64, 3 * 128), 4 heads; one thread, process CPU time,
    medians of 7 interleaved rounds): the general path (unbind of the projection, head views,
    _Attention) stacks the three gradients into a (N, L, 3E) copy in backward (_Unbind and
    _Stack ~0.29 ms per layer in a W5 step) and runs 6 more nodes each way;
    ``bench/attention_micro.py --threads 1 --clock cpu --repeats 7``, line "MHA f+b packed vs
    general path": 8.21 vs 9.42 ms and 6.27 vs 6.87 ms in two runs. Used only outside
    tracing: ONNX export, graphs and summary() see the general path's _Attention, which
    they know.
    Tried and dropped: running the batch in two parts on ember's two threads
    (threads.parallel, parts of >= 65536 scores): W5's attention alone f+b median 2.40 vs
    2.79 ms once, 3.13 vs 2.90 ms the next run; MultiheadAttention f+b medians 6.68-7.09 vs
    6.29-6.70 ms unsplit (wall clock, 20 interleaved rounds, two threads, shared machine).
    """

    @staticmethod
    def forward(ctx, qkv, mask, scale, keep, weights, heads, batch_first):
        xp = ctx.xp
        order = _merge_order(batch_first)
        q, k, v = _unpack_heads(qkv, heads, batch_first)
        o, st = _attend(ctx, xp, q, k, v, mask, scale, keep, order)
        ctx.heads, ctx.batch_first = heads, batch_first
        ctx.save_for_backward(qkv, mask, st, o)
        out = o.transpose(order)
        out = out.reshape(out.shape[:2] + (qkv.shape[-1] // 3,))
        if weights:
            return out, xp.swapaxes(st, -1, -2)
        return out

    @staticmethod
    def backward(ctx, go, gw=None):
        need_qkv, need_mask = ctx.needs_input_grad[:2]
        heads, batch_first = ctx.heads, ctx.batch_first
        order = _merge_order(batch_first)
        if not _State.enabled:
            qkv, _, pt, o = ctx.saved_arrays
            g = go._data
            g = g.reshape(g.shape[:2] + (heads, -1)).transpose(_split_order(batch_first))
            buf = ctx.xp.empty(qkv.shape, qkv.dtype) if need_qkv else None
            q, k, v = _unpack_heads(qkv, heads, batch_first)
            outs = None if buf is None else _unpack_heads(buf, heads, batch_first)
            gm = _backward_arrays(ctx, g, None if gw is None else gw._data, q, k, v, pt, o,
                                  need_qkv, need_qkv, need_qkv, need_mask, outs)[3]
            return (None if buf is None else _const(buf)), gm, None, None, None, None, None
        qkv, mask, _, _ = ctx.saved_tensors
        e = qkv.shape[-1] // 3
        lead = tuple(qkv.shape[:2])
        parts = shape_ops.unbind(shape_ops.reshape(qkv, lead + (3, heads, e // heads)), 2)
        q, k, v = (shape_ops.permute(t, _split_order(batch_first)) for t in parts)
        g = shape_ops.permute(shape_ops.reshape(go, lead + (heads, e // heads)),
                              _split_order(batch_first))
        gq, gk, gv, gm = _graph_grads(ctx, q, k, v, mask, g, gw, need_qkv, need_qkv, need_qkv,
                                      need_mask)[:4]
        gqkv = None
        if need_qkv:
            gqkv = shape_ops.stack([shape_ops.permute(t, order) for t in (gq, gk, gv)], 2)
            gqkv = shape_ops.reshape(gqkv, lead + (3 * e,))
        return gqkv, gm, None, None, None, None, None


def _split_order(batch_first):
    """The permutation from a (N, L, H, D) (batch_first) or (L, N, H, D) head view to
    (N, H, L, D)."""
    return (0, 2, 1, 3) if batch_first else (1, 2, 0, 3)


def _merge_order(batch_first):
    """Its inverse: (N, H, L, D) back to the input's layout."""
    return (0, 2, 1, 3) if batch_first else (2, 0, 1, 3)


def _unpack_heads(qkv, heads, batch_first):
    """Views (N, H, L, D) of the three thirds of a packed (N, L, 3E) / (L, N, 3E) array."""
    a, b, e3 = qkv.shape
    qkv = qkv.reshape(a, b, 3, heads, e3 // (3 * heads))
    perm = _split_order(batch_first)
    return tuple(qkv[:, :, i].transpose(perm) for i in range(3))


def _attend(ctx, xp, q, k, v, mask, scale, keep, order):
    """The forward of both attention nodes on arrays: returns the output (..., L, Ev), laid
    out in memory in ``order``, and the probabilities, transposed (..., S, L)."""
    st = _scores_t(xp, q, k, scale)
    if mask is not None:
        mt = _swap(xp, mask)
        if xp.broadcast_shapes(st.shape, mt.shape) == st.shape:
            st += mt
        else:
            st = st + mt
    stable = mask is None and _exp_is_safe(xp, st)
    empty = _softmax_cols_(xp, st, mask is not None, stable)
    pt = st if keep is None else st * keep
    o = _matmul_in_order(xp, xp.swapaxes(pt, -1, -2), v, order)
    ctx.order = order
    ctx.scale = scale
    ctx.keep = keep
    ctx.empty = empty
    return o, st


def _graph_grads(ctx, q, k, v, mask, go, gw, need_q, need_k, need_v, need_mask):
    """The create_graph backward: the same formulas with ember ops, on probabilities
    recomputed from the graph-linked inputs so that their dependence on q, k and mask is
    recorded."""
    p = _probabilities(q, k, mask, ctx.scale, ctx.empty)
    keep = None if ctx.keep is None else _const(ctx.keep).mT
    pd = p if keep is None else p * keep
    gv = linalg.matmul(pd.mT, go) if need_v else None
    gq = gk = gm = None
    if need_q or need_k or need_mask:
        gp = linalg.matmul(go, v.mT)
        if keep is not None:
            gp = gp * keep
        if gw is not None:
            gp = gp + gw
        gs = p * (gp - reduce.sum(gp * p, -1, True))
        gm = gs if need_mask else None
        if need_q or need_k:
            gs = gs * ctx.scale
            gq = linalg.matmul(gs, k) if need_q else None
            gk = linalg.matmul(gs.mT, q) if need_k else None
    return gq, gk, gv, gm, None, None, None, None


def _swap(xp, a):
    """``a`` (broadcastable to (..., L, S)) as a view broadcastable to (..., S, L)."""
    if a.ndim >= 2:
        return xp.swapaxes(a, -1, -2)
    return a.reshape(a.shape + (1,)) if a.ndim == 1 else a


def _matmul_in_order(xp, a, b, order, out=None):
    """``a @ b`` written into a buffer whose axes lie in memory in ``order`` (a permutation of
    the result's axes; None: row-major), so that permuting the result by ``order`` gives a
    contiguous array. Multi-head attention merges its heads that way, and its q, k and v are
    views of such a layout, so their gradients are made in it too: the permute and reshape
    that follow then need no copy (NOTE: three (N, L, E) copies less per backward in W5).
    ``out``: write into this view instead (a third of _SelfAttention's packed gradient)."""
    if out is not None:
        return gemm.matmul(a, b, out=out)
    shape = xp.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    if order is None or len(order) != len(shape):
        return gemm.matmul(a, b)
    buf = xp.empty(tuple(shape[i] for i in order), dtype=xp.result_type(a, b))
    inverse = [0] * len(order)
    for i, axis in enumerate(order):
        inverse[axis] = i
    return gemm.matmul(a, b, out=buf.transpose(inverse))


def _times_c(xp, a, b):
    """``a * b`` for a scalar ``b``, written C-contiguous whatever the layout of ``a`` (a
    transposed view). NOTE (measured with timeit, min of 3x300 calls, one thread, on W5's
    query heads as views of the packed projection, (16, 4, 32, 64) float32): a transposing
    copy then a contiguous scaling pass in place, 71-77 us, against 95-116 us for
    np.multiply(a, b, out=C-contiguous buffer): NumPy's strided multiply is slower than
    its strided copy."""
    if a.flags.c_contiguous:
        return xp.multiply(a, b)
    out = xp.ascontiguousarray(a)
    out *= b
    return out


def _scores_t(xp, q, k, scale):
    """The scaled scores, transposed: ``k @ (q * scale)^T`` of shape (..., S, L).

    NOTE: the scaled queries are written C-contiguous as (..., E, L): OpenBLAS runs these
    small per-head products about 2x faster on plain row-major operands than through a
    transposed view (W5's (16, 4, 64, 32) heads, one thread: 125 us vs 280-310 us; the copy
    of the queries costs ~20-70 us). When E >= S scaling the scores is cheaper than the copy.
    Tried and dropped (timeit, one thread, W5 heads): np.einsum for the batched product,
    3.4 ms against 129 us for matmul's per-matrix BLAS calls (there is no one larger
    product: the heads' products are blocks of a block-diagonal one); PyTorch's bmm on the
    same arrays takes 185 us, so NumPy's loop over BLAS calls is not what is slow here.
    """
    qt = xp.swapaxes(q, -1, -2)
    s = qt.dtype.type(scale)
    if q.shape[-1] < k.shape[-2]:
        return gemm.matmul(k, _times_c(xp, qt, s))
    st = gemm.matmul(k, qt)
    st *= s
    return st


def _exp_is_safe(xp, st):
    """Whether exp of the unmasked scores can be taken without subtracting their maximum.

    When every score lies within half the exponent range, exp neither overflows (nor does a
    column sum of S of them) nor underflows, and softmax is shift-invariant, so the result is
    the same within rounding. NOTE: saves the max pass and the subtraction over the
    (..., S, L) scores, ~230 us of ~1 ms in a W5 attention forward. NOTE (measured with
    timeit, min of 3x300 calls, one thread, W5's (16, 4, 64, 64) float32 scores): their
    max and min cost 41 us; the bound used before, scale * max|q_l| * max|k_s| from two
    einsum norms, cost 107 us on contiguous q, k and 167 us on MultiheadAttention's strided
    head views (and it accepts fewer cases: it bounds the scores from above)."""
    if st.size == 0 or st.dtype.kind != "f":
        return False
    info = xp.finfo(st.dtype)
    limit = 0.5 * min(math.log(float(info.max)) - math.log(st.shape[-2] + 1.0),
                      -math.log(float(info.tiny)))
    # NaN fails both comparisons and takes the shifted path, as before.
    return bool(-limit <= float(st.min())) and bool(float(st.max()) <= limit)


def _softmax_cols_(xp, st, masked, stable):
    """Softmax over axis -2 of ``st`` (the transposed scores), in place, shifted by each
    column's maximum unless ``stable`` (see _exp_is_safe). Returns a bool array (..., 1, L)
    marking the queries whose scores were all -inf (their weights are set to 0), or None
    when there are none."""
    empty = None
    if not stable:
        m = xp.max(st, axis=-2, keepdims=True)
        if masked:
            empty = xp.isneginf(m)
            if empty.any():
                m[empty] = 0
            else:
                empty = None
        st -= m
    xp.exp(st, out=st)
    # A product with a row of ones sums the columns 4-6x faster than sum(axis=-2) in NumPy.
    total = xp.matmul(xp.ones((1, st.shape[-2]), dtype=st.dtype), st)
    if empty is not None:
        total[empty] = 1
    # NOTE: a multiply by the reciprocal: ~80 us vs ~110 us for the division (W5 scores).
    st *= xp.reciprocal(total, out=total)
    return empty


def _backward_arrays(ctx, g, gw, q, k, v, pt, o, need_q, need_k, need_v, need_mask,
                     outs=None):
    """The gradients on arrays (no create_graph), on the transposed layout (..., S, L).

    dS = P * (dP - r) with r = rowsum(dP * P) = rowsum(g * o) per query (as FlashAttention
    does), so r comes from the small (..., L, Ev) arrays; the weights' own gradient adds
    rowsum(gw * P). NOTE: without dropout or a weights gradient, ``dP - r`` is one product
    ``[v, -1] @ [g, r]^T`` (E + 1 columns) on row-major copies: that replaces the product
    with g read through a transposed view (2x slower) and the passes over the (..., S, L)
    scores for r and the subtraction: 500 us vs 610 us on W5's heads, one thread. The score
    scale goes into that copy of g, or onto dQ and dK (not onto dS: a pass over the scores
    less, ~80 us). ``outs``: views shaped like q, k, v to write their gradients into."""
    xp = ctx.xp
    keep = ctx.keep
    gv = gq = gk = gm = None
    order = ctx.order
    oq, ok, ov = (None, None, None) if outs is None else outs
    if need_v:
        pdt = pt if keep is None else pt * keep
        gv = _const(_matmul_in_order(xp, pdt, g, order, ov))
    if need_q or need_k or need_mask:
        r = xp.einsum("...le,...le->...l", g, o)
        s = g.dtype.type(ctx.scale)
        if keep is None and gw is None:
            # The score scale rides along in the copy of g when dS itself is not returned.
            c = g.dtype.type(1) if need_mask else s
            gpt = gemm.matmul(_with_column(xp, v, -1),
                              _with_row(xp, xp.swapaxes(g, -1, -2), r, c))
            if not need_mask:
                s = None
        else:
            gpt = gemm.matmul(v, xp.swapaxes(g, -1, -2))
            if keep is not None:
                gpt *= keep
            if gw is not None:
                gwt = xp.swapaxes(gw, -1, -2)
                gpt += gwt
                r = r + xp.einsum("...sl,...sl->...l", gwt, pt)
            gpt -= r[..., None, :]
        gpt *= pt
        if need_mask:
            gm = _const(xp.swapaxes(gpt, -1, -2))
        if need_q:
            gq = _matmul_in_order(xp, xp.swapaxes(gpt, -1, -2), k, order, oq)
            if s is not None:
                gq *= s
            gq = _const(gq)
        if need_k:
            gk = _matmul_in_order(xp, gpt, q, order, ok)
            if s is not None:
                gk *= s
            gk = _const(gk)
    return gq, gk, gv, gm, None, None, None, None


def _with_column(xp, a, value):
    """(..., S, E) -> a row-major (..., S, E + 1) copy whose last column is ``value``."""
    out = xp.empty(a.shape[:-1] + (a.shape[-1] + 1,), dtype=a.dtype)
    out[..., :-1] = a
    out[..., -1] = value
    return out


def _with_row(xp, a, row, c):
    """(..., E, L) and (..., L) -> a row-major (..., E + 1, L) copy of ``a`` with ``row``
    appended, both times ``c``."""
    shape = xp.broadcast_shapes(a.shape[:-2], row.shape[:-1])
    out = xp.empty(shape + (a.shape[-2] + 1, a.shape[-1]), dtype=a.dtype)
    # NOTE (measured with timeit, min of 3x300 calls, one thread, W5's (16, 4, 64, 32) g):
    # the transposing copy, then one contiguous scaling pass: 102-105 us against 136-139 us
    # for multiplying into the strided rows (NumPy's strided multiply is slower than its
    # strided copy).
    xp.copyto(out[..., :-1, :], a)
    xp.copyto(out[..., -1, :], row)
    if c != 1:
        out *= c
    return out


def _probabilities(q, k, mask, scale, empty):
    """softmax(q @ k^T * scale + mask) with ember ops (the create_graph branch)."""
    s = linalg.matmul(q, k.mT) * scale
    if mask is not None:
        s = s + mask
    if empty is not None:
        rows = _const(empty).mT
        s = index.masked_fill(s, rows, 0.0)
        return index.masked_fill(activation.softmax(s, -1), rows, 0.0)
    return activation.softmax(s, -1)


# ---- scaled_dot_product_attention -----------------------------------------------------------


def _check_qkv(op, query, key, value, shapes=True):
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise errors.DTypeError(f"{op}: expected {name} to be a Tensor, got "
                                    f"{type(t).__name__}")
    if shapes and (query.ndim < 2 or key.ndim < 2 or value.ndim < 2):
        raise errors.ShapeError(
            f"{op}: expected query, key and value of at least 2 dims (..., L, E), (..., S, E), "
            f"(..., S, Ev); got shapes {_shape_str(query.shape)}, {_shape_str(key.shape)}, "
            f"{_shape_str(value.shape)}"
        )
    dts = {query._data.dtype, key._data.dtype, value._data.dtype}
    if len(dts) > 1 or query._data.dtype.kind != "f":
        raise errors.DTypeError(
            f"{op}: expected query, key and value of one floating-point dtype, got "
            f"{dtypes.name(query.dtype)}, {dtypes.name(key.dtype)}, {dtypes.name(value.dtype)}; "
            "convert them with .to(query.dtype)"
        )
    if shapes and (query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]):
        raise errors.ShapeError(
            f"{op}: query {_shape_str(query.shape)}, key {_shape_str(key.shape)} and value "
            f"{_shape_str(value.shape)} do not fit: expected (..., L, E), (..., S, E) and "
            "(..., S, Ev) (query and key share E, key and value share S)"
        )


def _additive(op, mask, dtype, attend_when_true):
    """A bool mask as an additive float array (0 / -inf), a float mask as it is."""
    if not isinstance(mask, Tensor):
        raise errors.DTypeError(f"{op}: expected the mask to be a Tensor, got "
                                f"{type(mask).__name__}")
    md = mask._data.dtype
    if md.kind == "b":
        # Built with ember's where (not raw arrays) so a traced graph keeps the mask as a
        # value: a bool mask given as a model input then exports to ONNX.
        from ember.ops import elementwise  # noqa: PLC0415

        blocked, open_ = (-math.inf, 0.0) if not attend_when_true else (0.0, -math.inf)
        return elementwise.where(mask, _const(mask.device.xp.asarray(blocked, dtype=dtype)),
                                 _const(mask.device.xp.asarray(open_, dtype=dtype)))
    if md != dtype:
        raise errors.DTypeError(
            f"{op}: expected a bool mask or a float mask of the query's dtype "
            f"{dtypes.name(dtype)}, got {dtypes.name(mask.dtype)}; convert it with "
            ".to(query.dtype) or build it as bool"
        )
    return mask


def _causal(xp, n_q, n_k, dtype):
    """The additive mask of top-left aligned causal attention (query i sees keys <= i)."""
    return xp.triu(xp.full((n_q, n_k), -math.inf, dtype=dtype), 1)


def _dropout_keep(xp, shape, p, dtype):
    """The scaled keep-mask of dropout, drawn from ember's default generator."""
    if p >= 1.0:
        return xp.zeros(shape, dtype=dtype)
    u = random.default_generator.numpy.random(shape, dtype=dtype if dtype.itemsize >= 4
                                                   else "float32")
    keep = (u >= p).astype(dtype)
    keep *= dtype.type(1.0 / (1.0 - p))
    return xp.asarray(keep)


def _repeat_heads(t, groups):
    """(..., Hk, S, E) -> (..., Hk * groups, S, E), each head repeated ``groups`` times."""
    sh = tuple(t.shape)
    t = shape_ops.unsqueeze(t, -3)
    t = shape_ops.expand(t, sh[:-2] + (groups,) + sh[-2:])
    return shape_ops.reshape(t, sh[:-3] + (sh[-3] * groups,) + sh[-2:])


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """Attention of queries over keys: ``softmax(Q K^T * scale + mask) V``.

    Args:
        query (Tensor): ``(..., L, E)``.
        key (Tensor): ``(..., S, E)``.
        value (Tensor): ``(..., S, Ev)``. The batch dims ``...`` of the three broadcast.
        attn_mask (Tensor, optional): broadcastable to ``(..., L, S)``; bool (True where a
            query may attend) or float (added to the scores, and differentiable).
        dropout_p (float): probability to drop an attention weight (always applied when > 0;
            pass 0.0 in evaluation). Default: 0.0.
        is_causal (bool): let query ``i`` see keys ``0..i`` only (top-left aligned); do not
            combine with ``attn_mask``. Default: False.
        scale (float, optional): score scale. Default: ``1 / sqrt(E)``.
        enable_gqa (bool): grouped-query attention: ``key``/``value`` may have fewer heads
            (dim -3) than ``query``, each shared by ``Hq / Hk`` query heads. Default: False.

    Shape:
        Output: ``(..., L, Ev)``.

    Example::

        >>> q = ember.randn(2, 4, 10, 8)
        >>> F.scaled_dot_product_attention(q, q, q, is_causal=True).shape
        ember.Size([2, 4, 10, 8])
    """
    return _sdpa("scaled_dot_product_attention", query, key, value, attn_mask, dropout_p,
                 is_causal, scale, enable_gqa, False, None)


def _sdpa(op, query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa,
          weights, order):
    _check_qkv(op, query, key, value)
    if isinstance(dropout_p, bool) or not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be between 0 and 1, got {dropout_p!r}")
    xp = query.device.xp
    dtype = query._data.dtype
    n_q, n_k = query.shape[-2], key.shape[-2]
    mask = None
    if is_causal:
        if attn_mask is not None:
            raise ValueError(
                f"{op}: got both attn_mask and is_causal=True; pass one of them (fold the "
                "causal mask into attn_mask if you need both)"
            )
        mask = _const(_causal(xp, n_q, n_k, dtype))
    elif attn_mask is not None:
        mask = _additive(op, attn_mask, dtype, True)
    if enable_gqa and query.ndim >= 3 and key.ndim >= 3:
        hq, hk, hv = query.shape[-3], key.shape[-3], value.shape[-3]
        if hk != hv or hk == 0 or hq % hk:
            raise errors.ShapeError(
                f"{op}: with enable_gqa the query heads (dim -3: {hq}) must be a multiple of "
                f"the key/value heads ({hk}, {hv}), and key and value must have equal heads"
            )
        if hq != hk:
            key = _repeat_heads(key, hq // hk)
            value = _repeat_heads(value, hq // hk)
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1]) if query.shape[-1] else 1.0
    try:
        batch = xp.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
        s_shape = batch + (n_q, n_k)
        if mask is not None:
            s_shape = xp.broadcast_shapes(s_shape, mask.shape)
    except ValueError:
        raise errors.ShapeError(
            f"{op}: the batch dims of query {_shape_str(query.shape)}, key "
            f"{_shape_str(key.shape)}, value {_shape_str(value.shape)}"
            + ("" if mask is None else f" and attn_mask {_shape_str(mask.shape)}")
            + " cannot be broadcast together (the mask must broadcast to (..., L, S))"
        ) from None
    if len(s_shape) != len(batch) + 2 or s_shape[-2:] != (n_q, n_k):
        raise errors.ShapeError(
            f"{op}: attn_mask of shape {_shape_str(mask.shape)} does not broadcast to the "
            f"attention weights' shape {_shape_str(batch + (n_q, n_k))} (..., L, S)"
        )
    keep = None
    if dropout_p > 0.0:
        keep = _dropout_keep(xp, s_shape[:-2] + (n_k, n_q), float(dropout_p), dtype)
    if order is not None and len(order) != len(s_shape):
        order = None
    return _Attention.apply(query, key, value, mask, float(scale), keep, weights, order)


# ---- multi-head attention -------------------------------------------------------------------


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """The functional form of nn.MultiheadAttention, with PyTorch's arguments; inputs are
    sequence-first: query ``(L, N, E)`` (or unbatched ``(L, E)``), key/value ``(S, N, Ek)``.

    Returns ``(attn_output, attn_weights)``: ``(L, N, E)`` and, when ``need_weights``,
    ``(N, L, S)`` averaged over heads (``average_attn_weights``) or ``(N, H, L, S)``.
    Bool masks are True where attention is NOT allowed. ``static_k``/``static_v`` are not
    supported.
    """
    if static_k is not None or static_v is not None:
        raise NotImplementedError(
            "multi_head_attention_forward: static_k / static_v are not supported; project "
            "the keys and values before the call instead"
        )
    return _mha(
        "multi_head_attention_forward", query, key, value, embed_dim_to_check, num_heads,
        in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
        out_proj_weight, out_proj_bias, training, key_padding_mask, need_weights, attn_mask,
        use_separate_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight,
        average_attn_weights, is_causal, False,
    )



def _linear(x, w, b):
    from ember.nn import functional  # noqa: PLC0415  (nn.functional imports this module)

    return functional.linear(x, w, b)


def _mha_shapes(op, query, key, value, key_padding_mask, attn_mask, num_heads):
    """PyTorch's rank rules; returns whether the input is batched."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise errors.ShapeError(
                f"{op}: for a batched (3-D) query, expected key and value to be 3-D, got "
                f"key {_shape_str(key.shape)} and value {_shape_str(value.shape)}"
            )
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise errors.ShapeError(
                f"{op}: for batched inputs key_padding_mask must be 2-D (N, S), got "
                f"{_shape_str(key_padding_mask.shape)}"
            )
        batched = True
    elif query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise errors.ShapeError(
                f"{op}: for an unbatched (2-D) query, expected key and value to be 2-D, got "
                f"key {_shape_str(key.shape)} and value {_shape_str(value.shape)}"
            )
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise errors.ShapeError(
                f"{op}: for unbatched inputs key_padding_mask must be 1-D (S,), got "
                f"{_shape_str(key_padding_mask.shape)}"
            )
        batched = False
    else:
        raise errors.ShapeError(
            f"{op}: expected a query of shape (L, N, E) / (N, L, E) with batch_first, or "
            f"unbatched (L, E); got a {query.ndim}-D query of shape {_shape_str(query.shape)}"
        )
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        raise errors.ShapeError(
            f"{op}: attn_mask must be 2-D (L, S) or 3-D (N * num_heads, L, S), got "
            f"{_shape_str(attn_mask.shape)}"
        )
    if attn_mask is not None and attn_mask.ndim == 3 and not batched:
        if attn_mask.shape[0] != num_heads:
            raise errors.ShapeError(
                f"{op}: for unbatched inputs a 3-D attn_mask must be (num_heads={num_heads}, "
                f"L, S), got {_shape_str(attn_mask.shape)}"
            )
    return batched


def _split_heads(t, num_heads, batch_first):
    """(N, L, E) or (L, N, E) -> the view (N, H, L, E / H)."""
    a, b, e = t.shape
    t = shape_ops.reshape(t, (a, b, num_heads, e // num_heads))
    return shape_ops.permute(t, (0, 2, 1, 3) if batch_first else (1, 2, 0, 3))


def _project(query, key, value, num_heads, w, b, separate, qw, kw, vw):
    """The input projections, split into heads lazily: one GEMM for self-attention (a
    packed weight and query is key is value), two when key is value."""
    e = query.shape[-1]
    if separate:
        bq = bk = bv = None
        if b is not None:
            bq, bk, bv = b[:e], b[e:2 * e], b[2 * e:]
        return _linear(query, qw, bq), _linear(key, kw, bk), _linear(value, vw, bv)
    if query is key and key is value:
        qkv = _linear(query, w, b)
        qkv = shape_ops.reshape(qkv, tuple(qkv.shape[:-1]) + (3, e))
        return shape_ops.unbind(qkv, -2)
    bq = None if b is None else b[:e]
    q = _linear(query, w[:e], bq)
    if key is value:
        kv = _linear(key, w[e:], None if b is None else b[e:])
        kv = shape_ops.reshape(kv, tuple(kv.shape[:-1]) + (2, e))
        k, v = shape_ops.unbind(kv, -2)
        return q, k, v
    k = _linear(key, w[e:2 * e], None if b is None else b[e:2 * e])
    v = _linear(value, w[2 * e:], None if b is None else b[2 * e:])
    return q, k, v


def _mha_masks(op, key_padding_mask, attn_mask, dtype, n, h, n_q, n_k):
    """Both masks as additive floats shaped to broadcast against (N, H, L, S)."""
    if attn_mask is not None:
        attn_mask = _additive(op, attn_mask, dtype, False)
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (n_q, n_k):
                raise errors.ShapeError(
                    f"{op}: the 2-D attn_mask has shape {_shape_str(attn_mask.shape)}, but "
                    f"should be (L, S) = {_shape_str((n_q, n_k))}"
                )
            attn_mask = shape_ops.reshape(attn_mask, (1, 1, n_q, n_k))
        else:
            if tuple(attn_mask.shape) != (n * h, n_q, n_k):
                raise errors.ShapeError(
                    f"{op}: the 3-D attn_mask has shape {_shape_str(attn_mask.shape)}, but "
                    f"should be (N * num_heads, L, S) = {_shape_str((n * h, n_q, n_k))}"
                )
            attn_mask = shape_ops.reshape(attn_mask, (n, h, n_q, n_k))
    if key_padding_mask is not None:
        key_padding_mask = _additive(op, key_padding_mask, dtype, False)
        if tuple(key_padding_mask.shape) != (n, n_k):
            raise errors.ShapeError(
                f"{op}: key_padding_mask has shape {_shape_str(key_padding_mask.shape)}, "
                f"but should be (N, S) = {_shape_str((n, n_k))}"
            )
        key_padding_mask = shape_ops.reshape(key_padding_mask, (n, 1, 1, n_k))
    return key_padding_mask, attn_mask


def _pad_last(t):
    return None if t is None else shape_ops.pad(t, (0, 1))


def _mha(op, query, key, value, embed_dim, num_heads, in_proj_weight, in_proj_bias, bias_k,
         bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, training,
         key_padding_mask, need_weights, attn_mask, separate, q_proj_weight, k_proj_weight,
         v_proj_weight, average_attn_weights, is_causal, batch_first):
    """Multi-head attention on (N, L, E) (batch_first) or (L, N, E) inputs, without moving
    the batch axis: heads are split and merged with views, and the attention writes its
    output straight into the layout the output projection reads."""
    _check_qkv(op, query, key, value, shapes=False)
    batched = _mha_shapes(op, query, key, value, key_padding_mask, attn_mask, num_heads)
    b_axis = 0 if batch_first else 1
    if not batched:  # keep self-attention recognisable (query is key is value)
        same_k, same_v = key is query, value is key
        query = shape_ops.unsqueeze(query, b_axis)
        key = query if same_k else shape_ops.unsqueeze(key, b_axis)
        value = key if same_v else shape_ops.unsqueeze(value, b_axis)
        if key_padding_mask is not None:
            key_padding_mask = shape_ops.unsqueeze(key_padding_mask, 0)
    e = query.shape[-1]
    if e != embed_dim:
        raise errors.ShapeError(
            f"{op}: expected the query's last dim to be embed_dim {embed_dim}, got query of "
            f"shape {_shape_str(query.shape)}"
        )
    if num_heads <= 0 or e % num_heads:
        raise ValueError(f"{op}: embed_dim {e} is not divisible by num_heads {num_heads}")
    if separate:
        if key.shape[:2] != value.shape[:2]:
            raise errors.ShapeError(
                f"{op}: key {_shape_str(key.shape)} and value {_shape_str(value.shape)} must "
                "share their sequence and batch dims"
            )
    elif key.shape != value.shape or key.shape[-1] != e:
        raise errors.ShapeError(
            f"{op}: key {_shape_str(key.shape)} and value {_shape_str(value.shape)} must "
            f"have one shape with last dim embed_dim {e} (pass kdim/vdim to "
            "MultiheadAttention for other sizes)"
        )
    n = query.shape[b_axis]
    if key.shape[b_axis] != n:
        raise errors.ShapeError(
            f"{op}: query {_shape_str(query.shape)} and key {_shape_str(key.shape)} have "
            f"different batch sizes (dim {b_axis}"
            + (", batch_first=True)" if batch_first else ", batch_first=False)")
        )
    n_q, n_k = query.shape[1 - b_axis], key.shape[1 - b_axis]
    dtype = query._data.dtype
    if is_causal and attn_mask is None:
        raise ValueError(
            f"{op}: is_causal=True needs attn_mask too (it is only a hint); build one with "
            "nn.Transformer.generate_square_subsequent_mask(L)"
        )
    causal = is_causal and key_padding_mask is None and not need_weights
    kpm, am = _mha_masks(op, key_padding_mask, None if causal else attn_mask, dtype, n,
                         num_heads, n_q, n_k)
    p = dropout_p if training else 0.0
    if (query is key and key is value and not separate and bias_k is None and bias_v is None
            and not add_zero_attn and _Tracing.tracer is None and _PACKED[0]):
        # One _SelfAttention node on the packed projection (NOTE at the class).
        mask = am if kpm is None else (kpm if am is None else am + kpm)
        qkv = _linear(query, in_proj_weight, in_proj_bias)
        out = _packed_self_attention(qkv, num_heads, batch_first, mask, p, causal,
                                     need_weights)
        return _mha_out(out, need_weights, average_attn_weights, out_proj_weight,
                        out_proj_bias, batched, b_axis)
    q, k, v = _project(query, key, value, num_heads, in_proj_weight, in_proj_bias, separate,
                       q_proj_weight, k_proj_weight, v_proj_weight)
    if bias_k is not None and bias_v is not None:
        tail = (n, 1, e) if batch_first else (1, n, e)
        k = shape_ops.cat([k, shape_ops.expand(shape_ops.reshape(bias_k, (1, 1, e)), tail)],
                          1 - b_axis)
        v = shape_ops.cat([v, shape_ops.expand(shape_ops.reshape(bias_v, (1, 1, e)), tail)],
                          1 - b_axis)
        kpm, am = _pad_last(kpm), _pad_last(am)
    elif bias_k is not None or bias_v is not None:
        raise ValueError(f"{op}: give both bias_k and bias_v, or neither")
    q = _split_heads(q, num_heads, batch_first)
    k = _split_heads(k, num_heads, batch_first)
    v = _split_heads(v, num_heads, batch_first)
    if add_zero_attn:
        zeros = _const(k.device.xp.zeros(tuple(k.shape[:2]) + (1, k.shape[3]), dtype))
        k = shape_ops.cat([k, zeros], 2)
        v = shape_ops.cat([v, zeros], 2)
        kpm, am = _pad_last(kpm), _pad_last(am)
    mask = am if kpm is None else (kpm if am is None else am + kpm)
    order = _merge_order(batch_first)
    out = _sdpa(op, q, k, v, mask, p, causal, None, False, need_weights, order)
    merged = shape_ops.permute(out[0] if need_weights else out, order)
    merged = shape_ops.reshape(merged, tuple(merged.shape[:2]) + (e,))
    out = (merged, out[1]) if need_weights else merged
    return _mha_out(out, need_weights, average_attn_weights, out_proj_weight, out_proj_bias,
                    batched, b_axis)


def _mha_out(out, need_weights, average_attn_weights, out_proj_weight, out_proj_bias,
             batched, b_axis):
    """The merged heads through the output projection; the weights averaged if asked."""
    weights = None
    if need_weights:
        out, weights = out
        if average_attn_weights:
            weights = reduce.mean(weights, 1)
    out = _linear(out, out_proj_weight, out_proj_bias)
    if not batched:
        out = shape_ops.squeeze(out, b_axis)
        if weights is not None:
            weights = shape_ops.squeeze(weights, 0)
    return out, weights


# Whether nn.MultiheadAttention's self-attention (query is key is value, packed weights) runs
# as one _SelfAttention node; tests switch it off to compare with the general path.
_PACKED = [True]


def _packed_self_attention(qkv, heads, batch_first, mask, dropout_p, causal, weights):
    """_SelfAttention on the packed projection, with _sdpa's causal mask and dropout draw
    (the same random draws as the general path)."""
    xp = qkv.device.xp
    dtype = qkv._data.dtype
    lead = tuple(qkv.shape[:2])
    n, length = lead if batch_first else lead[::-1]
    d = qkv.shape[-1] // (3 * heads)
    if causal:
        mask = _const(_causal(xp, length, length, dtype))
    scale = 1.0 / math.sqrt(d) if d else 1.0
    keep = None
    if dropout_p > 0.0:
        keep = _dropout_keep(xp, (n, heads, length, length), float(dropout_p), dtype)
    return _SelfAttention.apply(qkv, mask, scale, keep, weights, heads, batch_first)


TENSOR_METHODS = {}
