"""Fused recurrences: one Function runs a whole sequence of an RNN, LSTM or GRU layer (one
direction), with the time loop on arrays in ``forward`` and a hand-written array ``backward``.

The layer (``ember/nn/layers/rnn.py``) first computes the input projection of every time step
in one matmul, ``xg = x @ W_ih.T + b_ih``; ``Recurrence`` then adds the hidden projection step
by step and applies the gates (torch's gate order: LSTM i, f, g, o; GRU r, z, n with the reset
gate applied to ``W_hn h + b_hn``).

Layout. The sequence arrives either padded, ``xg`` of shape ``(T, B, G)``, or packed, ``xg`` of
shape ``(N, G)`` with ``batch_sizes`` (how many sequences are still running at each step,
non-increasing; the rows of step ``t`` follow those of step ``t - 1``, as in
``nn.utils.rnn.PackedSequence``). Step ``t`` updates only the first ``batch_sizes[t]`` rows of
the state, so a sequence that has ended keeps its last state (that is its ``h_n``), and in the
reverse direction a sequence starts from ``h0`` at its own last step. Padded input is the packed
case with every batch size equal to ``B``.

NOTE: the fused forward/backward exists because an LSTM step written op by op is ~40 tiny
ops (2,000-3,000 per training step of a 64-step sequence; PERF-NOTES.md). Its array backward
is not differentiable, so when grad mode is on during backward (``create_graph=True``)
``Recurrence.backward`` recomputes the sequence with ``composed`` (ember ops, one step at a
time) from the saved, graph-linked inputs and differentiates that instead: double backward
costs the slow path only when asked for.

The LSTM's and GRU's loops of a float32 layer (LSTM: without projection) run in C when ember's
native kernels are built (``ember/ops/_lstm_native.py``), on the same buffers; the NumPy loops
below are the rest, and the reference the native ones are tested against.
"""

from ember import creation
from ember.autograd import engine, grad_mode
from ember.autograd.function import Function
from ember.backend import gemm, threads
from ember.ops import _lstm_native, activation, elementwise, linalg, shape
from ember.tensor import Tensor

__all__ = ["recurrence", "composed"]

TENSOR_METHODS = {}

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# ---- one BLAS thread for the per-step products ---------------------------------------------------
#
# NOTE (measured on the 2-core machine at load 5-9): with OpenBLAS on 2 threads, the per-step
# product (32, 128) @ (128, 512) took 0.05-32 ms per call (median over 20 calls; a thread waits
# for a core another process holds), against a steady 0.05-0.07 ms on 1 thread; on an idle
# machine 2 threads gain little on a product this small. So the time loops run with OpenBLAS
# set to one thread and restore the caller's count afterwards (backend/threads.py); the
# whole-sequence products (input projection, weight gradients) keep every thread.

_openblas_threads = threads.openblas_threads


def _blas_one_thread(xp):
    """``with _blas_one_thread(xp):`` OpenBLAS on one thread inside, the caller's count after."""
    return threads.blas_threads(1, xp)


class _Plan:
    """Where the rows of each time step live in the flattened ``(N, G)`` input.

    ``steps`` lists ``(k, rows, b)`` in processing order: step ``k`` (0-based, in the order the
    recurrence runs) covers the rows ``rows`` of the flat input and updates the first ``b``
    rows of the state. The state before step ``k`` is ``hist[k]`` and after it ``hist[k + 1]``
    in the per-sequence state buffers (``_history``)."""

    def __init__(self, xg_shape, batch_sizes, reverse):
        if batch_sizes is None:
            steps, batch = xg_shape[0], xg_shape[1]
            sizes = [batch] * steps
        else:
            sizes = [int(b) for b in batch_sizes]
        offsets = [0] * len(sizes)
        for t in range(1, len(sizes)):
            offsets[t] = offsets[t - 1] + sizes[t - 1]
        self.sizes = sizes
        self.batch = sizes[0] if sizes else 0
        self.n = sum(sizes)
        self.rows = [slice(o, o + b) for o, b in zip(offsets, sizes)]
        order = range(len(sizes) - 1, -1, -1) if reverse else range(len(sizes))
        self.order = list(order)
        self.reverse = reverse
        self.uniform = all(b == self.batch for b in sizes)
        self.steps = [(k, self.rows[t], sizes[t]) for k, t in enumerate(self.order)]


