"""Normalization: batch_norm, instance_norm, layer_norm, group_norm, rms_norm.

One fused Function, ``_Normalize``, does the work of all five. It sees the input as a 3-D
array ``(A, C, L)`` (a free reshape of a contiguous input) and computes

    y = (x - mean) * rstd * w + b,        rstd = 1 / sqrt(var + eps)

with the statistics either taken from the input (over ``L``, or over ``A`` and ``L`` for
batch_norm's per-channel statistics) or given (running statistics in eval mode). ``w`` and
``b`` are one value per ``C`` (batch_norm, instance_norm) or per ``L`` (layer_norm,
rms_norm); rms_norm skips the centering. How each public function maps onto ``(A, C, L)``:

    batch_norm     (N, C, *S) -> (N, C, prod S)    stats over A and L, w per C
    instance_norm  (N, C, *S) -> (N, C, prod S)    stats over L,       w per C
    layer_norm     (*, *D)    -> (1, prod *, prod D)  stats over L,    w per L
    rms_norm       like layer_norm, without centering
    group_norm     (N, C, *S) -> (N, G, C/G prod S)   stats over L, then a per-channel affine

NOTE: the backward on the hot paths (batch_norm, layer_norm) is array code; it is used only
when the backward is not being recorded; with ``create_graph=True`` the same gradient is built
from ember ops (``_composite_backward``), so higher-order gradients work. Tests cover both.
NumPy costs that decided its shape (2-core Zen 5, one thread, process CPU time, load 7-11):
- A broadcasting ufunc pays per inner row: on (1024, 128) float32 a per-row scalar op takes
  ~45-80 us and a contiguous one ~17-50; on (32, 32, 1024) an in-place op takes ~0.35-0.45 ms
  and one writing a fresh array ~0.75-0.8 ms. So: fewest broadcast passes, in place where
  possible, and no full-size temporary that is not needed.
- layer_norm / rms_norm with an affine part keep xhat from the forward (one more live buffer
  per call) and build G = rstd * w * g as an outer product times g; the backward is then
  5 elementwise passes + 4 einsum reductions instead of 9 + 4. Measured (16, 64, 128), W5's
  shape: fwd+bwd 1.27 -> 1.18 ms (torch 0.41); (16, 128, 256): 4.13 -> 3.61 ms (torch 0.86).
- batch_norm / instance_norm / group_norm do not keep xhat (on large maps a fresh output
  costs twice an in-place pass): the forward writes y into its one fresh buffer, the backward
  recomputes x - mean into one fresh buffer and turns it into gx with three in-place passes.
  Measured fwd+bwd (32, 32, 32, 32), W3's shape: 7.7 -> 6.1 ms (torch 5.0); (32, 64, 16, 16):
  3.9 -> 3.0 ms (torch 2.5). Saving xhat there was measured too: no better than before.
  Their per-channel values then enter each pass as a (C, L) array (_channel_operand) rather
  than a (1, C, 1) broadcast: fwd+bwd (32, 32, 32, 32) 6.2 -> 3.8 ms (torch 3.6-4.2), eval
  1.17 -> 0.73 ms (process CPU time, one thread, load 3-4, bench/norm_micro.py --clock cpu).
Row sums and row dot products go through einsum: 2-3x faster than ``.sum(axis)`` and 5-10x
faster than ``(a * b).sum(axis)`` on (32, 64, 256) float32. A matmul with a ones vector is
as fast when the machine is idle, but OpenBLAS's threads stall under load (re-measured: a
(2048, 256) float32 ``x @ w`` took 24 ms median with 2 threads at load 8, 70 us with one), so
the single-threaded einsum it is. Three-operand einsum products (``'rl,r,l->rl'``) and
processing layer_norm's rows in cache-sized chunks were measured slower on W5's shape; the
per-channel passes (batch_norm, instance_norm) run in chunks (NOTE at _CHUNK_BYTES), and so
does layer_norm's input gradient on inputs over 1 MB (NOTE at _ROW_CHUNK_BYTES).
bench/norm_micro.py times these.

NOTE (measured, ember issue 7, W5's layer_norm; 1 thread, process CPU time, min/median of
7-15 interleaved rounds, Sapphire Rapids 2-core VM under load 1-3): the weight-per-L path is
at the fewest NumPy passes this formulation allows (forward: 2 row reductions + 4 writes,
of which the centering one is needed for xhat anyway; backward: 4 reductions + 5 writes), and
a NumPy pass here costs ~0.3-0.5 ns per float32 element whatever the cache level, so only
fewer passes would pay. fwd+bwd now: (16, 64, 128) 0.83-0.85 ms (PyTorch 0.34), (16, 128,
256) 2.9-3.3 ms (PyTorch 0.73-0.99); ~140 us of the former is autograd and reshape overhead.
Tried and dropped (same values, no gain beyond noise):
- statistics in one pass (sum and sum of squares of x, var = E[x^2] - mean^2, xhat by an
  einsum scale and an in-place shift): fwd (1024, 128) 269/307 us vs 265/311; it still needs
  a write for the centering, and it cancels in float32 when the mean is large.
- y = einsum('acl,l->acl', xhat, w) for the affine: faster alone on (2048, 256) (225-263 vs
  324-345 us), but fwd+bwd through layer_norm 0.97-1.07x of the broadcasting multiply.
- saving x - mean instead of xhat (y = (rstd outer w) * xc + b, rstd folded into the
  backward's coefficients): fwd+bwd (1024, 128) 597/712 us vs 630/720; (2048, 256) 3045/3232
  vs 3001/3354.
- the backward's three full terms G - c1 - c2 * xhat as one batched matmul (coefficients
  (R, 1, 3) @ a stack (R, 3, L) holding G, xhat and ones, xhat written into the stack by the
  forward): the matmul alone beats two passes (81 vs 122 us), but the strided stack and its
  1.5x larger buffer make fwd 320 -> 502 us and bwd 388 -> 555 us on (1024, 128).
- the forward's rows in L2-sized chunks (256 KB, 1 MB): slower (fwd (2048, 768) 3900/4244
  whole vs 4861/6052 us chunked); the backward's do pay on large inputs (_ROW_CHUNK_BYTES).
- np.vecdot for the row dot products: 27/31 vs 32/36 us on (1024, 128) (and closer to
  float64), ~1% of fwd+bwd, not worth a second code path for CuPy.
- row sums as a matvec with a ones vector (x @ ones: 15 vs 20 us): OpenBLAS threads, see above.
"""

