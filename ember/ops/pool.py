"""Pooling: max_pool1d/2d/3d, avg_pool1d/2d/3d, adaptive_avg_pool1d/2d, adaptive_max_pool1d/2d.

Fixed windows are reduced one spatial axis at a time (separably): a max or sum over a 2-D
window equals the same reduction along W and then along H, so a kh x kw window costs
kh + kw vectorised passes over strided slices instead of a copy of every window. Each pass is
a loop over the kernel offsets of one axis (2 for a 2x2 pool); no loop touches pixels or batch
elements.

- max: each pass keeps the running maximum and a small integer ``code`` of the winning
  offset; the first maximum wins ties (a later offset must be strictly greater), and doing the
  last axis first makes that the first maximum in row-major window order, as in PyTorch.
  Indices are flat positions within each (unpadded) input plane, PyTorch's convention; the
  gradient scatters to them (``_PlaneScatter``), whose adjoint is a gather (``_PlaneGather``).
  Windows that tile the input (stride == kernel, no padding: the common 2x2 pool) take a
  faster path that keeps per-axis winner codes instead of indices (``_tile_max``,
  ``_TileScatter``/``_TileGather``), split over the batch on ember's threads; the 2x2 one
  (``nn.MaxPool2d(2)``) runs in C instead when the native kernels are built
  (``ops/_pool_native.py``: the same results bit for bit, 3.5-6x faster).
- avg: window sums (``_AvgPool``) and their adjoint (``_AvgPoolT``) divide by a separable
  divisor (the product of per-axis window lengths, with or without padding).
- adaptive avg: exact variable windows as products with averaging matrices (one per axis;
  row o averages input[floor(o*S/O) : ceil((o+1)*S/O)]), built from ember's matmul, so it
  needs no backward of its own.
- adaptive max: one gather of all windows (short ones padded by repeating their last
  element), argmax, then ``_PlaneGather``; sizes that divide use the fixed-window max pool.

NOTE (measured, 1 thread, (32, 64, 14, 14) forward+backward): adaptive avg to 5x5 2.0 ms vs
PyTorch 3.0 ms, to 1x1 0.5 vs 0.7; adaptive max to 5x5 6.8 ms vs 3.7. Max pool 2x2 on
(64, 16, 28, 28): see the NOTE of the tiling path (NumPy) and ops/_pool_native.py (C).
"""

import contextlib
import itertools

import numpy

from ember import errors
from ember.autograd.function import Function
from ember.backend import threads
from ember.ops import _pool_native
from ember.tensor import Tensor


# ---- geometry -------------------------------------------------------------------------------


class _Geom:
    """A pool over ``in_size`` with kernel ``k``: output ``out_size``; the padded buffer has
    ``pad`` zeros/-infs in front and is ``padded`` long. The tracer records this object, so
    exporters read the attributes (ceil_mode, count_include_pad, divisor_override too)."""

    __slots__ = ("in_size", "out_size", "k", "stride", "dilation", "pad", "padded", "divisor",
                 "ceil_mode", "count_include_pad", "divisor_override")

    def __init__(self, in_size, out_size, k, stride, dilation, pad, ceil_mode):
        self.in_size = in_size
        self.out_size = out_size
        self.k = k
        self.stride = stride
        self.dilation = dilation
        self.pad = pad
        self.ceil_mode = ceil_mode
        self.padded = tuple(
            max(s + 2 * p, (o - 1) * st + d * (kk - 1) + 1)
            for s, o, kk, st, d, p in zip(in_size, out_size, k, stride, dilation, pad)
        )
        self.divisor = None
        self.count_include_pad = None
        self.divisor_override = None

    def __repr__(self):
        return (f"PoolGeometry(in={self.in_size}, out={self.out_size}, kernel={self.k}, "
                f"stride={self.stride}, padding={self.pad}, dilation={self.dilation}, "
                f"ceil_mode={self.ceil_mode})")

    @property
    def needs_pad(self):
        return any(self.pad) or self.padded != self.in_size

    def window(self, axis, j):
        """Slice of the padded axis holding offset j of every window along it."""
        d, st, o = self.dilation[axis], self.stride[axis], self.out_size[axis]
        return slice(j * d, j * d + (o - 1) * st + 1, st)

    def overlapping(self):
        return any(st < d * (kk - 1) + 1 for st, d, kk in zip(self.stride, self.dilation, self.k))


