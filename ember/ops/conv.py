"""Convolutions: conv1d/2d/3d and conv_transpose1d/2d/3d, one N-d implementation.

Two ways to compute, both GEMMs over the batch:

1. Stride 1 with the output as large as the input ('same': 3x3 with padding 1, padding='same',
   1x1), the common case, see ``_same`` below: the column matrix is made from shifted copies of
   whole flattened planes, chunk by chunk of the batch so that each chunk's GEMM reads it from
   the L2 cache, and is never kept between forward and backward. Forward, input and weight
   gradient split the batch over ember's threads (backend/threads.py). 1-D and 2-D convs with
   one group run the row-shift form of it (comment above _row_plan) in C on ember's native
   pool instead, when the kernels are built (_conv_native, _native_rows).
2. Everything else (strides, other paddings), general im2col over the whole batch:

- ``_im2col`` pads the input once and copies an ``as_strided`` window view ordered
  ``(C, *K, N, *O)`` into the column matrix ``col``, i.e. a (C*K, N*O) matrix. That order keeps
  the innermost copy loop along the output width (a long, regular stride), measured 5-10x
  faster than the (N*O, C*K) order whose inner loop is the kernel width.
- forward: ``y[n] = W @ col[:, n]`` as one batched matmul that writes (N, C_out, *O) directly;
  groups are a batch axis of the same matmul. Bias is added in place.
- input gradient (= transposed convolution): ``gcol = W^T @ gy`` (gy as a (C_out, N*O)
  matrix), then ``_col2im`` adds each kernel offset's slab back into a padded buffer: a loop
  over the kernel offsets (``prod(K)`` iterations, 9 for 3x3), each a vectorised strided add
  over the whole batch. The alternative without that loop, a convolution of the padded gy
  with the flipped kernel (stride 1 only), measured no faster on the LeNet shapes.
- weight gradient: ``col @ gy^T``: one GEMM per group.

Three Functions close under differentiation, so gradients of any order work:
``_Conv`` (y = conv(x, w) + b), ``_ConvTranspose`` (its input gradient, = conv_transpose) and
``_ConvWeight`` (its weight gradient). Each one's backward is written with the other two.

NOTE: on the im2col path ``_Conv`` keeps its column matrix for the weight gradient (the column
copy is the expensive part of computing it again; the price is prod(K) times the input's
memory until backward). When the backward is not recorded (``create_graph=False``) it runs on
arrays (``_Conv._backward_arrays``): it reuses ``col`` and transposes gy once for the weight
and the bias gradient. With ``create_graph=True`` it calls ``_ConvTranspose``/``_ConvWeight``,
which recompute but are differentiable. Both return the same values: ordinary gradient checks
test the first path, double-backward checks the second. Both paths are chosen by the geometry
alone, so the Functions of one graph always agree on which one they use.
"""

import functools
import itertools
import threading

import numpy

from ember import errors
from ember.autograd import grad_mode
from ember.autograd.function import Function
from ember.backend import threads
from ember.ops import _conv_native
from ember.tensor import Tensor

_State = grad_mode._State


# ---- geometry -------------------------------------------------------------------------------


class _Geom:
    """Everything about one convolution's shape: the conv maps ``x`` (N, C_in, *in_size) with
    weight (C_out, C_in/groups, *k) to ``y`` (N, C_out, *out_size). A transposed convolution
    uses the geometry of the conv it is the gradient of (its output is ``x``), plus the
    ``output_padding`` that chose ``in_size``. The tracer records this object, so exporters
    read the attributes here."""

    __slots__ = ("in_size", "out_size", "k", "stride", "dilation", "pad_lo", "pad_hi",
                 "padded", "groups", "output_padding")

    def __init__(self, in_size, out_size, k, stride, dilation, pad_lo, pad_hi, groups,
                 output_padding=None):
        self.in_size = tuple(in_size)
        self.out_size = tuple(out_size)
        self.k = tuple(k)
        self.stride = tuple(stride)
        self.dilation = tuple(dilation)
        self.pad_lo = tuple(pad_lo)
        self.pad_hi = tuple(pad_hi)
        self.groups = groups
        self.output_padding = output_padding or (0,) * len(self.k)
        # The padded buffer must hold the input and every window that out_size asks for.
        self.padded = tuple(
            max(lo + s + hi, (o - 1) * st + d * (kk - 1) + 1)
            for s, o, kk, st, d, lo, hi in zip(
                in_size, out_size, k, stride, dilation, pad_lo, pad_hi
            )
        )

    def __repr__(self):
        return (f"ConvGeometry(in={self.in_size}, out={self.out_size}, kernel={self.k}, "
                f"stride={self.stride}, padding={self.pad_lo}/{self.pad_hi}, "
                f"dilation={self.dilation}, groups={self.groups}, "
                f"output_padding={self.output_padding})")

    @property
    def needs_pad(self):
        return any(self.pad_lo) or self.padded != self.in_size


def _im2col(xp, x, g):
    """The column matrix of ``x`` (N, C, *S): shape (C, *K, N, *O), contiguous."""
    n, c = x.shape[:2]
    if g.needs_pad:
        buf = xp.zeros((n, c) + g.padded, dtype=x.dtype)
        inner = tuple(slice(lo, lo + s) for lo, s in zip(g.pad_lo, g.in_size))
        buf[(slice(None), slice(None)) + inner] = x
    else:
        buf = x
    sn, sc = buf.strides[:2]
    ss = buf.strides[2:]
    shape = (c,) + g.k + (n,) + g.out_size
    strides = (
        (sc,)
        + tuple(s * d for s, d in zip(ss, g.dilation))
        + (sn,)
        + tuple(s * st for s, st in zip(ss, g.stride))
    )
    windows = xp.lib.stride_tricks.as_strided(buf, shape=shape, strides=strides)
    return xp.ascontiguousarray(windows)


def _col2im(xp, gcol, g, n):
    """Adjoint of _im2col: ``gcol`` (groups, prod(K), C/groups, N*O) summed back into
    (N, C, *S). Each kernel offset's slab is contiguous (measured ~2x faster to add than
    strided slabs); the buffer is channels-first, transposed once at the end."""
    groups, _, cg = gcol.shape[:3]
    buf = xp.zeros((groups, cg, n) + g.padded, dtype=gcol.dtype)
    lead = (slice(None),) * 3
    for i, offset in enumerate(itertools.product(*(range(kk) for kk in g.k))):
        window = tuple(
            slice(j * d, j * d + (o - 1) * st + 1, st)
            for j, d, o, st in zip(offset, g.dilation, g.out_size, g.stride)
        )
        buf[lead + window] += gcol[:, i].reshape((groups, cg, n) + g.out_size)
    buf = buf.reshape((groups * cg, n) + g.padded)
    if g.needs_pad:
        inner = tuple(slice(lo, lo + s) for lo, s in zip(g.pad_lo, g.in_size))
        buf = buf[(slice(None), slice(None)) + inner]
    return xp.ascontiguousarray(buf.swapaxes(0, 1))