def _history(xp, init, plan, size, dtype):
    """``(steps + 1, batch, size)``: slot 0 holds the initial state, slot ``k + 1`` the state
    after step ``k`` (rows a step does not update are carried over by ``_carry``)."""
    hist = xp.empty((len(plan.sizes) + 1, plan.batch, size), dtype=dtype)
    if init is None:
        hist[0] = 0
    else:
        hist[0] = init
    return hist


def _carry(hist, k, b):
    """Rows past ``b`` keep their state through step ``k`` (packed input only)."""
    if b < hist.shape[1]:
        hist[k + 1, b:] = hist[k, b:]


def _gather(xp, hist, plan, after):
    """The states in the row layout of the flat input: row block ``rows`` of step ``k`` holds
    ``hist[k + after, :b]`` (``after=1``: outputs; ``after=0``: the states each step read).
    A view where the layout allows (padded input, forward direction), else a copy."""
    steps = len(plan.sizes)
    width = hist.shape[2]
    if plan.uniform:
        block = hist[after:after + steps]
        if plan.reverse:
            block = block[::-1]
            return xp.ascontiguousarray(block).reshape(plan.n, width)
        return block.reshape(plan.n, width)
    out = xp.empty((plan.n, width), dtype=hist.dtype)
    for k, r, b in plan.steps:
        out[r] = hist[k + after, :b]
    return out


# ---- LSTM --------------------------------------------------------------------------------------
#
# NOTE (measured, 2-core Zen 5 under load 5-9, CPU time per call, 1 BLAS thread; LSTM(128,128)
# on (64, 32, 128)): NumPy ufuncs on column blocks of a (B, 4H) row ((32, 128) views of a
# (32, 512) array) cost ~4.3 us against ~1.5 us on a contiguous (32, 128) block, and a
# broadcast row-vector operand costs ~5.6 us on 16K elements against ~2.5 us for the same row
# tiled to (32, 512); a transposing copy of one step's (32, 4, 128) gates to gate-major costs
# ~4.6 us. So the kernels keep every per-step array contiguous: the pre-activations of a step
# are summed in a (B, 4H) scratch row, the gate factors are tiled rows, the activated gates
# are copied once to a gate-major (4, N, H) array whose blocks the cell update (three products
# that were column-block ufuncs) and the backward read, and states live in per-sequence history
# buffers, never copied per step (the outputs are a view of that history). The derivative
# factors of the backward are passes over blocks of many steps (_FACTOR_ROWS). Gate order stays
# torch's (i, f, g, o).
#
# NOTE (measured, 1 thread, CPU time, Sapphire Rapids 2-core machine at load 1-3, Nov 2026): on
# W4's shapes a step is one (32, 128) @ (128, 512) product of ~50 us (~85 GFLOP/s, OpenBLAS
# 0.3.31 SkylakeX kernels; torch's is ~35 us) and ~13 ufunc calls of 2-8 us (forward); the 64
# products of forward and backward are ~6.4 ms of the ~14 ms the kernels take, the dW_hh
# product another ~2.3 ms. Tried and dropped, no gain beyond noise: the product split per gate
# (4 x (128, 128), batched or not), in halves, transposed (W @ h.T) or with np.dot (47-60 us
# all); OPENBLAS_CORETYPE SapphireRapids or Cooperlake (same kernels); dW_hh as
# (h.T @ dg).T; one product for dW_ih and dW_hh over [x | h_prev] (5.1 ms against 2 x 2.5);
# the sigmoid's map back (x 0.5 + 0.5) written as a multiply that reads the transposed row
# instead of the gate-major copy (15.8 against 9.0 us: a ufunc on transposed operands costs
# 12.7 us where the strided copy costs 3.6 us); folding b_hh and the halving into a
# whole-sequence pre-pass over xg (two 1M-element passes cost what the 128 per-step calls
# save, ~0.4 ms); keeping f * c_prev from the forward so that the c_prev f (1 - f) factor takes
# two passes instead of three (factor passes 1.23 against 1.27 ms median, paired -3%: not
# worth 1 MB more saved per layer and direction).