def _tuple(value, n, name, op):
    if isinstance(value, (tuple, list)):
        if len(value) == 1 and n > 1:
            value = tuple(value) * n
        if len(value) != n:
            raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
        return tuple(int(v) for v in value)
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return (int(value),) * n


def _check_input(op, nd, input):
    if not isinstance(input, Tensor):
        raise errors.DTypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2) or any(s == 0 for s in input.shape[1:]):
        raise errors.ShapeError(
            f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input with "
            f"non-zero sizes except the batch, got input of shape {errors.shape_str(input.shape)}"
        )
    if input._data.dtype.kind != "f":
        raise errors.DTypeError(
            f"{op}: expected a floating-point input, got {input._data.dtype}; call .float() first"
        )


def _geometry(op, nd, size, kernel_size, stride, padding, dilation, ceil_mode):
    k = _tuple(kernel_size, nd, "kernel_size", op)
    st = k if stride is None or (isinstance(stride, (list, tuple)) and not stride) else (
        _tuple(stride, nd, "stride", op)
    )
    pad = _tuple(padding, nd, "padding", op)
    dil = _tuple(dilation, nd, "dilation", op)
    for name, values in (("kernel_size", k), ("stride", st), ("dilation", dil)):
        if any(v < 1 for v in values):
            raise ValueError(f"{op}: {name} must be positive, got {values}")
    for p, kk, d in zip(pad, k, dil):
        if p < 0 or 2 * p > d * (kk - 1) + 1:
            raise ValueError(
                f"{op}: padding should be at most half of the effective kernel size, got "
                f"padding={pad}, kernel_size={k}, dilation={dil}"
            )
    out = []
    for s, kk, s_, p, d in zip(size, k, st, pad, dil):
        span = d * (kk - 1) + 1
        num = s + 2 * p - span + (s_ - 1 if ceil_mode else 0)
        o = num // s_ + 1
        if ceil_mode and (o - 1) * s_ >= s + p:
            o -= 1  # the last window must start inside the input or its left padding
        out.append(o)
    if any(o < 1 for o in out):
        raise errors.ShapeError(
            f"{op}: input of spatial size {tuple(size)} is too small for kernel {k} (padding "
            f"{pad}, dilation {dil}): the output size would be {tuple(out)}; use a smaller "
            "kernel or more padding"
        )
    return _Geom(tuple(size), tuple(out), k, st, dil, pad, bool(ceil_mode))


def _padded(xp, x, g, fill):
    if not g.needs_pad:
        return x
    buf = xp.full(x.shape[:2] + g.padded, fill, dtype=x.dtype)
    inner = tuple(slice(p, p + s) for p, s in zip(g.pad, g.in_size))
    buf[(slice(None), slice(None)) + inner] = x
    return buf


def _along(axis, sl, nd):
    """Index tuple applying ``sl`` to spatial ``axis`` of an (N, C, *spatial) array."""
    return (slice(None),) * (2 + axis) + (sl,) + (slice(None),) * (nd - axis - 1)


def _batched(input, nd):
    from ember.ops import shape as shape_ops  # noqa: PLC0415

    if input.ndim == nd + 2:
        return input, False
    return shape_ops.reshape(input, (1,) + tuple(input.shape)), True


def _unbatch(out):
    from ember.ops import shape as shape_ops  # noqa: PLC0415

    return shape_ops.reshape(out, tuple(out.shape[1:]))


# ---- gather / scatter within planes ---------------------------------------------------------


def _global_index(xp, idx, plane):
    """In-plane indices of (N, C, ...) made flat positions in the whole (N*C*plane) array."""
    rows = idx.shape[0] * idx.shape[1]
    offsets = xp.arange(0, rows * plane, plane, dtype=idx.dtype).reshape(rows, 1)
    return (idx.reshape(rows, _prod(idx.shape[2:])) + offsets).reshape(-1)


class _PlaneGather(Function):
    """out[n, c, *o] = x[n, c].flat[idx[n, c, *o]]."""

    @staticmethod
    def forward(ctx, x, idx, unique):
        ctx.in_shape = x.shape
        ctx.unique = unique
        ctx.save_for_backward(idx)
        flat = _global_index(ctx.xp, idx, _prod(x.shape[2:]))
        return x.reshape(-1).take(flat).reshape(idx.shape)

    @staticmethod
    def backward(ctx, gy):
        (idx,) = ctx.saved_tensors
        return _PlaneScatter.apply(gy, idx, ctx.in_shape, ctx.unique), None, None