import math

import numpy

from ember import dtypes, errors
from ember.autograd import grad_mode
from ember.autograd.function import Function
from ember.ops import _norm_native, elementwise, reduce
from ember.ops import shape as shape_ops
from ember.tensor import Tensor

_State = grad_mode._State

# Top-level exports (ember.NAME, see ember/_functions.py): only the functions whose torch.NAME
# twin takes the same arguments. torch.batch_norm and torch.instance_norm order theirs
# differently from F.batch_norm / F.instance_norm, so those stay under ember.nn.functional.
__all__ = ["layer_norm", "group_norm", "rms_norm"]


class _Config:
    """How one _Normalize call reads its (A, C, L) input.

    per_channel: statistics over A and L (one per C) instead of over L (one per A, C).
    w_on: 'C' (one weight per C) or 'L' (one per L).
    center: subtract the mean (False for rms_norm).
    batch: compute the statistics from the input (False: use the given mean and var).
    update: momentum for the running statistics, or None for no update.
    """

    __slots__ = ("per_channel", "w_on", "center", "batch", "eps", "update")

    def __init__(self, per_channel, w_on, center, batch, eps, update=None):
        self.per_channel = per_channel
        self.w_on = w_on
        self.center = center
        self.batch = batch
        self.eps = eps
        self.update = update


def _rowsum(xp, a):
    """(A, C, L) -> (A, C): sums over L."""
    return xp.einsum("acl->ac", a)


def _rowdot(xp, a, b):
    """(A, C, L), (A, C, L) -> (A, C): per-row dot products."""
    return xp.einsum("acl,acl->ac", a, b)


def _channel_operand(xp, v, shape):
    """A per-channel value ``v`` (1, C, 1) as an operand for an (A, C, L) pass: a (C, L)
    array with each value repeated along L when there are enough rows to pay for it.

    NOTE: NumPy runs a (1, C, 1) broadcast with one short inner loop per (a, c) row; against a
    (C, L) operand the C and L axes merge into one contiguous inner loop. Measured on (32, 32,
    1024) float32, one thread, load 3: ``y += v`` 239 us vs 396, ``x - v`` into a fresh array
    552 vs 715; (32, 64, 256): 92 vs 181. Building the operand costs 1/A of a pass, so it is
    used from A >= 4 on (and only for per-channel values, which are shared by every row)."""
    a, c, n = shape
    if a < 4 or n < 2 or v.shape[0] != 1:
        return v
    rows = xp.empty((c, n), dtype=v.dtype)
    rows[...] = v.reshape(c, 1)
    return rows


def _stat_count(x, cfg):
    a, _, n = x.shape
    return n * a if cfg.per_channel else n


def _reduce_rows(s, cfg):
    """(A, C) row results -> the statistics' shape: (1, C) per channel, else (A, C)."""
    return s.sum(0, keepdims=True) if cfg.per_channel else s