def _lstm_forward(xp, xg, h0, c0, w_hh, b_hh, w_hr, plan):
    hidden = w_hh.shape[0] // 4
    state = w_hh.shape[1]  # proj_size when projecting, else hidden
    dt = xg.dtype
    n, batch = plan.n, plan.batch
    w_t = xp.ascontiguousarray(w_hh.T)
    gates = xp.empty((4, n, hidden), dtype=dt)  # activated i, f, g, o, gate-major
    ig_all = xp.empty((n, hidden), dtype=dt)  # i * g, kept for the backward
    hist_h = _history(xp, h0, plan, state, dt)
    hist_c = _history(xp, c0, plan, hidden, dt)
    tanh_c = xp.empty((n, hidden), dtype=dt)
    raw = xp.empty((n, hidden), dtype=dt) if w_hr is not None else None
    w_hr_t = xp.ascontiguousarray(w_hr.T) if w_hr is not None else None
    scratch = xp.empty((batch, 4 * hidden), dtype=dt)
    found = _lstm_native.kernels(xp, w_hr, xg, w_hh)
    if found is not None:
        _lstm_native.forward(found, plan, xg, h0, b_hh, w_t, hist_h, hist_c, gates, ig_all,
                             tanh_c, scratch)
    else:
        _lstm_numpy_loop(xp, plan, xg, h0, b_hh, w_t, hist_h, hist_c, gates, ig_all, tanh_c,
                         raw, w_hr_t, scratch)
    out = _gather(xp, hist_h, plan, 1)
    h_n, c_n = hist_h[-1].copy(), hist_c[-1].copy()
    return (out, h_n, c_n), (gates, ig_all, tanh_c, hist_h, hist_c, raw)


def _lstm_numpy_loop(xp, plan, xg, h0, b_hh, w_t, hist_h, hist_c, gates, ig_all, tanh_c, raw,
                     w_hr_t, scratch):
    hidden = hist_c.shape[2]
    batch, dt = plan.batch, xg.dtype
    i_all, f_all, g_all, o_all = gates
    # sigmoid(a) = 0.5 * tanh(a / 2) + 0.5: halve the i, f, o pre-activations, one tanh over all
    # four gates, then one affine map back (tiled factors: contiguous operands, see the NOTE).
    half = xp.full((batch, 4 * hidden), 0.5, dtype=dt)
    half[:, 2 * hidden:3 * hidden] = 1.0
    shift = xp.full((batch, 4 * hidden), 0.5, dtype=dt)
    shift[:, 2 * hidden:3 * hidden] = 0.0
    bias = xp.ascontiguousarray(xp.broadcast_to(b_hh, (batch, 4 * hidden))) \
        if b_hh is not None else None
    with _blas_one_thread(xp):
        for k, r, b in plan.steps:
            a = scratch[:b]
            if k or h0 is not None:  # a zero initial state adds nothing
                xp.matmul(hist_h[k, :b], w_t, out=a)
                a += xg[r]
            else:
                a[...] = xg[r]
            if bias is not None:
                a += bias[:b]
            a *= half[:b]
            xp.tanh(a, out=a)
            a *= half[:b]
            a += shift[:b]
            gates[:, r] = a.reshape(b, 4, hidden).transpose(1, 0, 2)
            cn = hist_c[k + 1, :b]
            xp.multiply(f_all[r], hist_c[k, :b], out=cn)
            ig = ig_all[r]
            xp.multiply(i_all[r], g_all[r], out=ig)
            cn += ig
            tc = tanh_c[r]
            xp.tanh(cn, out=tc)
            if raw is None:
                xp.multiply(o_all[r], tc, out=hist_h[k + 1, :b])
            else:
                xp.multiply(o_all[r], tc, out=raw[r])
                xp.matmul(raw[r], w_hr_t, out=hist_h[k + 1, :b])
            if b < batch:
                _carry(hist_h, k, b)
                _carry(hist_c, k, b)


