"""The CTC loss on arrays: argument checks, the alpha (forward) and beta (backward)
recursions in log space, and the gradient. ``ember.ops.loss.ctc_loss`` is the public entry.

Notation: each target ``l`` of length S is extended to ``l'`` of length ``L = 2S + 1`` with a
blank before, between and after its labels. ``alpha[t, s]`` is the log-probability of all
partial alignments of ``l'[:s+1]`` to frames ``0..t``; ``beta[t, s]`` that of ``l'[s:]`` to
frames ``t..T-1``; both include the emission at ``(t, s)``. Then
``p(l) = sum_s exp(alpha[t, s] + beta[t, s] - lp[t, l'_s])`` for every t, and

    d(-log p) / d lp[t, c] = -sum_{s: l'_s = c} exp(alpha[t, s] + beta[t, s] - lp[t, c]) / p(l).

Both recursions are vectorised over the batch and the extended labels: one step per frame.
"""

import numpy

from ember import errors
from ember.autograd import grad_mode
from ember.autograd.function import Function
from ember.tensor import Tensor

_NEG_INF = -numpy.inf


def _dt(dtype):
    return numpy.dtype(dtype).name


def _lengths(name, what, xp, value, n, unbatched):
    """A (N,) int64 array of lengths from a Tensor, a sequence or (unbatched) an int."""
    if isinstance(value, Tensor):
        if value._data.dtype.kind not in "iu":
            raise errors.DTypeError(
                f"{name}: {what} must be integers, got {_dt(value._data.dtype)}"
            )
        arr = xp.asarray(value._data, dtype=numpy.int64).reshape(-1)
    else:
        seq = [value] if isinstance(value, (int, numpy.integer)) else list(value)
        arr = xp.asarray(numpy.asarray(seq, dtype=numpy.int64)).reshape(-1)
    if arr.shape != (n,):
        raise errors.ShapeError(
            f"{name}: {what} must have one entry per batch element ({n}), got {arr.shape[0]}"
            + ("" if not unbatched else " (unbatched input: pass a single length)")
        )
    return arr


def check_args(name, xp, lp_shape, targets, input_lengths, target_lengths, blank, unbatched):
    """Validate the arguments; return ``(padded targets (N, S) int64, input lengths (N,),
    target lengths (N,))`` on the device of ``log_probs``."""
    t_max, n, c = lp_shape
    if not 0 <= blank < c:
        raise ValueError(f"{name}: blank={blank} is not a class of log_probs with C={c}")
    if targets.dtype.kind not in "iu":
        raise errors.DTypeError(
            f"{name}: targets must be integer class indices, got {_dt(targets.dtype)}; "
            "use targets.long()"
        )
    in_lens = _lengths(name, "input_lengths", xp, input_lengths, n, unbatched)
    tg_lens = _lengths(name, "target_lengths", xp, target_lengths, n, unbatched)
    targets = xp.asarray(targets, dtype=numpy.int64)
    if n and (int(in_lens.min()) < 0 or int(in_lens.max()) > t_max):
        raise errors.ShapeError(
            f"{name}: input_lengths must be in [0, T={t_max}], got {in_lens.tolist()}"
        )
    if n and int(tg_lens.min()) < 0:
        raise errors.ShapeError(f"{name}: target_lengths must be >= 0, got {tg_lens.tolist()}")
    if unbatched and targets.ndim == 1:
        targets = targets.reshape(1, -1)
    if targets.ndim == 2 and not unbatched:
        if targets.shape[0] != n:
            raise errors.ShapeError(
                f"{name}: padded targets {errors.shape_str(targets.shape)} must have one row per "
                f"batch element of log_probs {errors.shape_str(lp_shape)}"
            )
    elif targets.ndim == 1 and not unbatched:
        total = int(tg_lens.sum())
        if targets.shape[0] != total:
            raise errors.ShapeError(
                f"{name}: concatenated targets have {targets.shape[0]} labels but target_lengths "
                f"sum to {total}"
            )
        s = int(tg_lens.max()) if n else 0
        starts = xp.cumsum(tg_lens) - tg_lens
        pos = xp.arange(s)
        inside = pos[None, :] < tg_lens[:, None]
        where_from = xp.where(inside, starts[:, None] + pos[None, :], 0)
        targets = xp.where(inside, targets[where_from] if total else 0, blank)
    elif not (unbatched and targets.ndim == 2):
        raise errors.ShapeError(
            f"{name}: targets must be padded (N, S) or concatenated 1-D, got "
            f"{errors.shape_str(targets.shape)}"
        )
    if n and int(tg_lens.max()) > targets.shape[1]:
        raise errors.ShapeError(
            f"{name}: target_lengths {tg_lens.tolist()} exceed the padded target length "
            f"{targets.shape[1]}"
        )
    inside = xp.arange(targets.shape[1])[None, :] < tg_lens[:, None]
    bad = inside & ((targets < 0) | (targets >= c))
    if bool(bad.any()):
        raise errors.ShapeError(
            f"{name}: target label {int(targets[bad][0])} is out of range for C={c} classes"
        )
    return xp.where(inside, targets, blank), in_lens, tg_lens