class _PlaneScatter(Function):
    """zeros(shape) with g[n, c, *o] added at [n, c].flat[idx[n, c, *o]] (the adjoint of the
    gather). ``unique`` says no two entries of one plane share an index (non-overlapping
    windows), so a plain assignment does the job (measured 2x faster than add.at)."""

    @staticmethod
    def forward(ctx, g, idx, shape, unique):
        xp = ctx.xp
        ctx.unique = unique
        ctx.save_for_backward(idx)
        out = xp.zeros(_prod(shape), dtype=g.dtype)
        flat = _global_index(xp, idx, _prod(shape[2:]))
        if unique:
            out[flat] = g.reshape(-1)
        else:
            xp.add.at(out, flat, g.reshape(-1))
        return out.reshape(shape)

    @staticmethod
    def backward(ctx, gz):
        (idx,) = ctx.saved_tensors
        return _PlaneGather.apply(gz, idx, ctx.unique), None, None, None


def _prod(values):
    p = 1
    for v in values:
        p *= v
    return p


# ---- max pooling ----------------------------------------------------------------------------


def _quiet(xp):
    """Silence NumPy's invalid-value warning (CuPy does not warn)."""
    return numpy.errstate(invalid="ignore") if xp is numpy else contextlib.nullcontext()


def _code_dtype(n):
    return numpy.int8 if n < 128 else (numpy.int16 if n < 32768 else numpy.int32)


def _max_windows(xp, x, g):
    """Max over every window and the code of its first argmax (offsets in row-major order).

    NOTE: ``v > best`` on the strided slices of the first pass runs ~3x slower in NumPy than
    ``(v - best) > 0`` (the subtraction vectorises over strided input, the comparison of its
    contiguous result is cheap); both are exact for floats (x - y == 0 only when x == y).
    A NaN in a window makes the value NaN (as in PyTorch), but its index may differ from
    PyTorch's, which points at the NaN.
    """
    nd = len(g.k)
    val = _padded(xp, x, g, -xp.inf)
    code = None
    inner = 1  # number of codes of the axes already reduced
    ctype = _code_dtype(_prod(g.k))
    for axis in reversed(range(nd)):
        best = best_code = None
        for j in range(g.k[axis]):
            sl = _along(axis, g.window(axis, j), nd)
            v = val[sl]
            if code is None:
                cand = ctype(j)
            else:
                cand = code[sl] + ctype(j * inner) if j else code[sl]
            if j == 0:
                best, best_code = v, cand
                continue
            with _quiet(xp):  # -inf - -inf in the padding is NaN, which is not > 0: fine
                better = xp.subtract(v, best) > 0  # strict: an earlier offset keeps ties
            best = xp.maximum(best, v, out=None if j == 1 else best)
            if j == 1 and code is None:
                best_code = better.view(ctype) if ctype(1).itemsize == 1 else better.astype(ctype)
            else:
                # A select written as arithmetic: xp.where on small ints measured 5-8x slower.
                best_code = best_code + (cand - best_code) * better
        if g.k[axis] == 1:
            best = best.copy() if code is None else best
            best_code = xp.zeros(best.shape, dtype=ctype) if code is None else best_code
        val, code = best, best_code
        inner *= g.k[axis]
    return val, code


def _flat_indices(xp, code, g):
    """Flat in-plane input positions of the winners from their offset codes."""
    nd = len(g.k)
    plane = [1] * nd
    for i in reversed(range(nd - 1)):
        plane[i] = plane[i + 1] * g.in_size[i + 1]
    base = 0
    for i in range(nd):
        start = xp.arange(g.out_size[i], dtype=numpy.int64) * g.stride[i] - g.pad[i]
        base = base + (start * plane[i]).reshape((-1,) + (1,) * (nd - 1 - i))
    table = numpy.zeros(_prod(g.k), dtype=numpy.int64)
    for c, offs in enumerate(itertools.product(*(range(kk) for kk in g.k))):
        table[c] = sum(j * d * p for j, d, p in zip(offs, g.dilation, plane))
    return xp.asarray(table).take(code.astype(numpy.intp, copy=False)) + base