def _lstm_factors(xp, gates, ig, tanh_c, c_prev, h, fac, lo, hi):
    """Rows ``lo:hi`` of the chain-rule factors that do not depend on the incoming gradient,
    gate-major ``(5, N, H)``: d gates = dc * [g i(1-i), c_prev f(1-f), i (1-g^2)] and
    dh * tanh(c) o(1-o); then dc += dh * o (1 - tanh(c)^2). Written with the forward's
    products ``ig = i g`` and ``h = o tanh(c)``, two passes each instead of three:
    i g (1-i) = ig - ig i,  i (1-g^2) = i - ig g,  tanh(c) o (1-o) = h - h o,
    o (1 - tanh(c)^2) = o - h tanh(c)."""
    i_a, f_a, g_a, o_a = (x[lo:hi] for x in gates)
    ig, tc, h = ig[lo:hi], tanh_c[lo:hi], h[lo:hi]
    fi, ff, fg, fo, fdc = (f[lo:hi] for f in fac)
    xp.multiply(ig, i_a, out=fi)
    xp.subtract(ig, fi, out=fi)
    xp.subtract(1, f_a, out=ff)
    ff *= f_a
    ff *= c_prev[lo:hi]
    xp.multiply(ig, g_a, out=fg)
    xp.subtract(i_a, fg, out=fg)
    xp.multiply(h, o_a, out=fo)
    xp.subtract(h, fo, out=fo)
    xp.multiply(h, tc, out=fdc)
    xp.subtract(o_a, fdc, out=fdc)


# NOTE (measured, 1 thread, N = 2048, H = 128, load ~3): the factor passes run in row blocks of
# _FACTOR_ROWS, whose ~1 MB of operands stay in cache (1.70 against 2.01 ms for the whole
# sequence at once). Computing each block just before the time loop reaches it gained nothing
# (within noise), and splitting the blocks over two threads with ``threads.parallel`` was
# slower on the shared 2-core machine (1.67 against 1.25 ms, best of 30): these passes are
# memory-bound, so they stay on one thread.
# Also dropped (measured, 2 threads, LSTM(128, 128) on (32, 64, 128), fwd+bwd, 40 interleaved
# rounds): dW_hh in 16-step blocks handed to a pool worker while the backward time loop runs
# (29.7 against 27.0 ms median), likely as each block's start and end take the GIL from the
# loop's small calls and the loop's thread then waits ~60 us for its wake-up.
_FACTOR_ROWS = 256


def _lstm_backward(xp, plan, work, w_hh, w_hr, g_out, g_h, g_c, need):
    gates, ig, tanh_c, hist_h, hist_c, raw = work
    hidden = w_hh.shape[0] // 4
    n = plan.n
    dt = gates.dtype
    d_gates = xp.empty((n, 4 * hidden), dtype=dt)
    dh = g_h.astype(dt, order="C")  # copies: the loops update them in place
    dc = g_c.astype(dt, order="C")
    d_state = xp.empty_like(g_out) if w_hr is not None else None
    g_out = _nonzero_or_none(g_out)
    found = _lstm_native.kernels(xp, w_hr, gates, w_hh, g_out)
    if found is not None:
        _lstm_native.backward(found, plan, work, w_hh, g_out, dh, dc, d_gates, need)
    else:
        _lstm_numpy_back_loop(xp, plan, work, w_hh, w_hr, g_out, dh, dc, d_gates, d_state,
                              need)
    grads = {"xg": d_gates, "h0": dh, "c0": dc}
    if need["w_hh"]:
        grads["w_hh"] = gemm.matmul(d_gates.T, _gather(xp, hist_h, plan, 0))
    if need["b_hh"]:
        grads["b_hh"] = _column_sums(xp, d_gates)
    if w_hr is not None and need["w_hr"]:
        grads["w_hr"] = gemm.matmul(d_state.T, raw)
    return grads