# NOTE (measured, (32, 32, 32, 32) float32, W3's shape; 1 thread, process CPU time on the
# shared 2-core machine under load 2.5-3.8, min / median of 9-21 interleaved rounds of 10
# calls; ember issue 7): the weight-per-C passes (batch_norm, instance_norm) run chunk by
# chunk of about _CHUNK_BYTES of the input, so that the passes that follow one another over
# the same values (centre then square-sum; scale then shift; the backward's four in-place
# passes) read them from the L2 cache rather than memory. Same values, bit for bit. With the
# caches flushed before each call (64 MB written), as in a training step: forward 2.31/2.90
# -> 1.99/2.78 ms and 2.36 -> 2.03 (min), backward 3.15 -> 2.76 (min), 3.92 -> 3.81 (median);
# warm: forward 1.60/1.89 -> 1.39/1.52, backward 1.94/2.28 -> 1.87/2.11; eval forward
# 0.76/0.82 -> 0.73/0.78 (PyTorch 0.51/0.53). Chunks of 256 KB and 1 MB: within noise.
# - tried and dropped: the forward's statistics in one pass over memory (per chunk, the
#   rows' own means and squared deviations, merged per channel afterwards, Chan et al.):
#   its per-row broadcasts cost more than the read saved (cold 2.61/3.14 vs 1.99/2.78 ms).
_CHUNK_BYTES = 512 << 10