# ---- max pooling over tiling windows (stride == kernel, no padding or dilation) ------------
#
# When the windows tile the input exactly (the common 2x2 stride 2 pool), each axis of size
# O*k is viewed as (P*O, k, Q) (P: the axes before it, Q: the ones after, already reduced), so
# window offset j along it is the plain slice [:, j] of that view: no padding, no index
# arithmetic. The max is taken separably (last axis first, as in _max_windows) and each axis
# keeps a small code of its winning offset (a bool for k == 2) at the size that axis reduced
# to. The gradient routes gy back through the axes in the opposite order, one multiply per
# offset and axis, into an empty (not zeroed) buffer: every element is written once. Both run
# over parts of the batch on ember's threads.
#
# NOTE (measured, bench/conv_micro.py --threads 1 --cpu-time, load average 3-4 from other
# processes; LeNet's (64, 16, 28, 28) and (64, 32, 14, 14), float32): max pool forward +
# backward 4.1-5.3 -> 2.7-3.2 ms and 2.3-2.5 -> 2.0 ms (PyTorch 7.7-8.7 and 3.9-4.1). The
# general path's flat indices, zero fill and index scatter cost more than the per-axis
# multiplies; the forward is the same separable passes without padding or int code
# arithmetic. Tried: np.where(code, gy, 0) 5x slower than the multiply, copyto(where=) 7x;
# a winner test as best != first offset (strided compare) 1.3x slower than the subtraction;
# de-interleaving the pairs first (one copy, then contiguous ops) no faster. Best of 80 calls
# with a second core free now and then: forward 1.25 -> 1.0 ms on two threads, backward the
# same (1.05 vs 1.02): the passes are memory-bound.
# NOTE (measured, one thread, CPU time, 30 calls, (64, 16, 28, 28) float32, warm): the parts
# of the 2x2 forward: W pass subtract 228-251 us, maximum 189-205, compare 43-46; H pass
# (half the data) subtract 266-372, maximum 238-287: its rows are 14 floats long, so NumPy
# runs its inner loop 14336 times per call. Reducing H first (rows of 28, contiguous) then W
# on half the data would not win (397-505 us for the H maximum alone) and flips the tie order
# to column-major. np.max / np.maximum.reduce over a trailing pair axis: 15-21 ms. Ember is
# already 0.43-0.46x PyTorch here (bench/conv_micro.py --threads 1 --cpu-time --only pool).


def _tiles(g):
    """Whether the windows tile the input: stride == kernel, no padding or dilation, and every
    input element in exactly one window."""
    return (not any(g.pad) and all(d == 1 for d in g.dilation) and g.stride == g.k
            and any(kk > 1 for kk in g.k)
            and all(o * kk == s for o, kk, s in zip(g.out_size, g.k, g.in_size)))


def _tile_axes(g):
    """The reduced axes in the order _tile_max reduces them (last axis first)."""
    return [axis for axis in reversed(range(len(g.k))) if g.k[axis] > 1]


def _tile_code_shape(n, c, g, axis):
    """Shape of an axis's winner codes: the input with ``axis`` and every later axis
    reduced."""
    return (n, c) + g.in_size[:axis] + g.out_size[axis:]


def _tile_max(xp, x, g, y=None, codes=None):
    """Max over tiling windows, and per reduced axis (in _tile_axes order) the codes of the
    winning offsets: bool for k == 2, else a small int. ``y`` and ``codes`` (shapes as
    returned) receive the results when given."""
    n, c = x.shape[:2]
    val = xp.ascontiguousarray(x)
    axes = _tile_axes(g)
    out_codes = []
    for i, axis in enumerate(axes):
        k = g.k[axis]
        v = val.reshape(-1, k, _prod(val.shape[3 + axis:]))
        rows, q = v.shape[0], v.shape[2]
        shape = _tile_code_shape(n, c, g, axis)
        code_out = None if codes is None else codes[i].reshape(rows, q)
        best_out = y.reshape(rows, q) if y is not None and i == len(axes) - 1 else None
        best = code = None
        for j in range(1, k):
            cand = v[:, j]
            prev = v[:, 0] if j == 1 else best
            with _quiet(xp):  # inf - inf is NaN, which is not > 0: the earlier offset stays
                diff = xp.subtract(cand, prev)  # strict > below: an earlier offset keeps ties
            if k == 2:
                code = xp.greater(diff, 0, out=code_out)
            elif j == 1:
                code = (diff > 0).astype(_code_dtype(k))
            else:
                # A select written as arithmetic: xp.where on small ints measured 5-8x slower.
                code += (code.dtype.type(j) - code) * (diff > 0)
            best = xp.maximum(prev, cand, out=best_out if j == 1 else best)
        if k > 2 and code_out is not None:
            code_out[...] = code
        val = best.reshape(shape)
        out_codes.append(code.reshape(shape))
    return val, tuple(out_codes)