def _extend(xp, padded, blank):
    """Extended labels ``l'`` (N, 2S + 1) and where the skip ``s - 2 -> s`` is allowed."""
    n, s = padded.shape
    ext = xp.full((n, 2 * s + 1), blank, dtype=numpy.int64)
    ext[:, 1::2] = padded
    skip = xp.zeros(ext.shape, dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    return ext, skip


def _logsumexp3(xp, a, b, c):
    m = xp.maximum(xp.maximum(a, b), c)
    m = xp.where(m == _NEG_INF, 0, m)
    return m + xp.log(xp.exp(a - m) + xp.exp(b - m) + xp.exp(c - m))


def _alpha(xp, lp_ext, skip, tg_lens):
    t_max, n, width = lp_ext.shape
    alpha = xp.full(lp_ext.shape, _NEG_INF, dtype=lp_ext.dtype)
    alpha[0, :, 0] = lp_ext[0, :, 0]
    if width > 1:
        alpha[0, :, 1] = xp.where(tg_lens > 0, lp_ext[0, :, 1], _NEG_INF)
    one = xp.full((n, width), _NEG_INF, dtype=lp_ext.dtype)
    two = xp.full((n, width), _NEG_INF, dtype=lp_ext.dtype)
    for t in range(1, t_max):
        prev = alpha[t - 1]
        one[:, 1:] = prev[:, :-1]
        two[:, 2:] = prev[:, :-2]
        alpha[t] = _logsumexp3(xp, prev, one, xp.where(skip, two, _NEG_INF)) + lp_ext[t]
    return alpha


def _beta(xp, lp_ext, skip, in_lens, tg_lens):
    t_max, n, width = lp_ext.shape
    rows = xp.arange(n)
    last = 2 * tg_lens
    final = lp_ext[xp.maximum(in_lens - 1, 0), rows]  # (N, L): emissions at each last frame
    init = xp.full((n, width), _NEG_INF, dtype=lp_ext.dtype)
    init[rows, last] = final[rows, last]
    has = tg_lens > 0
    init[rows[has], last[has] - 1] = final[rows[has], last[has] - 1]
    beta = xp.full(lp_ext.shape, _NEG_INF, dtype=lp_ext.dtype)
    nxt = xp.full((n, width), _NEG_INF, dtype=lp_ext.dtype)
    one = xp.full((n, width), _NEG_INF, dtype=lp_ext.dtype)
    two = xp.full((n, width), _NEG_INF, dtype=lp_ext.dtype)
    skip_from = xp.zeros(skip.shape, dtype=bool)  # s -> s + 2 allowed
    skip_from[:, :-2] = skip[:, 2:]
    for t in range(t_max - 1, -1, -1):
        one[:, :-1] = nxt[:, 1:]
        two[:, :-2] = nxt[:, 2:]
        rec = _logsumexp3(xp, nxt, one, xp.where(skip_from, two, _NEG_INF)) + lp_ext[t]
        cur = xp.where((t < in_lens - 1)[:, None], rec, _NEG_INF)
        cur = xp.where((t == in_lens - 1)[:, None], init, cur)
        beta[t] = cur
        nxt = cur
    return beta


class CTC(Function):
    """Per-sample CTC losses (N,) of ``log_probs (T, N, C)``; the other arguments are arrays.

    NOTE: the backward is array code (the alpha-beta gradient) and is not differentiable:
    with create_graph=True it raises instead of returning a wrong second derivative.
    """

    @staticmethod
    def forward(ctx, lp, padded, in_lens, tg_lens, blank, zero_infinity):
        xp = ctx.xp
        t_max, n, _ = lp.shape
        ext, skip = _extend(xp, padded, blank)
        rows = xp.arange(n)
        lp_ext = lp[:, rows[:, None], ext]  # (T, N, L): lp[t, n, l'_s]
        with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):
            alpha = _alpha(xp, lp_ext, skip, tg_lens)
            at_end = alpha[xp.maximum(in_lens - 1, 0), rows]  # (N, L)
            last = 2 * tg_lens
            end_blank = at_end[rows, last]
            end_label = xp.where(tg_lens > 0, at_end[rows, xp.maximum(last - 1, 0)], _NEG_INF)
            m = xp.maximum(end_blank, end_label)
            m_safe = xp.where(m == _NEG_INF, 0, m)
            log_p = m_safe + xp.log(xp.exp(end_blank - m_safe) + xp.exp(end_label - m_safe))
        # No frames: only the empty target has an alignment (the empty one).
        log_p = xp.where(in_lens == 0, xp.where(tg_lens == 0, 0.0, _NEG_INF), log_p)
        nll = -log_p
        dead = xp.isinf(nll)
        if zero_infinity:
            nll = xp.where(dead, 0.0, nll)
        ctx.ext, ctx.skip, ctx.lp_ext = ext, skip, lp_ext
        ctx.in_lens, ctx.tg_lens, ctx.alpha = in_lens, tg_lens, alpha
        ctx.log_p, ctx.dead, ctx.zero_infinity = log_p, dead, zero_infinity
        ctx.save_for_backward(lp)
        return xp.asarray(nll, dtype=lp.dtype)

    @staticmethod
    def backward(ctx, gy):
        if grad_mode._State.enabled:
            raise errors.AutogradError(
                "ctc_loss: double backward is not supported (create_graph=True through "
                "ctc_loss): its gradient is computed by the alpha-beta recursion on arrays. "
                "Differentiate the CTC loss once, without create_graph"
            )
        (lp,) = ctx.saved_tensors
        lp = lp._data
        xp = _array_module(lp)
        t_max, n, c = lp.shape
        with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):
            beta = _beta(xp, ctx.lp_ext, ctx.skip, ctx.in_lens, ctx.tg_lens)
            # exp(alpha + beta - lp - log p) <= 1: the share of alignments through (t, s).
            share = xp.exp(ctx.alpha + beta - ctx.lp_ext - ctx.log_p[None, :, None])
            frames = xp.arange(t_max)[:, None, None] < ctx.in_lens[None, :, None]
            share = xp.where(frames, share, 0.0)
        flat = (xp.arange(t_max)[:, None, None] * n + xp.arange(n)[None, :, None]) * c
        flat = flat + ctx.ext[None]
        occupancy = xp.bincount(flat.reshape(-1), weights=share.reshape(-1),
                                minlength=t_max * n * c).reshape(t_max, n, c)
        scale = -gy._data.astype(lp.dtype)
        if ctx.zero_infinity:
            scale = xp.where(ctx.dead, 0.0, scale)
            occupancy = xp.where(ctx.dead[None, :, None], 0.0, occupancy)
        grad = (occupancy * scale[None, :, None]).astype(lp.dtype, copy=False)
        return Tensor._make(grad, False, None, 0), None, None, None, None, None


def _array_module(a):
    from ember.backend import devices  # noqa: PLC0415

    return devices.get_array_module(a)