def _chunks(xp, shape, itemsize):
    """(start, stop) ranges along A of about _CHUNK_BYTES each (one range off NumPy: the
    chunks are for a CPU's cache)."""
    a, c, n = shape
    if xp is not numpy:
        return [(0, a)]
    step = max(1, _CHUNK_BYTES // max(c * n * itemsize, 1))
    return [(i, min(i + step, a)) for i in range(0, a, step)]


def _rows(v, i, j):
    """Rows i:j of an operand of an (A, C, L) pass: sliced when it has the A axis."""
    return v[i:j] if v.ndim == 3 and v.shape[0] > 1 else v


def _centre_chunks(xp, x, mu, g=None, want_sg=False):
    """buf = x - mu into a fresh array, chunk by chunk, with the row sums taken while each
    chunk is in the cache: without ``g`` returns (buf, rowdot(buf, buf)); with ``g`` returns
    (buf, rowdot(g, buf), rowsum(g) if want_sg else None). ``mu`` None: no centring (buf is a
    copy of x)."""
    a, c, _ = x.shape
    buf = xp.empty_like(x)
    dots = xp.empty((a, c), dtype=x.dtype)
    sums = xp.empty((a, c), dtype=x.dtype) if want_sg else None
    for i, j in _chunks(xp, x.shape, x.itemsize):
        part = buf[i:j]
        if mu is None:
            part[...] = x[i:j]
        else:
            xp.subtract(x[i:j], _rows(mu, i, j), out=part)
        if g is None:
            dots[i:j] = _rowdot(xp, part, part)
            continue
        dots[i:j] = _rowdot(xp, g[i:j], part)
        if want_sg:
            sums[i:j] = _rowsum(xp, g[i:j])
    return (buf, dots) if g is None else (buf, dots, sums)


class _Normalize(Function):
    """y = (x - mean) * rstd * w + b for x of shape (A, C, L); see the module docstring."""

    @staticmethod
    def forward(ctx, x, w, b, running_mean, running_var, cfg):
        xp = ctx.xp
        c = x.shape[1]
        lib = _native(x, cfg)
        if cfg.batch:
            n = _stat_count(x, cfg)
            if lib is not None:
                mu, var = (None if s is None else s.astype(x.dtype) for s in
                           _norm_native.statistics(lib, x, cfg.per_channel, cfg.center))
                xc = None
            else:
                if cfg.center:
                    mu = _reduce_rows(_rowsum(xp, x), cfg)[..., None] * (1.0 / n)
                    if cfg.w_on == "C":
                        xc, sq = _centre_chunks(xp, x, _channel_operand(xp, mu, x.shape))
                    else:
                        xc = x - _channel_operand(xp, mu, x.shape)
                        sq = _rowdot(xp, xc, xc)
                else:
                    mu, xc = None, x
                    sq = _rowdot(xp, xc, xc)
                var = _reduce_rows(sq, cfg)[..., None] * (1.0 / n)
            if cfg.update is not None and running_mean is not None:
                _update_running(running_mean, running_var, mu, var, n, cfg.update)
        else:
            mu = running_mean.reshape(1, c, 1)
            var = running_var.reshape(1, c, 1)
            xc = None
        rstd = 1.0 / xp.sqrt(var + cfg.eps)
        if rstd.dtype != x.dtype:  # running statistics of another dtype
            rstd = rstd.astype(x.dtype)
            mu = mu.astype(x.dtype)
        ctx.cfg = cfg
        ctx.p_shape = None if w is None and b is None else (w if w is not None else b).shape
        ctx.mu = mu
        ctx.rstd = rstd
        if lib is not None and cfg.w_on == "L":  # xhat is recomputed in the native backward
            ctx.save_for_backward(x, w, None)
            return _norm_native.l_affine(lib, x, w, b, mu, rstd)
        if ctx._record and cfg.batch and cfg.w_on == "L" and (w is not None or b is not None):
            # layer_norm / rms_norm training: keep xhat for the backward (see the NOTE).
            xhat = x * rstd if xc is x else _scale_rows(xc, rstd)
            y = _affine_from_xhat(xhat, w, b, cfg)
            ctx.save_for_backward(x, w, xhat)
            return y
        ctx.save_for_backward(x, w, None)
        return _affine(xp, x, xc, w, b, mu, rstd, cfg, lib)

    @staticmethod
    def backward(ctx, gy):
        x, w, xhat = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if _State.enabled:  # create_graph=True: differentiable ember ops
            return _composite_backward(ctx, gy, x, w, need_x, need_w, need_b)
        grads = _backward_arrays(ctx.xp, gy._data, x._data, None if w is None else w._data,
                                 None if xhat is None else xhat._data, ctx.mu, ctx.rstd,
                                 ctx.cfg, ctx.p_shape, need_x, need_w, need_b)
        return tuple(None if g is None else Tensor._make(g, False, None, 0) for g in grads) + (
            None, None, None)


def _native(x, cfg):
    """The native library when the passes take it (_norm_native), else None: per-channel
    weights with centring, or weights per L with statistics from the input."""
    if cfg.w_on == "C" and not cfg.center or cfg.w_on == "L" and not cfg.batch:
        return None
    return _norm_native.library(x)


def _update_running(running_mean, running_var, mu, var, n, momentum):
    """running = (1 - momentum) * running + momentum * batch, with the unbiased variance;
    instance statistics (one per A row) are averaged over A first, as PyTorch does."""
    unbiased = var * (n / (n - 1)) if n > 1 else var
    batch_var = unbiased[..., 0].mean(0)
    running_var *= 1 - momentum
    running_var += momentum * batch_var
    if mu is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mu[..., 0].mean(0)


def _weight_view(w, cfg):
    return w.reshape(-1, 1) if cfg.w_on == "C" else w.reshape(-1)


def _scale_rows(buf, s):
    """buf *= s in place (buf is a fresh array this module owns); returns buf."""
    buf *= s
    return buf


def _affine_from_xhat(xhat, w, b, cfg):
    """y = xhat * w + b into a fresh array (xhat is kept for the backward)."""
    if w is not None:
        y = xhat * _weight_view(w, cfg)
        if b is not None:
            y += _weight_view(b, cfg)
        return y
    return xhat + _weight_view(b, cfg)


def _affine(xp, x, xc, w, b, mu, rstd, cfg, lib=None):
    """The output from the statistics, writing into the fresh ``xc`` buffer when there is
    one (two passes after the statistics); one native pass with ``lib``."""
    if cfg.w_on == "C":
        # Per-channel scale and shift: y = x * scale + shift, no full-size temporaries.
        scale = rstd if w is None else rstd * _weight_view(w, cfg)
        if xc is None:
            shift = -mu * scale if b is None else _weight_view(b, cfg) - mu * scale
            if lib is not None:
                return _norm_native.affine(lib, x, scale, shift)
            scale = _channel_operand(xp, scale, x.shape)
            shift = _channel_operand(xp, shift, x.shape)
            y = xp.empty_like(x)
            for i, j in _chunks(xp, x.shape, x.itemsize):
                part = y[i:j]
                xp.multiply(x[i:j], _rows(scale, i, j), out=part)
                part += _rows(shift, i, j)
            return y
        scale = _channel_operand(xp, scale, x.shape)
        shift = None if b is None else _channel_operand(xp, _weight_view(b, cfg)[None], x.shape)
        for i, j in _chunks(xp, x.shape, x.itemsize):
            part = xc[i:j]
            part *= _rows(scale, i, j)
            if shift is not None:
                part += _rows(shift, i, j)
        return xc
    if xc is None or xc is x:  # no fresh buffer to write into (rms_norm)
        y = x * rstd
    else:
        y = xc
        y *= rstd
    if w is not None:
        y *= _weight_view(w, cfg)
    if b is not None:
        y += _weight_view(b, cfg)
    return y


def _backward_arrays(xp, g, x, w, xhat, mu, rstd, cfg, p_shape, need_x, need_w, need_b):
    """(gx, gw, gb) on arrays; see the NOTE in the module docstring for the pass counts.

    The sums of ``g * xhat`` are taken from centered values rather than folded into
    ``rstd * (sum(g * x) - mean * sum(g))``: that form saves a pass but cancels badly in
    float32 when the mean is large against the spread (the reason the forward takes two
    passes for the variance as well)."""
    if cfg.w_on == "C":
        return _backward_per_channel(xp, g, x, w, mu, rstd, cfg, p_shape, need_x, need_w,
                                     need_b)
    lib = _native(x, cfg)
    if lib is not None:
        gx, gw, gb = _norm_native.l_backward(lib, g, x, w, mu, rstd, cfg.center, need_x,
                                             need_w, need_b)
        return (gx, None if gw is None else gw.reshape(p_shape),
                None if gb is None else gb.reshape(p_shape))
    # Weight along L (layer_norm, rms_norm): xhat was kept by the forward when there is an
    # affine part (without one, y itself would be xhat, and in-place changes to y must stay
    # allowed as in PyTorch, so it is recomputed).
    if xhat is None:
        xhat = x * rstd if mu is None else x - mu
        if mu is not None:
            xhat *= rstd
    gw = gb = None
    rows = g.shape[2]
    if need_w:
        gw = xp.einsum("rl,rl->l", g.reshape(-1, rows), xhat.reshape(-1, rows))
        gw = gw.reshape(p_shape)
    if need_b:
        gb = xp.einsum("rl->l", g.reshape(-1, rows)).reshape(p_shape)
    if not need_x:
        return None, gw, gb
    # gx = G - mean(G) - xhat * mean(G xhat) along each row, with G = rstd * w * g: the
    # outer product rstd * w and one contiguous multiply build G, which saves a per-row
    # broadcast pass over the g * w, ..., gx *= rstd order (those cost ~3x a contiguous one
    # on rows of 128).
    # NOTE: the outer product and the per-row product go through einsum, faster than the
    # broadcasting multiplies here (W5's (1, 1024, 128) input-gradient part: 221 us vs
    # 260-278, min of 21 interleaved runs, process CPU time, one thread, load 3-4).
    n = _stat_count(x, cfg)
    wv = None if w is None else _weight_view(w, cfg)
    chunks = _row_chunks(xp, x)
    if chunks is None:
        return _rows_input_grad(xp, g, xhat, rstd, wv, n, cfg.center), gw, gb
    # Rows in L2-sized chunks (see the NOTE at _ROW_CHUNK_BYTES); each row's values are the
    # same as unchunked, bit for bit.
    length = x.shape[2]
    g2, xhat2 = g.reshape(1, -1, length), xhat.reshape(1, -1, length)
    rstd2 = rstd.reshape(1, -1, 1)
    gx = xp.empty(g2.shape, dtype=g.dtype)
    for i, j in chunks:
        _rows_input_grad(xp, g2[:, i:j], xhat2[:, i:j], rstd2[:, i:j], wv, n, cfg.center,
                         out=gx[:, i:j])
    return gx.reshape(x.shape), gw, gb


# NOTE (measured, ember issue 7; 1 thread, process CPU time, min/median of 15 interleaved
# rounds, load 1-3): layer_norm's input gradient runs over rows in chunks of about
# _ROW_CHUNK_BYTES once the input is over 4 chunks (the 4 full-size arrays of the backward
# then no longer fit in L2 together): backward arrays (2048, 256) float32 1594/1747 ->
# 1248/1410 us, (4096, 512) 6663/7194 -> 5790/6579, (2048, 768) 4623/5482 -> 3557/4480;
# (1024, 128), W5's 512 KB, stays whole (322/423 chunked vs 303/398). 512 KB chunks: between.
# The forward in chunks measured slower (fwd (2048, 768) 4861/6052 vs 3900/4244 us).
# Through F.layer_norm, fwd+bwd, old vs new interleaved in one process: (16, 128, 256)
# 2.54/2.70 -> 2.38/2.50 ms, (8, 256, 768) 8.07/8.96 -> 7.24/8.22, (4096, 512) 12.7/16.6 ->
# 10.6/13.7 (PyTorch 0.66/0.68, 1.99/2.19, 2.7/3.4); W5's (16, 64, 128) unchanged.
_ROW_CHUNK_BYTES = 256 << 10


def _row_chunks(xp, x):
    """(start, stop) row ranges of about _ROW_CHUNK_BYTES for an (A, C, L) weight-per-L
    input, or None to process it whole (small inputs, or not NumPy)."""
    rows = x.shape[0] * x.shape[1]
    length = x.shape[2]
    if xp is not numpy or x.nbytes <= 4 * _ROW_CHUNK_BYTES:
        return None
    step = max(1, _ROW_CHUNK_BYTES // max(length * x.itemsize, 1))
    return [(i, min(i + step, rows)) for i in range(0, rows, step)]


def _rows_input_grad(xp, g, xhat, rstd, wv, n, center, out=None):
    """gx = G - mean(G) - xhat * mean(G xhat) along each row of (A, C, L) arrays, with
    G = rstd * w * g (the weight-per-L input gradient); written into ``out`` if given."""
    if wv is None:
        G = g * rstd
    else:
        G = xp.einsum("ac,l->acl", rstd[..., 0], wv)
        G *= g
    gx = xp.einsum("acl,ac->acl", xhat, _rowdot(xp, G, xhat) * (-1.0 / n), out=out)
    gx += G
    if center:
        gx -= _rowsum(xp, G)[..., None] * (1.0 / n)
    return gx


def _backward_per_channel(xp, g, x, w, mu, rstd, cfg, p_shape, need_x, need_w, need_b):
    """Weight per C (batch_norm, instance_norm, group_norm): xhat is recomputed into the one
    fresh buffer, which then becomes the input gradient in place."""
    gw = gb = None
    k = rstd if w is None else rstd * _weight_view(w, cfg)
    lib = _native(x, cfg)
    if lib is not None:
        gx, sgx, sg = _norm_native.backward(lib, g, x, k, mu, rstd, cfg.batch, cfg.per_channel,
                                            need_x, need_w or need_b)
        if need_w:
            gw = sgx.sum(0).astype(x.dtype).reshape(p_shape)
        if need_b:
            gb = sg.sum(0).astype(x.dtype).reshape(p_shape)
        return gx, gw, gb
    if not cfg.batch:  # fixed statistics: gx = g * k, an affine map of x
        if need_w:
            xhat = x - _channel_operand(xp, mu, x.shape)
            xhat *= _channel_operand(xp, rstd, x.shape)
            gw = _rowdot(xp, g, xhat).sum(0).reshape(p_shape)
        if need_b:
            gb = _rowsum(xp, g).sum(0).reshape(p_shape)
        return (g * _channel_operand(xp, k, x.shape) if need_x else None), gw, gb
    want_sg = need_b or (need_x and cfg.center)
    buf, sgx, sg = _centre_chunks(xp, x, _channel_operand(xp, mu, x.shape) if cfg.center
                                  else None, g, want_sg)
    sgx *= rstd[..., 0]  # sum(g * xhat) over each row
    if need_w:
        gw = sgx.sum(0).reshape(p_shape)
    if need_b:
        gb = sg.sum(0).reshape(p_shape)
    if not need_x:
        return None, gw, gb
    # gx = k * (g - mean(g) - xhat * mean(g xhat)): the centered buffer times
    # -rstd * mean(g xhat) is the last term; then three passes in place, chunk by chunk.
    n = _stat_count(x, cfg)
    shape = x.shape
    a = _channel_operand(xp, rstd * (_reduce_rows(sgx, cfg)[..., None] * (-1.0 / n)), shape)
    mg = None
    if cfg.center:
        mg = _channel_operand(xp, _reduce_rows(sg, cfg)[..., None] * (1.0 / n), shape)
    k = _channel_operand(xp, k, shape)
    for i, j in _chunks(xp, shape, x.itemsize):
        part = buf[i:j]
        part *= _rows(a, i, j)
        part += g[i:j]
        if mg is not None:
            part -= _rows(mg, i, j)
        part *= _rows(k, i, j)
    return buf, gw, gb


def _composite_backward(ctx, gy, x, w, need_x, need_w, need_b):
    """The same gradients as _backward_arrays, written with ember ops (for create_graph)."""
    cfg = ctx.cfg
    dims = (0, 2) if cfg.per_channel else (2,)
    if cfg.batch:
        xc = x - reduce.mean(x, dims, keepdim=True) if cfg.center else x
        rstd = elementwise.rsqrt(reduce.mean(xc * xc, dims, keepdim=True) + cfg.eps)
    else:
        xc = x - _const(ctx.mu)
        rstd = _const(ctx.rstd)
    xhat = xc * rstd
    view = (x.shape[1], 1) if cfg.w_on == "C" else (x.shape[2],)
    wv = None if w is None else shape_ops.reshape(w, view)
    gx = gw = gb = None
    if need_x:
        gwx = gy if wv is None else gy * wv
        if cfg.batch:
            inner = gwx - xhat * reduce.mean(gwx * xhat, dims, keepdim=True)
            if cfg.center:
                inner = inner - reduce.mean(gwx, dims, keepdim=True)
            gx = inner * rstd
        else:
            gx = gwx * rstd
    if need_w:
        gw = shape_ops.reshape(reduce.sum_to(gy * xhat, view), ctx.p_shape)
    if need_b:
        gb = shape_ops.reshape(reduce.sum_to(gy, view), ctx.p_shape)
    return gx, gw, gb, None, None, None


def _const(array):
    return Tensor._make(array, False, None, 0)


# ---- argument checks --------------------------------------------------------------------------


def _check_tensor(op, name, t, allow_none=True):
    if t is None and allow_none:
        return
    if not isinstance(t, Tensor):
        raise errors.DTypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")


def _check_float(op, input):
    _check_tensor(op, "input", input, allow_none=False)
    if input._data.dtype.kind != "f":
        raise errors.DTypeError(
            f"{op}: expected a floating-point input, got {dtypes.name(input.dtype)}; convert it "
            "first, e.g. x.float()"
        )


def _check_param(op, name, t, shape):
    _check_tensor(op, name, t)
    if t is not None and tuple(t.shape) != tuple(shape):
        raise errors.ShapeError(
            f"{op}: expected {name} of shape {errors.shape_str(shape)}, got "
            f"{errors.shape_str(t.shape)}"
        )


def _as_3d(input, a, c, n):
    return shape_ops.reshape(input, (a, c, n))


def _bump(*tensors):
    for t in tensors:
        if t is not None:
            t._bump_version()


# ---- public functions ---------------------------------------------------------------------------


def _per_channel(op, input, running_mean, running_var, weight, bias):
    """(shape, N, C, spatial size) of an (N, C, *) input, after checking that every given
    per-channel tensor has shape (C,)."""
    shape = tuple(input.shape)
    n, c = shape[:2]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param(op, name, t, (c,))
    return shape, n, c, math.prod(shape[2:])


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05):
    """Normalize each channel (dim 1) over the batch and spatial dims, then scale and shift.

    In training (or without running statistics) the statistics come from the batch, and
    ``running_mean``/``running_var`` (if given) are updated in place:
    ``running = (1 - momentum) * running + momentum * batch_stat`` with the unbiased batch
    variance, as in PyTorch. Otherwise the running statistics normalize the input.

    Args:
        input: (N, C) or (N, C, *).
        running_mean, running_var: (C,) tensors or None.
        weight, bias: optional (C,) scale and shift.
        training (bool): use batch statistics (and update the running ones). Default: False.
        momentum (float): weight of the new batch statistic. Default: 0.1.
        eps (float): added to the variance for stability. Default: 1e-5.

    Example::

        >>> x = ember.randn(8, 3, 4, 4)
        >>> F.batch_norm(x, None, None, training=True).shape
        ember.Size([8, 3, 4, 4])
    """
    op = "batch_norm"
    _check_float(op, input)
    if input.ndim < 2:
        raise errors.ShapeError(
            f"{op}: expected an input of shape (N, C) or (N, C, *), got "
            f"{errors.shape_str(input.shape)}"
        )
    shape, n, c, rest = _per_channel(op, input, running_mean, running_var, weight, bias)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var must be given together")
    use_batch = training or running_mean is None
    if use_batch and n * rest <= 1 and training:
        raise ValueError(
            f"{op}: expected more than 1 value per channel when training, got input of shape "
            f"{errors.shape_str(shape)}"
        )
    update = momentum if training and running_mean is not None else None
    cfg = _Config(True, "C", True, use_batch, float(eps), update)
    y = _Normalize.apply(_as_3d(input, n, c, rest), weight, bias, running_mean, running_var,
                         cfg)
    if update is not None:
        _bump(running_mean, running_var)
    return shape_ops.reshape(y, shape)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-05):
    """Normalize each channel of each sample over its spatial dims, then scale and shift.

    With ``use_input_stats`` (default) the statistics come from each instance, and given
    running statistics are updated with their average over the batch; otherwise the running
    statistics normalize the input.

    Args:
        input: (N, C, *) with at least one spatial dim.
        running_mean, running_var: optional (C,) tensors.
        weight, bias: optional (C,) scale and shift.
        use_input_stats (bool): Default: True. momentum (float): Default: 0.1.
        eps (float): Default: 1e-5.
    """
    op = "instance_norm"
    _check_float(op, input)
    if input.ndim < 3:
        raise errors.ShapeError(
            f"{op}: expected an input of shape (N, C, *) with at least one spatial dim, got "
            f"{errors.shape_str(input.shape)}"
        )
    shape, n, c, rest = _per_channel(op, input, running_mean, running_var, weight, bias)
    if use_input_stats and rest <= 1:
        raise ValueError(
            f"{op}: expected more than 1 spatial element when using input statistics, got "
            f"input of shape {errors.shape_str(shape)}"
        )
    if not use_input_stats and running_mean is None:
        raise ValueError(f"{op}: use_input_stats=False needs running_mean and running_var")
    update = momentum if use_input_stats and running_mean is not None else None
    cfg = _Config(False, "C", True, bool(use_input_stats), float(eps), update)
    y = _Normalize.apply(_as_3d(input, n, c, rest), weight, bias, running_mean, running_var,
                         cfg)
    if update is not None:
        _bump(running_mean, running_var)
    return shape_ops.reshape(y, shape)


