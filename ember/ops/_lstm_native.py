"""The LSTM and GRU time loops of ``ember/ops/rnn.py`` as one call to ember's native kernels
(``ember/backend/native``) per sequence, with Python's lock released: each step's product
(the kernels' own register-tiled loop where the width is a multiple of 32, else the
``cblas_sgemm`` of NumPy's OpenBLAS), then the step's gate arithmetic in one C loop. The NumPy
loops make per step one product and ~12 NumPy calls (forward) or ~8 calls and precomputed
factor passes (backward), whose cost is the calls, not the arithmetic.

NOTE (measured, 1 thread, the C loops alone on W4's shapes, (32, 128) per step, 64 steps):
forward 3.2 ms and backward 2.6-2.9 ms with the own product, against 3.9-5.0 and 3.9-4.2 ms
with OpenBLAS's sgemm (which packs the weight again at every step); the NumPy loops took
~7.7 and ~10 ms (factor passes included) inside W4's step.

The buffers, their layout and what is saved are those of the NumPy loops, so either
backward runs after either forward.

NOTE (measured, 2-core VM, W4's LSTM(128, 128) on (32, 64, 128)): rows of an LSTM never mix,
so the C loops run row ranges of the batch side by side on ember's native pool (``_parts``:
one per thread, none under 8 rows). Inside W4's step on two threads: forward 3.3-4.1 ->
2.0-2.5 ms, backward 3.0-3.7 -> 1.7-2.2 ms, the step 16.9-20.9 -> 14.2-17.5 ms (3 interleaved
runs of 40 steps, ``_parts`` 1 against 2). Session 5 measured the same split losing (5.6-6.5
ms) while OpenBLAS's own worker busy-waited on the second core after every product; ember now
runs its products on the same pool (backend/gemm.py) and keeps OpenBLAS on one thread.

The GRU's loops (``gru_forward``, ``gru_backward``) follow the same pattern on the NumPy
loops' buffers: per step the product and one C loop for the gates (forward), or the gate
gradients from the precomputed factors and the product (backward). NOTE (measured, session
7, ``python bench/rnn_micro.py --threads 2``, GRU(128, 128) on (64, 32, 128)): forward 8.13
-> 3.16 ms (PyTorch 4.42-4.64), forward+backward 18.3 -> 9.6 ms (PyTorch 17.0-18.2).

Taken for float32 NumPy arrays without a projection (``proj_size``), when the kernels are
built and NumPy's OpenBLAS is found (``kernels(xp, w_hr, *arrays)``). Results may differ from
the NumPy loops in the last bits: the kernels' tanh and sigmoid are within 4 ulp of float64.
"""


import numpy

from ember.backend import gemm, threads

__all__ = ["kernels", "forward", "backward", "gru_forward", "gru_backward"]

_MIN_ROWS = 8  # the register-tiled product's row block
def kernels(xp, w_hr, *arrays):
    """``(library, sgemm)`` when the native loops apply to this layer (NumPy, no projection,
    every array given float32), else None."""
    if xp is not numpy or w_hr is not None:
        return None
    if any(a is not None and a.dtype != numpy.float32 for a in arrays):
        return None
    found = gemm.native_kernels()  # the library and NumPy's cblas_sgemm, looked up once
    return None if found is None else (found[0], (found[1], found[3]))


def _address(a):
    return a.__array_interface__["data"][0] if a is not None else None


def _schedule(plan):
    """Batch size and first flat row of every step, in processing order (int64 arrays)."""
    sizes = numpy.empty(len(plan.steps), dtype=numpy.int64)
    rows = numpy.empty(len(plan.steps), dtype=numpy.int64)
    for k, r, b in plan.steps:
        sizes[k], rows[k] = b, r.start
    return sizes, rows


def _parts(batch):
    """Row ranges to run side by side: one per thread, none under _MIN_ROWS rows."""
    return max(1, min(threads.get_num_threads(), batch // _MIN_ROWS))


def _run(fn, found, plan, hidden, args, with_n=True):
    """One C call over every row (``fn(sgemm, ilp64, steps, sizes, rows, parts, batch, H[, N],
    *args)``), with OpenBLAS on one thread for the per-step products."""
    sgemm, ilp64 = found[1]
    sizes, rows = _schedule(plan)
    head = (plan.batch, hidden, plan.n) if with_n else (plan.batch, hidden)
    with threads.blas_threads(1, numpy):
        fn(sgemm, ilp64, len(sizes), _address(sizes), _address(rows), _parts(plan.batch),
           *head, *args)


def forward(found, plan, xg, h0, b_hh, w_t, hist_h, hist_c, gates, ig_all, tanh_c, scratch):
    """Fill the forward's buffers (see ``rnn._lstm_forward``)."""
    xg = numpy.ascontiguousarray(xg)
    bias = numpy.ascontiguousarray(b_hh, dtype=xg.dtype) if b_hh is not None else None
    args = (_address(w_t), _address(xg), h0 is not None, _address(bias), _address(hist_h),
            _address(hist_c), _address(gates), _address(ig_all), _address(tanh_c),
            _address(scratch))
    _run(found[0].ember_lstm_forward_f32, found, plan, hist_c.shape[2], args)


def backward(found, plan, work, w_hh, g_out, dh, dc, d_gates, need):
    """Run the backward time loop: fill ``d_gates`` (N, 4H) and leave the initial states'
    gradients in ``dh`` and ``dc`` (see ``rnn._lstm_backward``)."""
    gates, ig, tanh_c, hist_h, hist_c, _ = work
    w_hh = numpy.ascontiguousarray(w_hh)
    if g_out is not None:
        g_out = numpy.ascontiguousarray(g_out)
    args = (_address(w_hh), _address(g_out), _address(dh), _address(dc), _address(gates),
            _address(ig), _address(tanh_c), _address(hist_h), _address(hist_c),
            _address(d_gates), need["h0"], need["c0"])
    _run(found[0].ember_lstm_backward_f32, found, plan, hist_c.shape[2], args)


def gru_forward(found, plan, pre, h0, b_hn, w_t, hist, h_lin, scratch):
    """Fill the GRU forward's buffers (see ``rnn._gru_forward``): ``pre`` becomes the
    activated r, z, n in place."""
    b_hn = numpy.zeros(w_t.shape[0], numpy.float32) if b_hn is None else \
        numpy.ascontiguousarray(b_hn, dtype=numpy.float32)
    args = (_address(w_t), _address(pre), h0 is not None, _address(b_hn), _address(hist),
            _address(h_lin), _address(scratch))
    _run(found[0].ember_gru_forward_f32, found, plan, hist.shape[2], args, with_n=False)


def gru_backward(found, plan, w_hh, g_out, dh, gates, factors, d_x, d_hh, need_h0):
    """Run the GRU backward loop (see ``rnn._gru_backward``): fill the n part of ``d_x`` and
    ``d_hh``, leave the initial state's gradient in ``dh``."""
    w_hh = numpy.ascontiguousarray(w_hh)
    if g_out is not None:
        g_out = numpy.ascontiguousarray(g_out)
    factors = [numpy.ascontiguousarray(f) for f in factors]
    scratch = numpy.empty_like(dh)
    args = (_address(w_hh), _address(g_out), _address(dh), _address(gates)) + tuple(
        _address(f) for f in factors) + (_address(d_x), _address(d_hh), _address(scratch),
                                         need_h0)
    _run(found[0].ember_gru_backward_f32, found, plan, dh.shape[1], args, with_n=False)