def _lstm_numpy_back_loop(xp, plan, work, w_hh, w_hr, g_out, dh, dc, d_gates, d_state, need):
    gates, ig, tanh_c, hist_h, hist_c, raw = work
    hidden = w_hh.shape[0] // 4
    n = plan.n
    dt = gates.dtype
    fac = xp.empty((5, n, hidden), dtype=dt)
    c_prev = _gather(xp, hist_c, plan, 0)
    h = raw if raw is not None else _gather(xp, hist_h, plan, 1)
    for start in range(0, n, _FACTOR_ROWS):
        _lstm_factors(xp, gates, ig, tanh_c, c_prev, h, fac, start, min(n, start + _FACTOR_ROWS))
    fifg, fo, fdc = fac[:3], fac[3], fac[4]
    f_a = gates[1]
    tmp = xp.empty((plan.batch, hidden), dtype=dt)
    # NOTE (measured, 1 thread, CPU time, the 64 steps' elementwise work alone at (32, 128),
    # 15 interleaved rounds, three runs): a step's gate gradients are formed gate-major in
    # ``sg`` (one product of the contiguous i, f, g factor blocks with dc broadcast over the
    # gate axis, one for o) and copied once, transposed, into the (B, 4H) row the matmul reads:
    # 1.05-1.18 / 1.07-1.31 ms (min / median) against 1.19-1.31 / 1.25-1.49 ms for four
    # products written into column blocks of that row. Tried and dropped: the same broadcast
    # product written straight into the row's (B, 3, H) column blocks (15-18 us a step against
    # 7.4 us gate-major: NumPy iterates 128-element rows there).
    sg = xp.empty((4, plan.batch, hidden), dtype=dt)
    with _blas_one_thread(xp):
        for k, r, b in reversed(plan.steps):
            dht = dh[:b]
            if g_out is not None:
                dht += g_out[r]
            if w_hr is not None:
                d_state[r] = dht
                dht = dht @ w_hr
            dct = dc[:b]
            t = tmp[:b]
            xp.multiply(dht, fdc[r], out=t)
            dct += t
            s = sg[:, :b]
            xp.multiply(fifg[:, r], dct, out=s[:3])
            xp.multiply(fo[r], dht, out=s[3])
            dg = d_gates[r]
            dg.reshape(b, 4, hidden)[...] = s.transpose(1, 0, 2)
            # Step 0 (the last one here) feeds only the initial states: skip what is not asked.
            if k or need["c0"]:
                dct *= f_a[r]
            if k or need["h0"]:
                xp.matmul(dg, w_hh, out=dh[:b])


def _nonzero_or_none(g_out):
    """None for an all-zero output gradient: the backward loops then skip adding it per step.

    NOTE (measured, 1 thread, CPU time): when only the final states are used (W4 reads h_n),
    the engine passes zeros for ``output``; one ``any()`` over them costs ~0.05 ms at
    (2048, 128) and skips 64 additions of ~2.5 us each (~0.15 ms)."""
    return g_out if g_out.any() else None


def _column_sums(xp, a):
    """``a.sum(0)`` as a matrix-vector product (NOTE: 0.20 against 0.35 ms at (2048, 512))."""
    return xp.matmul(xp.ones((a.shape[0],), dtype=a.dtype), a)


# ---- GRU ---------------------------------------------------------------------------------------


def _gru_forward(xp, xg, h0, c0, w_hh, b_hh, w_hr, plan):
    hidden = w_hh.shape[0] // 3
    dt = xg.dtype
    rz_, n_ = slice(0, 2 * hidden), slice(2 * hidden, None)
    # As in the LSTM: the r and z pre-activations are halved up front (weights and one pass over
    # xg, with their part of b_hh), so sigmoid is one tanh and an affine map per step.
    half = xp.full((3 * hidden,), 0.5, dtype=dt)
    half[n_] = 1.0
    w_t = xp.ascontiguousarray((w_hh * half[:, None]).T)
    pre = xp.multiply(xg, half)  # r, z halved; n as it is (x W_in^T + b_in)
    if b_hh is not None:
        pre[:, rz_] += b_hh[rz_] * 0.5
    b_hn = b_hh[n_] if b_hh is not None else None
    h_lin = xp.empty((plan.n, hidden), dtype=dt)  # W_hn h + b_hn, which the reset gate scales
    hist = _history(xp, h0, plan, hidden, dt)
    mm = xp.empty((plan.batch, 3 * hidden), dtype=dt)
    found = _lstm_native.kernels(xp, w_hr, xg, w_hh)
    if found is not None:
        _lstm_native.gru_forward(found, plan, pre, h0, b_hn, w_t, hist, h_lin, mm)
        return (_gather(xp, hist, plan, 1), hist[-1].copy()), (pre, h_lin, hist)
    rn = xp.empty((plan.batch, hidden), dtype=dt)
    with _blas_one_thread(xp):
        for k, r, b in plan.steps:
            g = pre[r]  # becomes r, z, n after their activations
            m = mm[:b]
            hp = hist[k, :b]
            xp.matmul(hp, w_t, out=m)
            rz = g[:, rz_]
            rz += m[:, rz_]
            xp.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            hl = h_lin[r]
            if b_hn is not None:
                xp.add(m[:, n_], b_hn, out=hl)
            else:
                hl[...] = m[:, n_]
            t = rn[:b]
            xp.multiply(g[:, :hidden], hl, out=t)
            nt = g[:, n_]
            nt += t
            xp.tanh(nt, out=nt)
            o = hist[k + 1, :b]
            xp.subtract(hp, nt, out=o)
            o *= g[:, hidden:2 * hidden]
            o += nt
            if b < plan.batch:
                _carry(hist, k, b)
    return (_gather(xp, hist, plan, 1), hist[-1].copy()), (pre, h_lin, hist)