def _channels_first(xp, a):
    """(N, C, *O) -> the contiguous matrix (C, N*O)."""
    c = a.shape[1]
    return xp.ascontiguousarray(a.swapaxes(0, 1)).reshape(c, a.size // c if c else 0)


def _forward_arrays(xp, x, w, b, g):
    """y = conv(x, w) + b on arrays; returns (y, col).

    The GEMM runs batched over N on a transposed view of ``col`` (each sample's (C*K, O)
    block has unit stride, so BLAS takes it as is) and writes (N, C_out, O) directly: no
    transpose copy of the output, and measured no slower than one (C_out, N*O) GEMM.
    """
    col = _im2col(xp, x, g)
    n, cout, groups = x.shape[0], w.shape[0], g.groups
    o, ckg = _prod(g.out_size), w.shape[1] * _prod(g.k)  # explicit sizes: N may be 0
    cols = col.reshape(groups, ckg, n, o).transpose(2, 0, 1, 3)  # (N, g, C*K/g, O)
    wm = w.reshape(1, groups, cout // groups, ckg)
    y = xp.matmul(wm, cols).reshape(n, cout, o)
    if b is not None:
        y += b.reshape(cout, 1)
    return y.reshape((n, cout) + g.out_size), col


def _input_grad_arrays(xp, gy, w, b, g, gy2=None):
    """conv's input gradient (= transposed conv of ``gy`` with ``w``), plus ``b`` per channel.

    One GEMM per group, ``W^T @ gy2`` with gy2 the (C_out, N*O) matrix of gy (pass it when
    already computed), writes ``gcol`` as (groups, prod(K), C/groups, N*O) for _col2im.
    """
    n, cout, cin_g, groups = gy.shape[0], w.shape[0], w.shape[1], g.groups
    if gy2 is None:
        gy2 = _channels_first(xp, gy)
    kk, cog, m = _prod(g.k), cout // groups, gy2.shape[1]
    # W^T with rows ordered (offset, channel): one (K*C/g, C_out/g) matrix per group (a tiny
    # copy), so each group is one GEMM rather than prod(K) skinny ones.
    wt = w.reshape(groups, cog, cin_g, kk).transpose(0, 3, 2, 1).reshape(groups, kk * cin_g, cog)
    gcol = xp.matmul(wt, gy2.reshape(groups, cog, m)).reshape(groups, kk, cin_g, m)
    out = _col2im(xp, gcol, g, n)
    if b is not None:
        out += b.reshape((-1,) + (1,) * len(g.k))
    return out


def _weight_grad_arrays(xp, col, gy2, w_shape, g):
    """conv's weight gradient from the column matrix and gy as a (C_out, N*O) matrix.

    Computed as the transpose, ``col @ gy2^T``: that orientation measured ~1.8x faster in
    OpenBLAS than ``gy2 @ col^T`` for the LeNet shapes."""
    groups, m = g.groups, gy2.shape[1]
    cols = col.reshape(groups, col.shape[0] * _prod(g.k) // groups, m)
    gwt = xp.matmul(cols, gy2.reshape(groups, gy2.shape[0] // groups, m).swapaxes(1, 2))
    return xp.ascontiguousarray(gwt.swapaxes(1, 2)).reshape(w_shape)


# ---- stride 1 with out_size == in_size ('same'): shifted copies of whole planes ---------------
#
# A plane flattened and shifted by a kernel offset's displacement is that offset's row of the
# column matrix, right except where the offset reads padding; those entries (wrapped onto a
# neighbouring row, or left unwritten at the plane's ends) are zeroed afterwards by one strided
# fill per axis and kernel index. The adjoint (input gradient) zeroes the same entries of
# W^T gy and adds each offset's slab back shifted the other way.
#
# NOTE (measured on the LeNet conv 16->32, 64 x 16 x 14 x 14, 3x3 pad 1; 1 thread, OpenBLAS
# SkylakeX kernels, process CPU time on the shared 2-core Xeon, load average 6-10, medians):
# - column copy: the as_strided im2col makes one run of 14 floats per output row (129k runs),
#   1.0-1.5 ms; 9 shifted plane copies 0.47 ms + the zero fills 0.25 ms.
# - GEMM: the whole batch's 7.2 MB column matrix streamed through OpenBLAS ran at ~60 GFLOP/s,
#   the same GEMMs on L2-resident chunks of 4-8 samples at 85-145: hence the chunks of
#   ~_CHUNK_BYTES (0.5, 1 and 2 MB measured alike; 256 KB slower).
# - a fresh multi-MB buffer per call is page-faulted in (mmap); chunks live in a per-thread
#   scratch buffer instead (_scratch), and the weight gradient makes its chunks again rather
#   than keeping 7.2 MB from the forward.
# - tried and dropped: a channels-first "gapped" layout (zero gaps between rows and samples,
#   one GEMM on the padded grid, crop after): 0.5-0.9 ms of crops and transposes ate the gain;
#   input-gradient adds from (C, K, B, S)-ordered chunk slabs: short misaligned runs, 5x slower
#   per element than the (K, C*S)-ordered slabs used now; the input gradient as 9 per-offset
#   GEMMs over the whole batch: the same at 16 channels, 2x slower at 1 channel; one backward
#   pass sharing a channels-first gy chunk (one GEMM per chunk for gx, adds into a (C, N*S)
#   gx): 13.3 vs 11.4 ms forward+backward, and no better at 2 threads.
# Result (bench/conv_micro.py --threads 1 --cpu-time --im2col): conv 16->32 forward+backward
# 20.0 -> 10.9 ms (PyTorch 5.7), forward 5.1 -> 3.3 (1.6); conv 1->16 fwd+weight grad 3.2 ->
# 3.1 (2.0); LeNet step 46.2 -> 38.0 ms (PyTorch 25.9), i.e. 1.79x -> 1.47x PyTorch.
#
# Threads: forward, input gradient and weight gradient each split the batch into contiguous
# parts, one per ember thread (_over_batch, backend/threads.py), each part running its own
# chunks (own scratch buffer, BLAS on one thread) into disjoint slices of the output; the
# weight gradient sums per-part partial results at the end. With one thread nothing changes.
# NOTE (measured on the shared 2-core machine under load average 2.3-3.3 from other
# processes, so only the best of 60-80 interleaved single calls shows what a free second core
# gives; wall clock, 1 -> 2 ember threads, three runs): W3's 32->32 32x32 batch 32 forward
# 9.9 -> 6.7 ms in the best run (1.2-1.5x across runs), input gradient 8.8 -> 5.2 (1.3-1.7x),
# weight gradient 9.4 -> 5.2 (1.3-1.8x); LeNet conv 16->32 forward 1.7 -> 1.4 ms in the best
# run but 0.84-1.2x across runs, its gradients 0.93-1.23x. Splitting costs no CPU time of its
# own: two parts run one after the other took as long as one (0.63 vs 0.65 ms, conv 1->16
# forward). Not measured on an idle machine (none was to be had).
# - tried and dropped: no column matrix at all, the conv as 9 GEMMs per chunk of a zero-padded
#   channels-first copy of x, accumulated in place by cblas_sgemm (beta=1, through ctypes):
#   the GEMMs with K = C_in run slower than one with K = 9*C_in, which ate the copies saved:
#   W3's 32->32 forward no faster (median 14.8 vs 14.9 ms), LeNet conv 16->32 2.4 -> 4.1 ms,
#   conv 1->16 0.5 -> 1.3 (minimums, 1 thread).

_CHUNK_BYTES = 1 << 20
_ROWS_MIN_K = 48  # see the NOTE at _row_plan
_ROWS_MIN_GRAD = 96  # the same for both gradients, see the NOTE at _rows_backward
_ROWS_STACK_K = 96  # see the NOTE at _rows_product
_WGRAD_SPLIT = 4096
_WGRAD_PER_SAMPLE_ROWS = 128
# NOTE: a batch is split over ember's threads (backend/threads.py) in parts of at least this
# many bytes of columns. A split costs more than the ~20 us of a dispatch: the two threads
# hand the GIL to each other around each of a part's ~20 NumPy calls, and under load each
# hand-over waits for a wake-up. LeNet conv1's forward (1.8 MB of columns, 0.39 ms) took
# 0.60 ms in two parts of 32 samples (the caller's part 0.52 ms of it); conv2 (7.2 MB) and
# W3's convs (38 MB) gain, see the NOTE above.
_SPLIT_BYTES = 2 << 20
# NOTE: a part of a split batch runs in chunks of up to 4 MB of columns (_PART_CHUNK_BYTES)
# rather than 1 MB: each NumPy call of a part hands the GIL over once, and fewer, larger calls
# made the split pay. Best of 30 calls (OPENBLAS_NUM_THREADS=1, load ~1-2), 1 MB chunks on
# one thread vs 1 MB / 4 MB chunks in two parts: LeNet conv2 forward 1.78 vs 2.12 / 1.70
# ms, input gradient 1.67 vs 1.84 / 1.40, weight gradient 2.28 vs 2.28 / 1.67; W3's 32->32
# forward 11.5 vs 8.7 / 7.0, input gradient 9.9 vs 7.5 / 7.3, weight gradient 10.5 vs 7.7 /
# 8.0. One thread keeps 1 MB chunks (GEMMs on L2-resident columns, see above).
_PART_CHUNK_BYTES = 4 << 20


def _same(g):
    """Whether the shifted-copy path applies: stride 1 and out_size == in_size (for example
    a 3x3 kernel with padding 1, or padding='same')."""
    return g.out_size == g.in_size and all(s == 1 for s in g.stride)


def _outside(a, s):
    """The positions along an axis of size s whose read at displacement a falls outside."""
    return slice(0, min(-a, s)) if a < 0 else slice(max(s - a, 0), s)


@functools.lru_cache(maxsize=256)
def _plan(in_size, k, dilation, pad_lo):
    """What the shifted copies need of a geometry, worked out once per geometry (it cost
    ~0.1 ms of Python per chunk): per kernel offset (row-major) its displacement per axis and
    in the flattened plane, and the index tuples of the padding reads, as (axis, kernel
    index along it, slice of positions) to be placed into an array's index."""
    nd = len(k)
    plane = [1] * nd
    for i in reversed(range(nd - 1)):
        plane[i] = plane[i + 1] * in_size[i + 1]
    offsets = []
    for offs in itertools.product(*(range(kk) for kk in k)):
        disp = tuple(j * d - lo for j, d, lo in zip(offs, dilation, pad_lo))
        offsets.append((disp, sum(a * p for a, p in zip(disp, plane))))
    outside = []
    for i in range(nd):
        for j in range(k[i]):
            a = j * dilation[i] - pad_lo[i]
            if a:
                outside.append((i, j, _outside(a, in_size[i])))
    return tuple(offsets), tuple(outside)


def _offsets(g):
    """Per kernel offset (row-major): its displacement per axis and in the flattened plane."""
    return _plan(g.in_size, g.k, g.dilation, g.pad_lo)[0]


def _zero_padding_reads(a, lead, g):
    """Zero the entries of ``a`` (``lead`` axes, *K, one axis, *S) that read padding: one
    strided fill per axis and kernel index along it (6 for 3x3 with padding 1)."""
    nd = len(g.k)
    for i, j, positions in _plan(g.in_size, g.k, g.dilation, g.pad_lo)[1]:
        index = [slice(None)] * a.ndim
        index[lead + i] = j
        index[lead + nd + 1 + i] = positions
        a[tuple(index)] = 0


def _same_cols(x, g, buf):
    """The columns of x (B, C, *S) in ``buf``, laid out (C, K, B, S): row (c, k) of sample b is
    plane c of x[b] flattened and shifted by offset k, zero where the offset reads padding."""
    bsz, c = x.shape[:2]
    sp, kk = _prod(g.in_size), _prod(g.k)
    cols = buf[: c * kk * bsz * sp].reshape(c, kk, bsz, sp)
    src = x.reshape(bsz, c, sp).swapaxes(0, 1)
    for k, (_, s) in enumerate(_offsets(g)):
        if s >= 0:
            cols[:, k, :, : max(sp - s, 0)] = src[:, :, s:]
        else:
            cols[:, k, :, min(-s, sp):] = src[:, :, : max(sp + s, 0)]
    _zero_padding_reads(cols.reshape((c,) + g.k + (bsz,) + g.in_size), 1, g)
    return cols


def _over_batch(xp, job, n, sample_bytes):
    """``job(start, stop)`` over parts of the batch on ember's threads (one part, on the
    caller, with one thread or a small batch).

    NOTE: NumPy releases the GIL in the copies and GEMMs of a part, so two parts run side by
    side; numbers in the NOTEs at _CHUNK_BYTES and _SPLIT_BYTES."""
    threads.parallel(job, n, max(1, _SPLIT_BYTES // max(sample_bytes, 1)), xp)


def _same_forward(xp, x, w, b, g):
    """y = conv(x, w) + b, chunk by chunk of the batch, parts of the batch on ember's
    threads. 1-D and 2-D convs take the row-shift path (_rows_forward); 3-D ones the
    column matrix of _same_cols.

    NOTE: with one group the bias rides in the GEMM, as a column of W against a row of ones
    under the chunk's columns: adding it to y afterwards was a pass over the whole output,
    0.30 ms of LeNet conv1's 0.67 ms forward (0.10 ms for conv2)."""
    if len(g.k) <= 2 and (w.shape[1] * g.k[-1] >= _ROWS_MIN_K or _native_rows(g, xp, x, w)):
        return _rows_forward(xp, x, w, b, g)
    n, c, cout, groups = x.shape[0], x.shape[1], w.shape[0], g.groups
    sp, kk = _prod(g.in_size), _prod(g.k)
    ckg, cog = c * kk // groups, cout // groups
    fused = b is not None and groups == 1
    wm = w.reshape(groups, cog, ckg)
    if fused:
        wm = xp.concatenate([wm, b.reshape(1, cout, 1)], axis=2)
    rows = wm.shape[2]  # per group: C*K/g, plus the row of ones
    y = xp.empty((n, groups, cog, sp), dtype=x.dtype)
    sample = c * kk * sp * x.itemsize

    def job(start, stop):
        bsz = _chunk(n, sample, stop - start)
        buf = _scratch(xp, (c * kk + fused) * bsz * sp, x.dtype)
        for lo in range(start, stop, bsz):
            m = min(bsz, stop - lo)
            _same_cols(x[lo:lo + m], g, buf)
            if fused:
                buf[c * kk * m * sp:(c * kk + 1) * m * sp] = 1
            cols = buf[: groups * rows * m * sp].reshape(groups, rows, m, sp)
            # each sample's (C*K/g, S) block has row stride B*S: BLAS takes it as it is
            xp.matmul(wm, cols.transpose(2, 0, 1, 3), out=y[lo:lo + m])
        if b is not None and not fused:
            y[start:stop].reshape(stop - start, cout, sp)[...] += b.reshape(cout, 1)

    _over_batch(xp, job, n, sample)
    return y.reshape((n, cout) + g.out_size)


# ---- the row-shift forward (1-D and 2-D) ------------------------------------------------------
#
# Only the kernel's last axis is materialised: per chunk, ``k[-1]`` copies of each flattened
# plane shifted along the row (kernel width) into a buffer T (B, C*k[-1] (+1), L), each with a
# margin of zeros before and after the plane (L = S + 2*margin) and its wrapped reads (the
# entries a row shift takes from the neighbouring row) zeroed. A kernel offset along the
# leading axis (kernel height) shifts by whole rows, which never wrap: its block of the column
# matrix is then a view of T, (C*k[-1], S) at a column offset with row stride L, reads of
# padding falling into the margins. So a 3x3 kernel is 3 GEMMs with K = 3*C_in on views of
# 3 copies of x, summed, instead of one GEMM with K = 9*C_in on 9 copies plus zero fills.
# With K = C_in/g * k[-1] >= _ROWS_STACK_K the 3 GEMMs are one, their weights stacked
# (3*C_out rows) over the whole of T, margins included, and the 3 products are added
# shifted by whole rows (_rows_product). The bias rides in the GEMM against a row of ones in
# T (one group). Both gradients take the same path in one pass (_rows_backward): the input
# gradient is the conv of gy with the flipped kernel, and the weight gradient reuses its T.
#
# NOTE (measured, 1 thread, process CPU time, shared 2-core Xeon, L2 2 MB; see the NOTE at
# _CHUNK_BYTES for the old path): W3's 32->32 32x32, one sample: the 9-copy columns plus the
# K=289 GEMM 354-392 us (min), 401-449 (median); 3 row copies plus 3 K=96 GEMMs and their adds
# 225-311 / 292-319 us. The GEMMs alone: 3 x K=96 216-230 us, 1 x K=289 246-251 us.
# Whole forward calls (interleaved, 9 rounds, 1 thread, CPU time, load 0.8-0.9; min / median,
# ms, 9-copy path -> row-shift path): W3 32->32 32x32 b32 9.48/10.74 -> 8.17/9.24; LeNet conv
# 16->32 14x14 b64 1.88/2.60 -> 1.49/2.20; but W3's stem 3->32 (K = 9 per GEMM) 1.09/1.51 ->
# 1.84/1.99 and LeNet conv 1->16 (K = 3) 0.43/0.50 -> 1.40/1.48: tiny-K GEMMs and the adds of
# their products cost more than the copies saved, hence _ROWS_MIN_K (C_in/g * k[-1] >= 48).
# W3 step (wall, best of 5 steps, 3 interleaved rounds) 166-203 ->
# 162-179 ms: within the machine's noise, consistent with ~1.5 ms per block conv forward.
# - tried and dropped: one as_strided copy of a zero-padded chunk instead of the 9 shifted
#   copies and zero fills: slower (W3 sample 98 vs 70 us, LeNet conv2 chunk 142 vs 82 us; the
#   copy's inner runs are one output row); the shifted copies taken from per-variant padded
#   sources (flat margins, wrapped columns zeroed in the small source, no fills on the columns):
#   no faster in isolation or in the W3 step; precomputed fill indices: within noise; keeping
#   the forward's columns for the weight gradient (38 MB per W3 block conv): the forward doubled
#   (10.7 -> 22.9 ms, a fresh 38 MB buffer is page-faulted in) for 0.5-1 ms saved in the weight
#   gradient; the input gradient as the forward conv of gy with the flipped kernel (with the
#   3-GEMM forward): same at 32->32, 1.6-3.5x slower for fewer input channels (since taken up
#   with the stacked GEMM, only where both channel counts reach _ROWS_MIN_GRAD, NOTE below).
#
# NOTE (ember issue 7; measured, 1 thread, process CPU time, the shared 2-core machine under
# load 1.3-2.6 from other processes, min / median of 7-15 interleaved rounds of the old and
# new functions called on arrays in one process, W3's shapes as in bench/conv_micro.py):
# - stacked GEMM (_ROWS_STACK_K): W3's 32->32, per sample, 3 x (32 x 97) @ (97 x 1024) on
#   views of T 236-238 us; one (96 x 97) @ (97 x 1088) 153-175 us (M = 96 runs at ~120-130
#   GFLOP/s in OpenBLAS, M = 32 at ~80-98). Its 2 shifted adds (whole rows, aligned) 0.9 ms
#   per call. Forward 8.73/11.11 -> 8.29/9.60 ms. LeNet's conv 16->32 (K = 49, planes of 196)
#   loses: a chunk of 9 samples 125 us in 3 GEMMs against 226 us stacked plus adds, hence
#   the threshold (K >= 96).
# - _rows_backward replaces a separate input gradient (k[0] shifted copies of gy, one GEMM,
#   then the k[-1] products added back shifted by +-1 column) and weight gradient (T again,
#   a transposing copy of gy and its shifted copies, one GEMM per sample). Adds shifted by one
#   float ran at half speed (64 per call: 2.21 ms against 1.16 aligned), the transposing
#   copies cost 1.83 ms per call; the weight gradient's GEMM T2 @ X^T (NT) takes 193-199 us
#   per sample against 158 for the NN form, and X is 0.6 ms per call. W3's 32->32: input
#   gradient alone 10.26/12.39 -> 9.16/11.14 ms, both gradients 17.31/22.50 -> 16.06/18.36
#   (PyTorch 12.68/15.78).
# - tried and dropped: two samples per chunk in the stacked forward (T and P 1.7 MB): no
#   faster (9.13/10.89 vs 8.71/10.73); the forward's adds as P1 += P0 in the cache, then
#   P1 + P2 into y: slower (1.25 vs 0.89 ms per call); OPENBLAS_CORETYPE Cooperlake or
#   SapphireRapids for these GEMMs: the same kernels, no change.


@functools.lru_cache(maxsize=256)
def _row_plan(in_size, k, dilation, pad_lo):
    """What the row-shift forward needs of a (1-D or 2-D) geometry: the margin, per index
    along the kernel's last axis its (destination, source) ranges and the positions of its
    wrapped reads, and per offset along the leading axis its shift of the flattened plane."""
    sp, width = _prod(in_size), in_size[-1]
    lead = [0]
    if len(k) == 2:
        lead = [(j * dilation[0] - pad_lo[0]) * width for j in range(k[0])]
    margin = max(abs(s) for s in lead)
    copies = []
    for j in range(k[-1]):
        a = j * dilation[-1] - pad_lo[-1]
        q0, q1 = min(max(-a, 0), sp), max(min(sp - a, sp), 0)
        q1 = max(q1, q0)
        copies.append((margin + q0, margin + q1, q0 + a, q1 + a,
                       _outside(a, width) if a and len(k) == 2 else None))
    head = margin + max(c[0] - margin for c in copies)
    tail = margin + min(c[1] - margin for c in copies)
    return margin, sp + 2 * margin, head, tail, tuple(copies), tuple(lead)


@functools.lru_cache(maxsize=256)
def _row_plan_geometry(in_size, k, dilation, pad_lo):
    return _conv_native.plan_arrays(_row_plan(in_size, k, dilation, pad_lo), in_size[-1])


def _row_plan_arrays(g):
    """_row_plan of a geometry in the form the native convolution takes (_conv_native)."""
    return _row_plan_geometry(g.in_size, g.k, g.dilation, g.pad_lo)


def _rows_layout(xp, w, b, groups, k0, stacked):
    """A row-shift product's weight (_rows_product) from w (C_out, C_in/g, *k): per leading
    kernel offset o, columns (C_in/g, k[-1]), and ``b`` (one group only) as a last column on
    o = 0, against T's row of ones. Stacked: (groups, k[0] * C_out/g, K), rows (o, C_out/g);
    else (k[0], groups, C_out/g, K)."""
    cout, cin_g, kl = w.shape[0], w.shape[1], w.shape[-1]
    cog = cout // groups
    wm = w.reshape(groups, cog, cin_g, k0, kl).transpose(3, 0, 1, 2, 4)
    wm = xp.ascontiguousarray(wm).reshape(k0, groups, cog, cin_g * kl)
    if b is not None:
        col = xp.zeros((k0, 1, cout, 1), dtype=w.dtype)
        col[0, 0, :, 0] = b
        wm = xp.concatenate([wm, col], axis=3)
    if stacked:
        wm = xp.ascontiguousarray(wm.transpose(1, 0, 2, 3)).reshape(groups, k0 * cog, -1)
    return wm


def _rows_scratch(k0, cout, length, sp, stacked):
    """Elements of work space per sample that _rows_product needs."""
    if k0 == 1:
        return 0
    return k0 * cout * length if stacked else cout * sp


def _rows_product(xp, wm, t, out, scratch, lead, margin, sp):
    """out (B, groups, C_out/g, S) = the sum over the leading kernel offsets o of W_o @ T
    shifted by o's whole rows, for T as ``t`` (B, groups, K, L) with its margins and ``wm``
    from _rows_layout. Stacked, one GEMM over T's margins too and shifted adds of its
    blocks; else one GEMM per offset on a view of T, summed."""
    if len(lead) == 1:
        s = margin + lead[0]
        xp.matmul(wm if wm.ndim == 3 else wm[0], t[..., s:s + sp], out=out)
        return
    if wm.ndim == 3:
        m, groups, _, length = t.shape
        p = scratch[: m * wm.size // wm.shape[2] * length].reshape(m, groups, -1, length)
        xp.matmul(wm, t, out=p)
        p = p.reshape(m, groups, len(lead), -1, length)
        v = [p[:, :, o, :, margin + s:margin + s + sp] for o, s in enumerate(lead)]
        xp.add(v[0], v[1], out=out)
        for more in v[2:]:
            out += more
        return
    part = scratch[: out.size].reshape(out.shape)
    for o, s in enumerate(lead):
        view = t[..., margin + s:margin + s + sp]
        if o == 0:
            xp.matmul(wm[0], view, out=out)
        else:
            xp.matmul(wm[o], view, out=part)
            out += part


def _rows_forward(xp, x, w, b, g):
    """_same_forward for 1-D and 2-D convs (see the comment above _row_plan)."""
    n, c, cout, groups = x.shape[0], x.shape[1], w.shape[0], g.groups
    cin_g, cog, kl = c // groups, cout // groups, g.k[-1]
    sp, kk = _prod(g.in_size), _prod(g.k)
    margin, length, _, _, _, lead = _row_plan(g.in_size, g.k, g.dilation, g.pad_lo)
    stacked = cin_g * kl >= _ROWS_STACK_K
    fused = b is not None and groups == 1
    wm = _rows_layout(xp, w, b if fused else None, groups, len(lead), stacked)
    rows = c * kl + fused
    y = xp.empty((n, groups, cog, sp), dtype=x.dtype)
    xs = x.reshape(n, c, sp)
    found = _conv_native.kernels(xp, x, w) if _native_rows(g, xp, x, w) else None
    if found is not None:
        _conv_native.rows(found, numpy.ascontiguousarray(xs), _row_plan_arrays(g),
                          g.in_size[-1], kl, int(fused), wm, cout, stacked, out=y)
        return y.reshape((n, cout) + g.out_size)
    extra = _rows_scratch(len(lead), cout, length, sp, stacked)
    sample = rows * length + (extra if stacked else 0)  # what a chunk streams through

    def job(start, stop):
        bsz = _chunk(n, sample * x.itemsize, stop - start)
        buf = _scratch(xp, (rows * length + extra) * bsz, x.dtype)
        for lo in range(start, stop, bsz):
            m = min(bsz, stop - lo)
            t = _row_copies(xs[lo:lo + m], buf[: m * rows * length], rows, g)
            if fused:
                t[:, c * kl] = 1
            t = t.reshape(m, groups, rows // groups, length) if groups > 1 else t[:, None]
            out = y[lo:lo + m]
            _rows_product(xp, wm, t, out, buf[m * rows * length:], lead, margin, sp)
            if b is not None and not fused:
                out.reshape(m, cout, sp)[...] += b.reshape(cout, 1)

    _over_batch(xp, job, n, c * kk * sp * x.itemsize)
    return y.reshape((n, cout) + g.out_size)


def _row_copies(src, buf, rows, g):
    """T of the comment above _row_plan for the planes ``src`` (B, C, S) in ``buf``: returned
    as (B, rows, L), rows >= C*k[-1]; rows past C*k[-1] are left to the caller."""
    m, c, sp = src.shape
    kl = g.k[-1]
    margin, length, head, tail, copies, _ = _row_plan(g.in_size, g.k, g.dilation, g.pad_lo)
    t = buf.reshape(m, rows, length)
    t[:, :, :head] = 0
    t[:, :, tail:] = 0
    tc = t[:, : c * kl].reshape(m, c, kl, length)
    for j, (d0, d1, s0, s1, wrapped) in enumerate(copies):
        if d1 > d0:
            tc[:, :, j, d0:d1] = src[:, :, s0:s1]
        if wrapped is not None:
            plane = tc[:, :, j, margin:margin + sp].reshape((m, c) + g.in_size)
            plane[..., wrapped] = 0
    return t


_SCRATCH = threading.local()
_SCRATCH_MAX = 8 << 20  # a part's chunk (_PART_CHUNK_BYTES) plus the forward's row of ones


def _scratch(xp, size, dtype):
    """A 1-D work buffer of ``size`` elements, reused by later calls of this thread (one per
    array module and dtype, at most _SCRATCH_MAX bytes; larger ones are fresh). Only for
    temporaries that no result or saved tensor refers to.

    NOTE: a fresh multi-MB buffer per call comes from mmap and is page-faulted in on first
    touch; in the LeNet step that cost more than the copies that fill it (PERF-NOTES.md)."""
    dtype = xp.dtype(dtype)
    if size * dtype.itemsize > _SCRATCH_MAX:
        return xp.empty(size, dtype=dtype)
    cache = getattr(_SCRATCH, "buffers", None)
    if cache is None:
        cache = _SCRATCH.buffers = {}
    key = (xp.__name__, dtype.str)
    buf = cache.get(key)
    if buf is None or buf.shape[0] < size:
        buf = cache[key] = xp.empty(size, dtype=dtype)
    return buf[:size]


def _chunk(n, per_sample_bytes, part=None):
    """Samples per chunk: about _CHUNK_BYTES of columns, or _PART_CHUNK_BYTES when ``part``
    (the job's sample count) is one part of a batch split over threads."""
    limit = _CHUNK_BYTES if part is None or part >= n else _PART_CHUNK_BYTES
    return max(1, min(part if part is not None else n, limit // max(per_sample_bytes, 1)))


def _same_weight_grad(xp, x, gy, w_shape, g, bias=False):
    """sum over chunks of cols (C*K, B*S) @ gy_chunk^T (B*S, C_out), per group, the columns
    made again chunk by chunk (cheaper than keeping prod(K) copies of x from the forward).
    Each part of the batch (one per thread) sums its own; the parts' sums are added at the
    end. Returns (gw, gb): with ``bias`` gb is the bias gradient, else None. 1-D and 2-D convs
    with enough channels (_rows_grads_apply) take _rows_backward instead."""
    if _rows_grads_apply(g, w_shape[1], w_shape[0], xp, x, gy):
        return _rows_backward(xp, x, gy, None, None, g, need_x=False, need_w=True,
                              need_b=bias, w_shape=w_shape)[1:]
    n, cout, groups = gy.shape[0], gy.shape[1], g.groups
    c = w_shape[1] * groups
    sp, kk = _prod(g.in_size), _prod(g.k)
    ckg, cog = c * kk // groups, cout // groups
    sample = c * kk * sp * gy.itemsize
    gy = gy.reshape(n, cout, sp)
    per_sample = ckg < _WGRAD_PER_SAMPLE_ROWS
    sums = {}

    def job(start, stop):
        bsz = _chunk(n, sample, stop - start)
        buf = _scratch(xp, c * kk * bsz * sp, gy.dtype)
        gwt = xp.zeros((groups, ckg, cog), dtype=gy.dtype)
        gb = xp.zeros(cout, dtype=gy.dtype) if bias else None
        part = None if per_sample else xp.empty_like(gwt)
        for lo in range(start, stop, bsz):
            m = min(bsz, stop - lo)
            cols = _same_cols(x[lo:lo + m], g, buf)
            if per_sample:
                _wgrad_per_sample(xp, cols, gy[lo:lo + m], gwt, gb, groups)
                continue
            cols = cols.reshape(groups, ckg, m * sp)
            gyc = xp.ascontiguousarray(gy[lo:lo + m].swapaxes(0, 1)).reshape(groups, cog,
                                                                             m * sp)
            if bias:
                gb += gyc.reshape(cout, m * sp).sum(axis=1)
            # NOTE: a long inner dimension with few rows and columns (LeNet conv1: 9 x 50176
            # @ 50176 x 16) measured 2x slower in OpenBLAS than the same sum in pieces of ~4k.
            for k0 in range(0, m * sp, _WGRAD_SPLIT):
                k1 = k0 + _WGRAD_SPLIT
                xp.matmul(cols[:, :, k0:k1], gyc[:, :, k0:k1].swapaxes(1, 2), out=part)
                gwt += part
        sums[start] = (gwt, gb)

    _over_batch(xp, job, n, sample)
    parts = [sums[start] for start in sorted(sums)]
    gwt, gb = parts[0]
    for other_w, other_b in parts[1:]:
        gwt += other_w
        if bias:
            gb += other_b
    gw = xp.ascontiguousarray(gwt.swapaxes(1, 2)).reshape(w_shape)
    return gw, gb


def _rows_grads_apply(g, cin_g, cout, xp, *arrays):
    """Whether _rows_backward computes the gradients of a 'same' conv: 1-D or 2-D, with at
    least _ROWS_MIN_GRAD rows per group on both sides (C_in/g * k[-1] and C_out/g * k[-1]),
    or always when the native convolution takes ``arrays`` (see _native_rows)."""
    kl = g.k[-1]
    if len(g.k) > 2:
        return False
    if _native_rows(g, xp, *arrays):
        return True
    return cin_g * kl >= _ROWS_MIN_GRAD and (cout // g.groups) * kl >= _ROWS_MIN_GRAD


def _native_rows(g, xp, *arrays):
    """Whether the row-shift path of a 1-D or 2-D conv runs natively (_conv_native): one
    group, the arrays NumPy float32 or float64.

    NOTE (measured, 2-core VM, interleaved in one process, 12 rounds, min ms; the native call
    against conv.py's Python threads): two threads, W3's 32->32 block conv forward 5.22 ->
    3.19, backward 8.93 -> 6.55; LeNet's 16->32 forward 1.19 -> 0.70, its backward (rows
    path natively against the 9-copy path) 4.27 -> 2.51; one thread, forward 8.21 -> 6.69 and
    1.65 -> 1.18, backward 16.9 -> 13.1 and 3.99 -> 3.16. Since the stacked product runs on
    the kernels' unpacked tiles (conv.c), convs with few input rows take it too (they kept
    the 9-copy path while the native product was BLAS's: 0.86-1.30 against 1.02-1.28 ms
    forward); two threads, min of 25 interleaved calls: W3's stem 3->32 forward 1.11 -> 0.61
    ms, backward 1.08 -> 0.66; LeNet's 1->16 forward 0.44 -> 0.35, backward 0.69 -> 0.43."""
    return g.groups == 1 and len(g.k) <= 2 and _conv_native.kernels(xp, *arrays) is not None


def _flipped(g):
    """The geometry of a 'same' conv's adjoint: stride 1, the paddings swapped."""
    return _Geom(g.in_size, g.in_size, g.k, g.stride, g.dilation, g.pad_hi, g.pad_lo, g.groups)


def _rows_backward(xp, x, gy, w, b, g, need_x=True, need_w=True, need_b=False, w_shape=None):
    """A 1-D or 2-D 'same' conv's input gradient (plus ``b`` per input channel, for the
    transposed conv), weight gradient and bias gradient, in one pass over the batch
    (``w`` may be None, with ``w_shape``, when the input gradient is not asked for).

    The input gradient is the conv of gy with the kernel flipped and its channel axes
    swapped, in the flipped geometry, computed as _rows_forward does: per sample T2 (the
    k[-1] row-shifted copies of gy, (C_out * k[-1], L)) and _rows_product. The weight
    gradient reuses T2 while it is in the cache:

        gw[co, ci, o, k[-1]-1-j] = sum_q T2[(co, j), q] * X[(ci, o), q]

    with X (C_in/g * k[0], S) holding k[0] copies of x shifted by the leading offsets' whole
    rows (zero where the shift leaves the plane): one GEMM T2 @ X^T per sample and group.
    With one group and an unshifted copy in T2 the bias gradient rides in it, against a row
    of ones in X. Returns (gx, gw, gb), None where not asked for."""
    w_shape = w.shape if w is not None else w_shape
    n, cout, cin_g, groups = gy.shape[0], w_shape[0], w_shape[1], g.groups
    kl, c, cog, sp = g.k[-1], cin_g * groups, cout // groups, _prod(g.in_size)
    gf = _flipped(g)
    margin, length, _, _, copies, lead_f = _row_plan(gf.in_size, gf.k, gf.dilation, gf.pad_lo)
    lead = _row_plan(g.in_size, g.k, g.dilation, g.pad_lo)[5]
    k0 = len(lead)
    fused_x = need_x and b is not None and groups == 1
    j0 = next((j for j, cp in enumerate(copies) if cp[2] == 0 and cp[3] == sp), None)
    fused_b = need_b and need_w and groups == 1 and j0 is not None
    rows = cout * kl + fused_x  # T2
    xrows = cin_g * k0 + fused_b  # X, per group
    stacked = cog * kl >= _ROWS_STACK_K
    extra = _rows_scratch(k0, c, length, sp, stacked) if need_x else 0
    if need_x:
        # the adjoint conv's weight (C_in, C_out/g, *k): flipped, channel axes swapped
        wf = w.reshape(groups, cog, cin_g, k0, kl)[:, :, :, ::-1, ::-1].swapaxes(1, 2)
        wf = wf.reshape(c, cog, k0, kl)
        wm = _rows_layout(xp, wf, b if fused_x else None, groups, k0, stacked)
        gx = xp.empty((n, groups, cin_g, sp), dtype=gy.dtype)
    gys = gy.reshape(n, cout, sp)
    xs = x.reshape(n, c, sp) if need_w else None
    found = None
    if _native_rows(g, xp, gy, *([w] if need_x else []), *([x] if need_w else [])):
        found = _conv_native.kernels(xp, gy)
    if found is not None:
        gwt = xp.zeros((_conv_native.parts(n), cout * kl, xrows), gy.dtype) if need_w else None
        _conv_native.rows(found, numpy.ascontiguousarray(gys), _row_plan_arrays(gf),
                          g.in_size[-1], kl, int(fused_x), wm if need_x else None, c, stacked,
                          out=gx if need_x else None,
                          x=numpy.ascontiguousarray(xs) if need_w else None,
                          xones=int(fused_b), xlead=_row_plan_arrays(g)[3], gw=gwt)
        gb = gys.sum(axis=2).sum(axis=0) if need_b and not fused_b else None
        return _rows_backward_end(xp, gx if need_x else None,
                                  {0: (None if gwt is None else gwt.sum(axis=0)[None], gb)},
                                  g, w_shape, need_x, need_w, need_b, fused_b, j0)
    per_sample = rows * length + extra + (groups * xrows * sp if need_w else 0)
    sums = {}

    def job(start, stop):
        bsz = _chunk(n, per_sample * gy.itemsize, stop - start)
        buf = _scratch(xp, per_sample * bsz, gy.dtype)
        gwt = part = gb = None
        if need_w:
            gwt = xp.zeros((groups, cog * kl, xrows), dtype=gy.dtype)
            part = xp.empty((bsz,) + gwt.shape, dtype=gy.dtype)
        if need_b and not fused_b:
            gb = xp.zeros(cout, dtype=gy.dtype)
        for lo in range(start, stop, bsz):
            m = min(bsz, stop - lo)
            t = _row_copies(gys[lo:lo + m], buf[: m * rows * length], rows, gf)
            at = m * rows * length
            if need_x:
                if fused_x:
                    t[:, cout * kl] = 1
                tg = t.reshape(m, groups, rows // groups, length) if groups > 1 else t[:, None]
                out = gx[lo:lo + m]
                _rows_product(xp, wm, tg, out, buf[at: at + m * extra], lead_f, margin, sp)
                if b is not None and not fused_x:
                    out.reshape(m, c, sp)[...] += b.reshape(c, 1)
                at += m * extra
            if need_w:
                xm = buf[at: at + m * groups * xrows * sp].reshape(m, groups, xrows, sp)
                xo = xm[:, :, : cin_g * k0].reshape(m, groups, cin_g, k0, sp)
                src = xs[lo:lo + m].reshape(m, groups, cin_g, sp)
                for o, s in enumerate(lead):
                    s = max(-sp, min(s, sp))  # a shift past the plane leaves only zeros
                    if s >= 0:
                        xo[:, :, :, o, : sp - s] = src[..., s:]
                        xo[:, :, :, o, sp - s:] = 0
                    else:
                        xo[:, :, :, o, -s:] = src[..., : sp + s]
                        xo[:, :, :, o, :-s] = 0
                if fused_b:
                    xm[:, 0, cin_g * k0] = 1
                tw = t[:, : cout * kl, margin:margin + sp].reshape(m, groups, cog * kl, sp)
                xp.matmul(tw, xm.swapaxes(2, 3), out=part[:m])
                gwt += part[0] if m == 1 else part[:m].sum(axis=0)
            if gb is not None:
                gb += gys[lo:lo + m].sum(axis=2).sum(axis=0)
        sums[start] = (gwt, gb)

    _over_batch(xp, job, n, c * _prod(g.k) * sp * gy.itemsize)
    return _rows_backward_end(xp, gx if need_x else None, sums, g, w_shape, need_x, need_w,
                              need_b, fused_b, j0)


def _rows_backward_end(xp, gx, sums, g, w_shape, need_x, need_w, need_b, fused_b, j0):
    """_rows_backward's results from gx (N, groups, C_in/g, S) and the parts' sums
    ({start: (gwt, gb)})."""
    cout, cin_g, groups, kl = w_shape[0], w_shape[1], g.groups, g.k[-1]
    c, cog, k0 = cin_g * groups, cout // groups, _prod(g.k[:-1])
    xrows = cin_g * k0 + fused_b
    gx = gx.reshape((gx.shape[0], c) + g.in_size) if need_x else None
    gw = gb = None
    if need_w or need_b:
        parts = [sums[start] for start in sorted(sums)]
        gwt, gb = parts[0]
        for other_w, other_b in parts[1:]:
            if need_w:
                gwt += other_w
            if gb is not None:
                gb += other_b
        if fused_b:
            gb = xp.ascontiguousarray(gwt[0].reshape(cout, kl, xrows)[:, j0, cin_g * k0])
        if need_w:
            # (groups, C_out/g, j, C_in/g, o) -> (C_out, C_in/g, o, k[-1]-1-j)
            gw = gwt[:, :, : cin_g * k0].reshape(groups, cog, kl, cin_g, k0)
            gw = gw.transpose(0, 1, 3, 4, 2)[..., ::-1]
            gw = xp.ascontiguousarray(gw).reshape(w_shape)
    return gx, gw, gb


def _wgrad_per_sample(xp, cols, gy, gwt, gb, groups):
    """Add one chunk's weight gradient to ``gwt`` (groups, C*K/g, C_out/g) as a GEMM per
    sample, cols (C*K, B, S) @ gy[b]^T (S, C_out), each read where it lies, then summed over
    the chunk; and the bias gradient to ``gb`` (unless None).

    NOTE: for few rows (C*K/g < _WGRAD_PER_SAMPLE_ROWS) this measured 2.5-4x faster than a
    transposed copy of gy and one long GEMM (LeNet conv1, 9 rows: 0.53 -> 0.21 ms per chunk
    of 37 samples; the 3->32 stem of W3, 27 rows: 0.91 -> 0.24 ms), and 1.1x slower at 144
    rows (LeNet conv2)."""
    ck, m, sp = cols.shape[0] * cols.shape[1], cols.shape[2], cols.shape[3]
    cout = gy.shape[1]
    ckg, cog = ck // groups, cout // groups
    per = xp.matmul(cols.reshape(groups, ckg, m, sp).transpose(2, 0, 1, 3),
                    gy.reshape(m, groups, cog, sp).transpose(0, 1, 3, 2))
    gwt += per.sum(axis=0)
    if gb is not None:
        gb += gy.sum(axis=2).sum(axis=0)


def _same_input_grad(xp, gy, w, b, g):
    """conv's input gradient, chunk by chunk of the batch: gcol = W^T gy per sample with rows
    ordered (offset, channel), its padding reads zeroed, then each offset's slab added to gx
    shifted back by the offset. The zeroed entries are the only ones a shift carries across a
    row, plane or channel, so each add is one slice of every sample's whole (C*S) gradient.
    Parts of the batch run on ember's threads. 1-D and 2-D convs with enough channels
    (_rows_grads_apply) take _rows_backward instead."""
    if _rows_grads_apply(g, w.shape[1], w.shape[0], xp, gy, w):
        return _rows_backward(xp, None, gy, w, b, g, need_x=True, need_w=False)[0]
    n, cout, cin_g, groups = gy.shape[0], w.shape[0], w.shape[1], g.groups
    c, cog, sp, kk = cin_g * groups, cout // groups, _prod(g.in_size), _prod(g.k)
    span = cin_g * sp
    # W^T with rows (offset, channel): a tiny copy, then one GEMM per sample and group
    wt = w.reshape(groups, cog, cin_g, kk).transpose(0, 3, 2, 1).reshape(groups, kk * cin_g, cog)
    gy = gy.reshape(n, groups, cog, sp)
    gx = xp.empty((n, groups, span), dtype=gy.dtype)
    sample = c * kk * sp * gy.itemsize
    offsets = _offsets(g)
    # offset k's slab is added to gx shifted by s: the first offset that covers the whole
    # plane (s == 0, the centre tap of an odd kernel with 'same' padding) is copied instead,
    # which spares the zero fill of gx.
    first = next((k for k, (_, s) in enumerate(offsets) if s == 0), None)

    def job(start, stop):
        bsz = _chunk(n, sample, stop - start)
        buf = _scratch(xp, bsz * kk * c * sp, gy.dtype)
        for lo in range(start, stop, bsz):
            m = min(bsz, stop - lo)
            gcol = buf[: m * kk * c * sp].reshape(m, groups, kk * cin_g, sp)
            xp.matmul(wt, gy[lo:lo + m], out=gcol)
            _zero_padding_reads(gcol.reshape((m, groups) + g.k + (cin_g,) + g.in_size), 2, g)
            flat = gcol.reshape(m, groups, kk, span)
            dst = gx[lo:lo + m]
            if first is None:
                dst[...] = 0
            else:
                dst[...] = flat[:, :, first]
            for k, (_, s) in enumerate(offsets):
                if k == first or s >= span or -s >= span:
                    continue
                if s >= 0:
                    dst[..., s:] += flat[:, :, k, : span - s]
                else:
                    dst[..., : span + s] += flat[:, :, k, -s:]
            if b is not None:
                dst.reshape(m, c, sp)[...] += b.reshape(c, 1)

    _over_batch(xp, job, n, sample)
    return gx.reshape((n, c) + g.in_size)


def _prod(values):
    p = 1
    for v in values:
        p *= v
    return p


def _bias_grad(gy):
    from ember.ops import reduce  # noqa: PLC0415

    dims = (0,) + tuple(range(2, gy.ndim))
    return reduce.sum(gy, dims)


# ---- the three Functions ----------------------------------------------------------------------


class _Conv(Function):
    """y = conv(x, w) + b."""

    @staticmethod
    def forward(ctx, x, w, b, g):
        keep_col = ctx._record and ctx.needs_input_grad[1]
        if _same(g):
            y, col = _same_forward(ctx.xp, x, w, b, g), None
        else:
            y, col = _forward_arrays(ctx.xp, x, w, b, g)
        ctx.g = g
        ctx.w_shape = w.shape
        ctx.save_for_backward(x, w, col if keep_col else None)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w, col = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = ctx.g
        if not _State.enabled:
            return _Conv._backward_arrays(ctx, gy._data, x._data, w._data, col, g)
        gx = _ConvTranspose.apply(gy, w, None, g) if need_x else None
        gw = _ConvWeight.apply(x, gy, ctx.w_shape, g) if need_w else None
        gb = _bias_grad(gy) if need_b else None
        return gx, gw, gb, None

    @staticmethod
    def _backward_arrays(ctx, gy, x, w, col, g):
        """The same gradients on arrays, for a backward that is not recorded: the weight
        gradient reuses the forward's column matrix, and gy is transposed once for both it
        and the bias gradient."""
        xp = ctx.xp
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gw = gb = None
        if _same(g) and _rows_grads_apply(g, ctx.w_shape[1], ctx.w_shape[0], xp, x, gy, w):
            gx, gw, gb = _rows_backward(xp, x, gy, w, None, g, need_x, need_w, need_b)
            return tuple(None if a is None else Tensor._make(a, False, None, 0)
                         for a in (gx, gw, gb)) + (None,)
        if _same(g):
            if need_x:
                gx = Tensor._make(_same_input_grad(xp, gy, w, None, g), False, None, 0)
            if need_w:
                gw, gb = _same_weight_grad(xp, x, gy, ctx.w_shape, g, bias=need_b)
                gw = Tensor._make(gw, False, None, 0)
                gb = None if gb is None else Tensor._make(gb, False, None, 0)
            elif need_b:
                n, cout = gy.shape[:2]
                gb = Tensor._make(gy.reshape(n, cout, -1).sum(axis=2).sum(axis=0), False,
                                  None, 0)
            return gx, gw, gb, None
        gy2 = _channels_first(xp, gy)
        if need_x:
            gx = Tensor._make(_input_grad_arrays(xp, gy, w, None, g, gy2), False, None, 0)
        if need_w or need_b:
            if need_w:
                cols = col._data if col is not None else _im2col(xp, x, g)
                gw = Tensor._make(_weight_grad_arrays(xp, cols, gy2, ctx.w_shape, g), False,
                                  None, 0)
            if need_b:
                gb = Tensor._make(gy2.sum(axis=1), False, None, 0)
        return gx, gw, gb, None


class _ConvTranspose(Function):
    """z = conv's input gradient applied to ``y`` (the transposed convolution), plus b."""

    @staticmethod
    def forward(ctx, y, w, b, g):
        ctx.g = g
        ctx.w_shape = w.shape
        ctx.save_for_backward(y, w)
        if _same(g):
            return _same_input_grad(ctx.xp, y, w, b, g)
        return _input_grad_arrays(ctx.xp, y, w, b, g)

    @staticmethod
    def backward(ctx, gz):
        y, w = ctx.saved_tensors
        need_y, need_w, need_b = ctx.needs_input_grad[:3]
        g = ctx.g
        # <convT(y, w), v> = <y, conv(v, w)>: both gradients come from the conv of v = gz.
        gy = _Conv.apply(gz, w, None, g) if need_y else None
        gw = _ConvWeight.apply(gz, y, ctx.w_shape, g) if need_w else None
        gb = _bias_grad(gz) if need_b else None
        return gy, gw, gb, None


class _ConvWeight(Function):
    """gw = conv's weight gradient for input ``x`` and output gradient ``gy``."""

    @staticmethod
    def forward(ctx, x, gy, w_shape, g):
        ctx.g = g
        ctx.save_for_backward(x, gy)
        if _same(g):
            return _same_weight_grad(ctx.xp, x, gy, w_shape, g)[0]
        col = _im2col(ctx.xp, x, g)
        return _weight_grad_arrays(ctx.xp, col, _channels_first(ctx.xp, gy), w_shape, g)

    @staticmethod
    def backward(ctx, ggw):
        x, gy = ctx.saved_tensors
        need_x, need_gy = ctx.needs_input_grad[:2]
        g = ctx.g
        # <wgrad(x, gy), v> = <gy, conv(x, v)> = <convT(gy, v), x>.
        gx = _ConvTranspose.apply(gy, ggw, None, g) if need_x else None
        ggy = _Conv.apply(x, ggw, None, g) if need_gy else None
        return gx, ggy, None, None


# ---- argument checking ------------------------------------------------------------------------


def _tuple(value, n, name, op):
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
        return tuple(int(v) for v in value)
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return (int(value),) * n


def _check_positive(values, name, op):
    if any(v < 1 for v in values):
        raise ValueError(f"{op}: {name} must be positive, got {values}")


def _check_tensors(op, nd, input, weight, bias, transposed):
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is not None and not isinstance(t, Tensor):
            raise errors.DTypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise errors.ShapeError(
            f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got input "
            f"of shape {errors.shape_str(input.shape)}"
        )
    if weight.ndim != nd + 2:
        layout = "(in_channels, out_channels/groups, *kernel)" if transposed else (
            "(out_channels, in_channels/groups, *kernel)"
        )
        raise errors.ShapeError(
            f"{op}: expected a {nd + 2}-D weight {layout}, got weight of shape "
            f"{errors.shape_str(weight.shape)}"
        )
    dts = {t._data.dtype for t in (input, weight, bias) if t is not None}
    if len(dts) != 1 or next(iter(dts)).kind != "f":
        names = ", ".join(
            f"{n}={t._data.dtype}" for n, t in (("input", input), ("weight", weight),
                                                ("bias", bias)) if t is not None
        )
        raise errors.DTypeError(
            f"{op}: input, weight and bias must share one floating dtype, got {names}; convert "
            "with .to(weight.dtype)"
        )


def _check_bias(op, bias, channels):
    if bias is not None and tuple(bias.shape) != (channels,):
        raise errors.ShapeError(
            f"{op}: expected bias of shape ({channels},) (one per output channel), got "
            f"{errors.shape_str(bias.shape)}"
        )


def _batched(input, nd):
    from ember.ops import shape as shape_ops  # noqa: PLC0415

    if input.ndim == nd + 2:
        return input, False
    return shape_ops.reshape(input, (1,) + tuple(input.shape)), True


def _unbatch(out):
    from ember.ops import shape as shape_ops  # noqa: PLC0415

    return shape_ops.reshape(out, tuple(out.shape[1:]))


def _convnd(op, nd, input, weight, bias, stride, padding, dilation, groups):
    _check_tensors(op, nd, input, weight, bias, transposed=False)
    stride = _tuple(stride, nd, "stride", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    _check_positive(stride, "stride", op)
    _check_positive(dilation, "dilation", op)
    x, unbatched = _batched(input, nd)
    cout, cin_g = weight.shape[:2]
    k = tuple(weight.shape[2:])
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if cout % groups:
        raise errors.ShapeError(
            f"{op}: out_channels ({cout}, from weight {errors.shape_str(weight.shape)}) must be "
            f"divisible by groups={groups}"
        )
    if x.shape[1] != cin_g * groups:
        raise errors.ShapeError(
            f"{op}: expected input with {cin_g * groups} channels (weight "
            f"{errors.shape_str(weight.shape)}, groups={groups}), got input of shape "
            f"{errors.shape_str(input.shape)}"
        )
    _check_bias(op, bias, cout)
    size = tuple(x.shape[2:])
    lo, hi = _conv_padding(op, padding, nd, k, dilation, stride)
    padded = tuple(s + a + b for s, a, b in zip(size, lo, hi))
    span = tuple(d * (kk - 1) + 1 for d, kk in zip(dilation, k))
    if any(p < sp for p, sp in zip(padded, span)):
        raise errors.ShapeError(
            f"{op}: the padded input {padded} is smaller than the (dilated) kernel {span} "
            f"(input {errors.shape_str(input.shape)}, weight {errors.shape_str(weight.shape)}, "
            f"padding {padding!r}, dilation {dilation}); use a larger input or more padding"
        )
    out = tuple((p - sp) // st + 1 for p, sp, st in zip(padded, span, stride))
    g = _Geom(size, out, k, stride, dilation, lo, hi, groups)
    y = _Conv.apply(x, weight, bias, g)
    return _unbatch(y) if unbatched else y


def _conv_padding(op, padding, nd, k, dilation, stride):
    """(pad_lo, pad_hi) per spatial dim from an int, a tuple, 'same' or 'valid'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * nd, (0,) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"{op}: padding='same' is not supported for strided convolutions (stride="
                    f"{stride}); use an explicit padding"
                )
            total = tuple(d * (kk - 1) for d, kk in zip(dilation, k))
            lo = tuple(t // 2 for t in total)
            return lo, tuple(t - a for t, a in zip(total, lo))
        raise ValueError(
            f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}"
        )
    pad = _tuple(padding, nd, "padding", op)
    if any(p < 0 for p in pad):
        raise ValueError(f"{op}: padding must be non-negative, got {pad}")
    return pad, pad


def _conv_transposend(op, nd, input, weight, bias, stride, padding, output_padding, groups,
                      dilation):
    _check_tensors(op, nd, input, weight, bias, transposed=True)
    stride = _tuple(stride, nd, "stride", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of {nd} ints, got {padding!r}")
    pad = _tuple(padding, nd, "padding", op)
    out_pad = _tuple(output_padding, nd, "output_padding", op)
    _check_positive(stride, "stride", op)
    _check_positive(dilation, "dilation", op)
    if any(p < 0 for p in pad):
        raise ValueError(f"{op}: padding must be non-negative, got {pad}")
    for op_, st, d in zip(out_pad, stride, dilation):
        if op_ < 0 or op_ >= max(st, d):
            raise ValueError(
                f"{op}: output_padding {out_pad} must be smaller than stride {stride} or "
                f"dilation {dilation} (per dimension)"
            )
    x, unbatched = _batched(input, nd)
    cin, cout_g = weight.shape[:2]
    k = tuple(weight.shape[2:])
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if cin % groups:
        raise errors.ShapeError(
            f"{op}: in_channels ({cin}, from weight {errors.shape_str(weight.shape)}) must be "
            f"divisible by groups={groups}"
        )
    if x.shape[1] != cin:
        raise errors.ShapeError(
            f"{op}: expected input with {cin} channels (weight {errors.shape_str(weight.shape)} "
            f"is (in_channels, out_channels/groups, *kernel), groups={groups}), got input of "
            f"shape {errors.shape_str(input.shape)}"
        )
    _check_bias(op, bias, cout_g * groups)
    size = tuple(x.shape[2:])
    out = tuple(
        (s - 1) * st - 2 * p + d * (kk - 1) + o + 1
        for s, st, p, d, kk, o in zip(size, stride, pad, dilation, k, out_pad)
    )
    if any(o < 1 for o in out):
        raise errors.ShapeError(
            f"{op}: the output size {out} is not positive (input {errors.shape_str(input.shape)}, "
            f"weight {errors.shape_str(weight.shape)}, padding {pad}); reduce the padding"
        )
    # In conv terms the transposed conv's output is the conv's input and vice versa.
    g = _Geom(out, size, k, stride, dilation, pad, pad, groups, out_pad)
    z = _ConvTranspose.apply(x, weight, bias, g)
    return _unbatch(z) if unbatched else z


# ---- public functions ---------------------------------------------------------------------------


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution (cross-correlation, like PyTorch) over (N, C_in, L) or (C_in, L).

    Args:
        input: (N, C_in, L) or unbatched (C_in, L).
        weight: (C_out, C_in/groups, kL).
        bias: optional (C_out,).
        stride, dilation: int or 1-tuple.
        padding: int, 1-tuple, 'valid' (no padding) or 'same' (output length = input length;
            an odd total pads one more on the right, like PyTorch; needs stride 1).
        groups: split channels into this many independent groups (groups == C_in: depthwise).

    Returns:
        (N, C_out, L_out) with L_out = (L + 2*padding - dilation*(kL-1) - 1) // stride + 1.

    >>> ember.conv1d(ember.ones(1, 2, 5), ember.ones(3, 2, 3)).shape
    ember.Size([1, 3, 3])
    """
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution over (N, C_in, H, W) or unbatched (C_in, H, W); see conv1d.

    weight is (C_out, C_in/groups, kH, kW); stride, padding and dilation are ints or pairs,
    padding may also be 'same' or 'valid'. Output: (N, C_out, H_out, W_out).

    >>> x = ember.randn(8, 3, 32, 32)
    >>> ember.conv2d(x, ember.randn(16, 3, 3, 3), padding=1).shape
    ember.Size([8, 16, 32, 32])
    """
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution over (N, C_in, D, H, W) or unbatched (C_in, D, H, W); see conv1d."""
    return _convnd("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """1-D transposed convolution (the gradient of conv1d w.r.t. its input).

    Args:
        input: (N, C_in, L) or unbatched (C_in, L).
        weight: (C_in, C_out/groups, kL) (note: in_channels first, as in PyTorch).
        bias: optional (C_out,).
        output_padding: extra size added on one side of the output (smaller than stride or
            dilation); picks among the input sizes a strided conv maps to the same length.

    Returns:
        (N, C_out, L_out) with
        L_out = (L-1)*stride - 2*padding + dilation*(kL-1) + output_padding + 1.
    """
    return _conv_transposend("conv_transpose1d", 1, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution over (N, C_in, H, W); see conv_transpose1d.

    >>> ember.conv_transpose2d(ember.ones(1, 4, 5, 5), ember.ones(4, 2, 3, 3), stride=2).shape
    ember.Size([1, 2, 11, 11])
    """
    return _conv_transposend("conv_transpose2d", 2, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """3-D transposed convolution over (N, C_in, D, H, W); see conv_transpose1d."""
    return _conv_transposend("conv_transpose3d", 3, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


TENSOR_METHODS = {}