def _tile_scatter(xp, gy, codes, g, in_shape, out=None):
    """The max's gradient: gy placed at each window's winner, zero elsewhere (into ``out``
    when given)."""
    val = gy
    axes = _tile_axes(g)
    for i in reversed(range(len(axes))):
        axis, code, k = axes[i], codes[i], g.k[axes[i]]
        shape = val.shape[:2 + axis] + (g.in_size[axis],) + val.shape[3 + axis:]
        dst = out if out is not None and i == 0 else xp.empty(shape, dtype=val.dtype)
        v = dst.reshape(-1, k, _prod(shape[3 + axis:]))
        src = val.reshape(v.shape[0], v.shape[2])
        code = code.reshape(src.shape)
        for j in range(k):
            hit = (code if j == 1 else xp.logical_not(code)) if k == 2 else code == j
            xp.multiply(src, hit, out=v[:, j])
        val = dst
    return val.reshape(in_shape)


def _tile_gather(xp, gz, codes, g):
    """The adjoint of _tile_scatter: each window's value at its winner."""
    val = xp.ascontiguousarray(gz)
    for axis, code in zip(_tile_axes(g), codes):
        k = g.k[axis]
        v = val.reshape(-1, k, _prod(val.shape[3 + axis:]))
        out = v[:, 0].copy()
        code = code.reshape(out.shape)
        for j in range(1, k):
            xp.copyto(out, v[:, j], where=code if k == 2 else code == j)
        val = out.reshape(val.shape[:2 + axis] + (g.out_size[axis],) + val.shape[3 + axis:])
    return val


def _tile_indices(xp, codes, g, x_shape):
    """Flat in-plane indices of the winners (only for return_indices): the positions of the
    input gathered like a gradient."""
    pos = xp.empty(x_shape, dtype=numpy.int64)
    pos[...] = xp.arange(_prod(g.in_size), dtype=numpy.int64).reshape(g.in_size)
    return _tile_gather(xp, pos, codes, g)