def _gru_backward(xp, plan, work, w_hh, w_hr, g_out, g_h, g_c, need):
    gates, h_lin, hist = work
    hidden = w_hh.shape[0] // 3
    r_, z_, n_ = slice(0, hidden), slice(hidden, 2 * hidden), slice(2 * hidden, 3 * hidden)
    rg, zg, ng = gates[:, r_], gates[:, z_], gates[:, n_]
    h_prev = _gather(xp, hist, plan, 0)
    # Factors of the chain rule that do not depend on the incoming gradient.
    dn_fac = (1 - zg) * (1 - ng * ng)
    dz_fac = (h_prev - ng) * zg * (1 - zg)
    dr_fac = h_lin * rg * (1 - rg)
    d_x = xp.empty_like(gates)
    d_hh = xp.empty_like(gates)
    dh = g_h.astype(gates.dtype, order="C")  # a copy: the loops update it in place
    mm = xp.empty_like(dh)
    g_out = _nonzero_or_none(g_out)
    found = _lstm_native.kernels(xp, w_hr, gates, w_hh, g_out)
    if found is not None:
        _lstm_native.gru_backward(found, plan, w_hh, g_out, dh, gates, (dn_fac, dz_fac, dr_fac),
                                  d_x, d_hh, need["h0"])
    else:
        _gru_numpy_back_loop(xp, plan, w_hh, g_out, dh, mm, gates, dn_fac, dz_fac, dr_fac, d_x,
                             d_hh, hidden)
    d_x[:, :2 * hidden] = d_hh[:, :2 * hidden]  # r and z: the same on both sides
    grads = {"xg": d_x, "h0": dh}
    if need["w_hh"]:
        grads["w_hh"] = gemm.matmul(d_hh.T, h_prev)
    if need["b_hh"]:
        grads["b_hh"] = _column_sums(xp, d_hh)
    return grads


def _gru_numpy_back_loop(xp, plan, w_hh, g_out, dh, mm, gates, dn_fac, dz_fac, dr_fac, d_x,
                         d_hh, hidden):
    r_, z_, n_ = slice(0, hidden), slice(hidden, 2 * hidden), slice(2 * hidden, 3 * hidden)
    rg, zg = gates[:, r_], gates[:, z_]
    with _blas_one_thread(xp):
        for k, r, b in reversed(plan.steps):
            dht = dh[:b]
            if g_out is not None:
                dht += g_out[r]
            dhh = d_hh[r]
            dan = d_x[r, n_]
            xp.multiply(dht, dn_fac[r], out=dan)
            xp.multiply(dht, dz_fac[r], out=dhh[:, z_])
            xp.multiply(dan, dr_fac[r], out=dhh[:, r_])
            xp.multiply(dan, rg[r], out=dhh[:, n_])
            dht *= zg[r]
            m = mm[:b]
            xp.matmul(dhh, w_hh, out=m)
            dht += m


# ---- Elman RNN ---------------------------------------------------------------------------------


def _rnn_forward(xp, xg, h0, c0, w_hh, b_hh, w_hr, plan, relu):
    hidden = w_hh.shape[0]
    w_t = xp.ascontiguousarray(w_hh.T)
    pre = xg + b_hh if b_hh is not None else xg
    hist = _history(xp, h0, plan, hidden, xg.dtype)
    mm = xp.empty((plan.batch, hidden), dtype=xg.dtype)
    zero = xp.zeros((), dtype=xg.dtype)
    with _blas_one_thread(xp):
        for k, r, b in plan.steps:
            m = mm[:b]
            xp.matmul(hist[k, :b], w_t, out=m)
            o = hist[k + 1, :b]
            xp.add(pre[r], m, out=o)
            if relu:
                xp.maximum(o, zero, out=o)
            else:
                xp.tanh(o, out=o)
            if b < plan.batch:
                _carry(hist, k, b)
    return (_gather(xp, hist, plan, 1), hist[-1].copy()), (hist,)