def _normalized(op, input, normalized_shape):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != normalized_shape or input.ndim < k:
        raise errors.ShapeError(
            f"{op}: expected input of shape (*, {', '.join(map(str, normalized_shape))}) "
            f"(normalized_shape={list(normalized_shape)}), got "
            f"{errors.shape_str(input.shape)}"
        )
    return normalized_shape


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05):
    """Normalize over the last ``len(normalized_shape)`` dims, then scale and shift.

    Args:
        input: (*, *normalized_shape).
        normalized_shape (int or tuple): the trailing shape to normalize over.
        weight, bias: optional tensors of ``normalized_shape``.
        eps (float): added to the variance. Default: 1e-5.

    Example::

        >>> F.layer_norm(ember.randn(2, 5, 10), (10,)).shape
        ember.Size([2, 5, 10])
    """
    op = "layer_norm"
    _check_float(op, input)
    norm = _normalized(op, input, normalized_shape)
    _check_param(op, "weight", weight, norm)
    _check_param(op, "bias", bias, norm)
    shape = tuple(input.shape)
    size = math.prod(norm)
    cfg = _Config(False, "L", True, True, float(eps))
    x = _as_3d(input, 1, math.prod(shape) // size if size else 0, size)
    return shape_ops.reshape(_Normalize.apply(x, weight, bias, None, None, cfg), shape)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``x / sqrt(mean(x**2) + eps) * weight`` over the last ``len(normalized_shape)`` dims.

    Args:
        input: (*, *normalized_shape).
        normalized_shape (int or tuple): the trailing shape to normalize over.
        weight: optional tensor of ``normalized_shape``.
        eps (float, optional): Default: the machine epsilon of the input's dtype
            (``ember.finfo(dtype).eps``), as in PyTorch.
    """
    op = "rms_norm"
    _check_float(op, input)
    norm = _normalized(op, input, normalized_shape)
    _check_param(op, "weight", weight, norm)
    if eps is None:
        eps = float(numpy.finfo(input._data.dtype).eps)
    shape = tuple(input.shape)
    size = math.prod(norm)
    cfg = _Config(False, "L", False, True, float(eps))
    x = _as_3d(input, 1, math.prod(shape) // size if size else 0, size)
    return shape_ops.reshape(_Normalize.apply(x, weight, None, None, None, cfg), shape)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05):
    """Normalize groups of channels of each sample, then scale and shift per channel.

    Args:
        input: (N, C, *) with C divisible by ``num_groups``.
        num_groups (int): number of groups the channels are split into.
        weight, bias: optional (C,) scale and shift.
        eps (float): Default: 1e-5.

    Example::

        >>> F.group_norm(ember.randn(2, 6, 4, 4), 3).shape
        ember.Size([2, 6, 4, 4])
    """
    op = "group_norm"
    _check_float(op, input)
    if input.ndim < 2:
        raise errors.ShapeError(
            f"{op}: expected an input of shape (N, C, *), got {errors.shape_str(input.shape)}"
        )
    shape = tuple(input.shape)
    n, c = shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1 or \
            c % num_groups:
        raise errors.ShapeError(
            f"{op}: the {c} channels of input {errors.shape_str(shape)} cannot be split into "
            f"num_groups={num_groups!r} groups; num_groups must be a positive divisor of C"
        )
    _check_param(op, "weight", weight, (c,))
    _check_param(op, "bias", bias, (c,))
    rest = math.prod(shape[2:])
    cfg = _Config(False, "C", True, True, float(eps))
    x = _as_3d(input, n, num_groups, (c // num_groups) * rest)
    y = _Normalize.apply(x, None, None, None, None, cfg)
    if weight is None and bias is None:
        return shape_ops.reshape(y, shape)
    y = shape_ops.reshape(y, (n, c, rest))
    if weight is not None:
        y = y * shape_ops.reshape(weight, (c, 1))
    if bias is not None:
        y = y + shape_ops.reshape(bias, (c, 1))
    return shape_ops.reshape(y, shape)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``input / max(norm_p(input, dim), eps)``: unit-norm vectors along ``dim``.

    Args:
        input (Tensor): any shape. p (float): the norm's exponent. Default: 2.
        dim (int or tuple): the dim(s) to normalize over. Default: 1.
        eps (float): lower bound of the divisor. Default: 1e-12.

    Example::

        >>> F.normalize(ember.tensor([[3.0, 4.0]]))
        tensor([[0.6000, 0.8000]])
    """
    if out is not None:
        raise TypeError("normalize: out= is not supported; use the returned tensor")
    _check_float("normalize", input)
    denom = elementwise.clamp(reduce.norm(input, p, dim, keepdim=True), min=eps)
    return input / denom


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Normalize each element by the squares of its ``size`` neighbours across channels:
    ``x / (k + alpha / size * sum(x**2 over the window)) ** beta`` (AlexNet's LRN).

    Args:
        input: (N, C, *) with at least one spatial dim.
        size (int): channels in the window (``size // 2`` before, ``(size - 1) // 2`` after).
        alpha (float): Default: 1e-4. beta (float): Default: 0.75. k (float): Default: 1.
    """
    op = "local_response_norm"
    _check_float(op, input)
    if input.ndim < 3:
        raise errors.ShapeError(
            f"{op}: expected an input of shape (N, C, *) with at least one spatial dim, got "
            f"{errors.shape_str(input.shape)}"
        )
    c = input.shape[1]
    sq = input * input
    pad = [0, 0] * (input.ndim - 2) + [size // 2, (size - 1) // 2]
    sq = shape_ops.pad(sq, tuple(pad))
    window = shape_ops.narrow(sq, 1, 0, c)
    for j in range(1, size):
        window = window + shape_ops.narrow(sq, 1, j, c)
    div = (window * (alpha / size) + k) ** beta
    return input / div


TENSOR_METHODS = {}