def _split_batch(xp, job, n, sample_bytes):
    """``job(start, stop)`` over parts of the batch on ember's threads, parts of at least
    _SPLIT_BYTES of input (a split costs ~0.1 ms: the dispatch, and the GIL handed back and
    forth around each NumPy call; see conv.py's _SPLIT_BYTES)."""
    threads.parallel(job, n, max(1, _SPLIT_BYTES // max(sample_bytes, 1)), xp)


_SPLIT_BYTES = 1 << 20


def _tile_max_split(xp, x, g):
    """_tile_max over parts of the batch on ember's threads."""
    n, c = x.shape[:2]
    y = xp.empty((n, c) + g.out_size, dtype=x.dtype)
    codes = []
    for axis in _tile_axes(g):
        dtype = bool if g.k[axis] == 2 else _code_dtype(g.k[axis])
        codes.append(xp.empty(_tile_code_shape(n, c, g, axis), dtype=dtype))

    def job(start, stop):
        _tile_max(xp, x[start:stop], g, y[start:stop], [a[start:stop] for a in codes])

    _split_batch(xp, job, n, x[:1].nbytes)
    return y, tuple(codes)


def _tile_scatter_split(xp, gy, codes, g, in_shape):
    """_tile_scatter over parts of the batch on ember's threads."""
    gx = xp.empty(in_shape, dtype=gy.dtype)
    n = in_shape[0]

    def job(start, stop):
        _tile_scatter(xp, gy[start:stop], [a[start:stop] for a in codes], g,
                      (stop - start,) + tuple(in_shape[1:]), gx[start:stop])

    _split_batch(xp, job, n, gx[:1].nbytes)
    return gx


class _TileScatter(Function):
    """gx = the tiling max pool's gradient for gy (winner codes from _tile_max)."""

    @staticmethod
    def forward(ctx, gy, codes, g, in_shape):
        ctx.codes, ctx.g = codes, g
        found = _pool_native.kernels(ctx.xp, g, (gy,), codes)
        if found is not None:
            return _pool_native.scatter(found, gy, codes, in_shape)
        return _tile_scatter_split(ctx.xp, gy, codes, g, in_shape)

    @staticmethod
    def backward(ctx, gz):
        return _TileGather.apply(gz, ctx.codes, ctx.g), None, None, None


class _TileGather(Function):
    """The adjoint of _TileScatter: the input's values at the winners."""

    @staticmethod
    def forward(ctx, gz, codes, g):
        ctx.codes, ctx.g, ctx.in_shape = codes, g, gz.shape
        found = _pool_native.kernels(ctx.xp, g, (gz,), codes)
        if found is not None:
            return _pool_native.gather(found, gz, codes)
        return _tile_gather(ctx.xp, gz, codes, g)

    @staticmethod
    def backward(ctx, gy):
        return _TileScatter.apply(gy, ctx.codes, ctx.g, ctx.in_shape), None, None


class _MaxPool(Function):
    """(max over each window, flat in-plane index of its first argmax)."""

    @staticmethod
    def forward(ctx, x, g, want_indices):
        xp = ctx.xp
        ctx.in_shape = x.shape
        if _tiles(g) and x.size:
            found = _pool_native.kernels(xp, g, (x,))
            if found is not None:  # the 2x2 pool in C (ops/_pool_native.py)
                y, codes = _pool_native.max_pool(found, x)
            else:
                y, codes = _tile_max_split(xp, x, g)
            ctx.codes, ctx.g = codes, g
            if want_indices:
                return y, _tile_indices(xp, codes, g, x.shape)
            return y, codes[-1].reshape(y.shape)  # not asked for: any array of y's shape
        ctx.codes = None
        y, code = _max_windows(xp, x, g)
        ctx.unique = not g.overlapping()
        if not (ctx._record or want_indices):
            return y, code
        idx = _flat_indices(xp, code, g)
        ctx.save_for_backward(idx)
        return y, idx

    @staticmethod
    def backward(ctx, gy, _gidx):
        if ctx.codes is not None:
            return _TileScatter.apply(gy, ctx.codes, ctx.g, ctx.in_shape), None, None
        (idx,) = ctx.saved_tensors
        return _PlaneScatter.apply(gy, idx, ctx.in_shape, ctx.unique), None, None


def _max_poolnd(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode,
                return_indices):
    _check_input(op, nd, input)
    x, unbatched = _batched(input, nd)
    g = _geometry(op, nd, x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    y, idx = _MaxPool.apply(x, g, bool(return_indices))
    if unbatched:
        y, idx = _unbatch(y), _unbatch(idx)
    return (y, idx) if return_indices else y


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over sliding windows of (N, C, L) or unbatched (C, L).

    Args:
        kernel_size: window length. stride: step (default: kernel_size).
        padding: implicit -inf on both sides (at most half the dilated kernel).
        dilation: spacing between window elements.
        ceil_mode: round the output length up, so a last partial window is kept.
        return_indices: also return, per output, the position of the maximum in the input
            row (the first one on ties), as int64; what max_unpool needs.
    """
    return _max_poolnd("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                       ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over sliding kH x kW windows of (N, C, H, W) or (C, H, W); see max_pool1d.

    Indices are flat positions h * W + w in each input plane, as in PyTorch.

    >>> ember.max_pool2d(ember.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    return _max_poolnd("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                       ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over sliding 3-D windows of (N, C, D, H, W) or (C, D, H, W); see max_pool1d."""
    return _max_poolnd("max_pool3d", 3, input, kernel_size, stride, padding, dilation,
                       ceil_mode, return_indices)


# ---- average pooling ------------------------------------------------------------------------


def _divisor(xp, g, count_include_pad, divisor_override, dtype):
    """1 / divisor for every output position (an array broadcasting over (N, C, *O))."""
    if divisor_override is not None:
        return 1.0 / divisor_override
    nd = len(g.k)
    inv = None
    for i in range(nd):
        start = numpy.arange(g.out_size[i]) * g.stride[i] - g.pad[i]
        end = numpy.minimum(start + g.k[i], g.in_size[i] + g.pad[i])
        if count_include_pad:
            count = end - start
        else:
            count = numpy.minimum(end, g.in_size[i]) - numpy.maximum(start, 0)
        count = count.reshape((-1,) + (1,) * (nd - 1 - i))
        inv = count if inv is None else inv * count
    return xp.asarray(1.0 / inv, dtype=dtype)


class _AvgPool(Function):
    """Window sums times 1/divisor."""

    @staticmethod
    def forward(ctx, x, g):
        xp = ctx.xp
        ctx.g = g
        nd = len(g.k)
        val = _padded(xp, x, g, 0)
        for axis in reversed(range(nd)):
            total = val[_along(axis, g.window(axis, 0), nd)].copy()
            for j in range(1, g.k[axis]):
                total += val[_along(axis, g.window(axis, j), nd)]
            val = total
        val *= g.divisor
        return val

    @staticmethod
    def backward(ctx, gy):
        return _AvgPoolT.apply(gy, ctx.g), None


class _AvgPoolT(Function):
    """The adjoint of _AvgPool: each output's gradient / divisor spread over its window."""

    @staticmethod
    def forward(ctx, gy, g):
        xp = ctx.xp
        ctx.g = g
        nd = len(g.k)
        val = gy * g.divisor
        for axis in range(nd):
            shape = val.shape[: 2 + axis] + (g.padded[axis],) + val.shape[3 + axis:]
            spread = xp.zeros(shape, dtype=val.dtype)
            for j in range(g.k[axis]):
                spread[_along(axis, g.window(axis, j), nd)] += val
            val = spread
        inner = tuple(slice(p, p + s) for p, s in zip(g.pad, g.in_size))
        if g.needs_pad:
            val = xp.ascontiguousarray(val[(slice(None), slice(None)) + inner])
        return val

    @staticmethod
    def backward(ctx, gz):
        return _AvgPool.apply(gz, ctx.g), None


def _avg_poolnd(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
    _check_input(op, nd, input)
    if divisor_override is not None and (
        isinstance(divisor_override, bool) or not isinstance(divisor_override, int)
        or divisor_override == 0
    ):
        raise ValueError(f"{op}: divisor_override must be a non-zero int, got {divisor_override!r}")
    x, unbatched = _batched(input, nd)
    g = _geometry(op, nd, x.shape[2:], kernel_size, stride, padding, 1, ceil_mode)
    g.count_include_pad = bool(count_include_pad)
    g.divisor_override = divisor_override
    g.divisor = _divisor(x.device.xp, g, count_include_pad, divisor_override,
                         x._data.dtype)
    y = _AvgPool.apply(x, g)
    return _unbatch(y) if unbatched else y


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Average over sliding windows of (N, C, L) or unbatched (C, L).

    Args:
        kernel_size: window length. stride: step (default: kernel_size).
        padding: implicit zeros on both sides (at most half the kernel).
        ceil_mode: round the output length up, keeping a last partial window.
        count_include_pad: divide by the window length including padded zeros (True) or by
            the number of real input elements in the window (False). A partial window past
            the padding (ceil_mode) is always divided by its clipped length, like PyTorch.
    """
    return _avg_poolnd("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average over sliding kH x kW windows of (N, C, H, W) or (C, H, W); see avg_pool1d.

    divisor_override: if given, every window sum is divided by this number instead.
    """
    return _avg_poolnd("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average over sliding 3-D windows of (N, C, D, H, W) or (C, D, H, W); see avg_pool2d."""
    return _avg_poolnd("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)


# ---- adaptive pooling -----------------------------------------------------------------------


def _adaptive_sizes(op, nd, size, output_size):
    if output_size is None or isinstance(output_size, int):
        out = (output_size,) * nd
    else:
        out = tuple(output_size)
        if len(out) == 1 and nd > 1:
            out = out * nd
    if len(out) != nd:
        raise ValueError(f"{op}: output_size must be an int or {nd} ints (or None), got "
                         f"{output_size!r}")
    out = tuple(s if o is None else int(o) for s, o in zip(size, out))
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return out


def _bounds(s, o):
    """PyTorch's adaptive windows: [floor(i*s/o), ceil((i+1)*s/o)) for i < o."""
    i = numpy.arange(o)
    return (i * s) // o, -((-(i + 1) * s) // o)


def _averaging_matrix(xp, s, o, dtype):
    start, end = _bounds(s, o)
    cols = numpy.arange(s)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return xp.asarray(inside / (end - start)[:, None], dtype=dtype)


def _adaptive_avg_poolnd(op, nd, input, output_size):
    from ember.ops import linalg, reduce  # noqa: PLC0415
    from ember.ops import shape as shape_ops  # noqa: PLC0415

    _check_input(op, nd, input)
    size = tuple(input.shape[-nd:])
    out = _adaptive_sizes(op, nd, size, output_size)
    if out == size:
        return input
    if all(o == 1 for o in out):
        return reduce.mean(input, tuple(range(-nd, 0)), keepdim=True)
    xp, dtype = input.device.xp, input._data.dtype
    y = input
    # Reduce the last axis with y @ P^T, then move each earlier axis last in turn.
    for axis in reversed(range(nd)):
        dim = input.ndim - nd + axis
        if out[axis] != size[axis]:
            p = _averaging_matrix(xp, size[axis], out[axis], dtype)
            pt = Tensor._make(xp.ascontiguousarray(p.T), False, None, 0)
            y = shape_ops.transpose(linalg.matmul(shape_ops.transpose(y, dim, -1), pt), dim, -1)
    return y


def adaptive_avg_pool1d(input, output_size):
    """Average pooling of (N, C, L) or (C, L) to length ``output_size``; windows are
    [floor(i*L/out), ceil((i+1)*L/out)), so sizes that do not divide are exact, like PyTorch."""
    return _adaptive_avg_poolnd("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling of (N, C, H, W) or (C, H, W) to ``output_size`` (an int, a pair, or
    None entries that keep the input size); see adaptive_avg_pool1d.

    >>> ember.adaptive_avg_pool2d(ember.ones(2, 3, 7, 5), (2, None)).shape
    ember.Size([2, 3, 2, 5])
    """
    return _adaptive_avg_poolnd("adaptive_avg_pool2d", 2, input, output_size)


def _adaptive_argmax(xp, x, out):
    """Flat in-plane index of the first maximum of every adaptive window."""
    nd = len(out)
    size = x.shape[2:]
    index = []
    starts, lengths, spans = [], [], []
    for i, (s, o) in enumerate(zip(size, out)):
        start, end = _bounds(s, o)
        span = int((end - start).max())
        # Clip short windows to repeat their last element: repeats come after the element
        # itself, so the first maximum is unchanged.
        pos = numpy.minimum(start[:, None] + numpy.arange(span), (end - 1)[:, None])
        shape = [1] * (2 * nd)
        shape[2 * i], shape[2 * i + 1] = o, span
        index.append(xp.asarray(pos.reshape(shape)))
        starts.append(start)
        lengths.append(end - start)
        spans.append(span)
    windows = x[(slice(None), slice(None)) + tuple(index)]  # (N, C, O0, L0, O1, L1, ...)
    order = (0, 1) + tuple(2 + 2 * i for i in range(nd)) + tuple(3 + 2 * i for i in range(nd))
    windows = windows.transpose(order).reshape(x.shape[:2] + tuple(out) + (_prod(spans),))
    arg = windows.argmax(axis=-1)
    flat = 0
    plane = 1
    for i in reversed(range(nd)):
        arg, j = xp.divmod(arg, spans[i])
        shape = (-1,) + (1,) * (nd - 1 - i)
        start = xp.asarray(starts[i]).reshape(shape)
        last = xp.asarray(lengths[i] - 1).reshape(shape)
        flat = flat + (start + xp.minimum(j, last)) * plane
        plane *= size[i]
    return flat.astype(numpy.int64)


def _adaptive_max_poolnd(op, nd, input, output_size, return_indices):
    _check_input(op, nd, input)
    x, unbatched = _batched(input, nd)
    out = _adaptive_sizes(op, nd, tuple(x.shape[2:]), output_size)
    if all(s % o == 0 for s, o in zip(x.shape[2:], out)):
        # Equal windows that tile the input: the fixed-window pool is the same op, faster.
        k = tuple(s // o for s, o in zip(x.shape[2:], out))
        g = _Geom(tuple(x.shape[2:]), out, k, k, (1,) * nd, (0,) * nd, False)
        y, idx = _MaxPool.apply(x, g, bool(return_indices))
        if unbatched:
            y, idx = _unbatch(y), _unbatch(idx)
        return (y, idx) if return_indices else y
    idx_data = _adaptive_argmax(x.device.xp, x._data, out)
    idx = Tensor._make(idx_data, False, None, 0)
    unique = all(s % o == 0 for s, o in zip(x.shape[2:], out))
    y = _PlaneGather.apply(x, idx, unique)
    if unbatched:
        y, idx = _unbatch(y), _unbatch(idx)
    return (y, idx) if return_indices else y


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling of (N, C, L) or (C, L) to length ``output_size`` with PyTorch's adaptive
    windows; ``return_indices`` also gives the position of each maximum in its row."""
    return _adaptive_max_poolnd("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling of (N, C, H, W) or (C, H, W) to ``output_size`` (int, pair, None entries
    keep the size); indices are flat h * W + w positions in each plane."""
    return _adaptive_max_poolnd("adaptive_max_pool2d", 2, input, output_size, return_indices)


TENSOR_METHODS = {}