def _rnn_backward(xp, plan, work, w_hh, w_hr, g_out, g_h, g_c, need, relu):
    (hist,) = work
    out = _gather(xp, hist, plan, 1)
    deriv = (out > 0).astype(out.dtype) if relu else 1 - out * out
    d_a = xp.empty_like(out)
    dh = g_h.copy()
    g_out = _nonzero_or_none(g_out)
    with _blas_one_thread(xp):
        for k, r, b in reversed(plan.steps):
            dht = dh[:b]
            if g_out is not None:
                dht += g_out[r]
            da = d_a[r]
            xp.multiply(dht, deriv[r], out=da)
            xp.matmul(da, w_hh, out=dh[:b])
    grads = {"xg": d_a, "h0": dh}
    if need["w_hh"]:
        grads["w_hh"] = gemm.matmul(d_a.T, _gather(xp, hist, plan, 0))
    if need["b_hh"]:
        grads["b_hh"] = _column_sums(xp, d_a)
    return grads


def _forward_kernel(mode):
    if mode == "LSTM":
        return _lstm_forward
    if mode == "GRU":
        return _gru_forward
    relu = mode == "RNN_RELU"
    return lambda *args: _rnn_forward(*args, relu=relu)


def _backward_kernel(mode):
    if mode == "LSTM":
        return _lstm_backward
    if mode == "GRU":
        return _gru_backward
    relu = mode == "RNN_RELU"
    return lambda *args: _rnn_backward(*args, relu=relu)


# ---- the Function ------------------------------------------------------------------------------

_INPUTS = ("xg", "h0", "c0", "w_hh", "b_hh", "w_hr")


class Recurrence(Function):
    """One layer, one direction, the whole sequence: ``(out, h_n)`` or ``(out, h_n, c_n)``."""

    @staticmethod
    def forward(ctx, xg, h0, c0, w_hh, b_hh, w_hr, mode, reverse, batch_sizes):
        xp = ctx.xp
        plan = _Plan(xg.shape, batch_sizes, reverse)
        flat = xg.reshape(plan.n, xg.shape[-1])
        outputs, work = _forward_kernel(mode)(xp, flat, h0, c0, w_hh, b_hh, w_hr, plan)
        out = outputs[0].reshape(xg.shape[:-1] + (outputs[0].shape[-1],))
        ctx.plan = plan
        ctx.mode = mode
        ctx.reverse = reverse
        ctx.batch_sizes = batch_sizes
        # ``out`` may be a view of a work buffer (the state history): saving the output itself
        # makes an in-place change of it an error in backward instead of a wrong gradient.
        ctx.save_for_backward(xg, h0, c0, w_hh, b_hh, w_hr, out, *work)
        return (out,) + tuple(outputs[1:])

    @staticmethod
    def backward(ctx, g_out, g_h, g_c=None):
        saved = ctx.saved_tensors
        if grad_mode.is_grad_enabled():
            return _backward_composed(ctx, saved, (g_out, g_h, g_c))
        xg, h0, c0, w_hh, b_hh, w_hr = (_array(s) for s in saved[:6])
        work = [_array(s) for s in saved[7:]]
        plan, mode = ctx.plan, ctx.mode
        xp = ctx.xp
        needs = ctx.needs_input_grad
        need = dict(zip(_INPUTS, needs))
        flat_out = g_out._data.reshape(plan.n, g_out.shape[-1])
        g_c = g_c._data if g_c is not None else None
        grads = _backward_kernel(mode)(
            xp, plan, work, w_hh, w_hr, flat_out, g_h._data, g_c, need
        )
        grads["xg"] = grads["xg"].reshape(xg.shape)
        result = []
        for name, needed in zip(_INPUTS, needs):
            g = grads.get(name) if needed else None
            result.append(Tensor._make(g, False, None, 0) if g is not None else None)
        return tuple(result) + (None, None, None)


def _array(t):
    return t._data if t is not None else None


def _backward_composed(ctx, saved, grads):
    """create_graph=True: differentiate the op-by-op recomputation, so the gradient is itself
    differentiable (see the module NOTE)."""
    inputs = saved[:6]
    wrt = [i for i, need in enumerate(ctx.needs_input_grad[:6]) if need and inputs[i] is not None]
    outputs = composed(*inputs, ctx.mode, ctx.reverse, ctx.batch_sizes)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None]
    got = engine.grad([o for o, _ in pairs], [inputs[i] for i in wrt], [g for _, g in pairs],
                      create_graph=True, allow_unused=True)
    result = [None] * 9
    for i, g in zip(wrt, got):
        result[i] = g
    return tuple(result)


# ---- the composed (op-by-op, differentiable) reference ------------------------------------------


def _sig(x):
    return activation.sigmoid(x)


def _step(mode, x, h, c, w_hh, b_hh, w_hr):
    """One step of the cell on Tensors: new (h, c)."""
    hh = linalg.matmul(h, shape.t(w_hh))
    if b_hh is not None:
        hh = hh + b_hh
    if mode == "LSTM":
        i, f, g, o = shape.chunk(x + hh, 4, 1)
        c = _sig(f) * c + _sig(i) * elementwise.tanh(g)
        h = _sig(o) * elementwise.tanh(c)
        if w_hr is not None:
            h = linalg.matmul(h, shape.t(w_hr))
        return h, c
    if mode == "GRU":
        xr, xz, xn = shape.chunk(x, 3, 1)
        hr, hz, hn = shape.chunk(hh, 3, 1)
        r = _sig(xr + hr)
        z = _sig(xz + hz)
        n = elementwise.tanh(xn + r * hn)
        return n + z * (h - n), None
    a = x + hh
    return (activation.relu(a) if mode == "RNN_RELU" else elementwise.tanh(a)), None


def composed(xg, h0, c0, w_hh, b_hh, w_hr, mode, reverse, batch_sizes):
    """The same computation as ``Recurrence`` written step by step with ember ops (slow, but
    differentiable to any order). Arguments and results as ``recurrence``."""
    padded = batch_sizes is None
    plan = _Plan(tuple(xg.shape), batch_sizes, reverse)
    flat = shape.reshape(xg, (plan.n, xg.shape[-1]))
    state = w_hh.shape[1]
    hidden = w_hh.shape[0] // GATES[mode]
    h = h0 if h0 is not None else _zeros(xg, (plan.batch, state))
    c = c0 if c0 is not None else _zeros(xg, (plan.batch, hidden))
    outs = [None] * len(plan.sizes)
    for t in plan.order:
        b = plan.sizes[t]
        hn, cn = _step(mode, flat[plan.rows[t]], h[:b], c[:b] if mode == "LSTM" else None,
                       w_hh, b_hh, w_hr)
        outs[t] = hn
        h = _merge(hn, h, b)
        if mode == "LSTM":
            c = _merge(cn, c, b)
    out = shape.cat(outs, 0) if outs else _zeros(xg, (0, state))
    if padded:
        out = shape.reshape(out, tuple(xg.shape[:-1]) + (state,))
    return (out, h, c) if mode == "LSTM" else (out, h)


def _merge(new, old, b):
    """The state after a step: ``new`` for the first ``b`` rows, ``old`` for the rest."""
    if b == old.shape[0]:
        return new
    return shape.cat([new, old[b:]], 0)


def _zeros(like, size):
    return creation.zeros(*size, dtype=like.dtype, device=like.device)


def recurrence(xg, h0, c0, w_hh, b_hh, w_hr, mode, reverse=False, batch_sizes=None):
    """Run one recurrent layer in one direction over a whole sequence (fused).

    Args:
        xg (Tensor): the input projection ``x @ W_ih.T + b_ih``, padded ``(T, B, G * H)`` or
            packed ``(N, G * H)`` (then ``batch_sizes`` is required).
        h0, c0 (Tensor or None): initial states ``(B, H_out)`` and ``(B, H)`` (LSTM only for
            ``c0``); None means zeros.
        w_hh (Tensor): ``(G * H, H_out)``; b_hh (Tensor or None): ``(G * H,)``;
        w_hr (Tensor or None): LSTM projection ``(H_out, H)``.
        mode (str): "RNN_TANH", "RNN_RELU", "LSTM" or "GRU".
        reverse (bool): run from the last step to the first.
        batch_sizes (sequence of int, optional): the per-step batch sizes of packed input.

    Returns:
        ``(out, h_n)``, or ``(out, h_n, c_n)`` for "LSTM"; ``out`` has the layout of ``xg``.
    """
    if mode not in GATES:
        raise ValueError(f"recurrence: unknown mode {mode!r}; expected one of {sorted(GATES)}")
    sizes = tuple(int(b) for b in batch_sizes) if batch_sizes is not None else None
    return Recurrence.apply(xg, h0, c0, w_hh, b_hh, w_hr, mode, reverse, sizes)

