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
"""

from ember import creation
from ember.autograd import engine, grad_mode
from ember.autograd.function import Function
from ember.ops import activation, elementwise, linalg, shape
from ember.tensor import Tensor

__all__ = ["recurrence", "composed"]

TENSOR_METHODS = {}

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class _Plan:
    """Where the rows of each time step live in the flattened ``(N, G)`` input."""

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


def _state(xp, h0, batch, size, dtype):
    if h0 is None:
        return xp.zeros((batch, size), dtype=dtype)
    return h0.copy()


# ---- LSTM --------------------------------------------------------------------------------------


def _lstm_forward(xp, xg, h0, c0, w_hh, b_hh, w_hr, plan):
    hidden = w_hh.shape[0] // 4
    state = w_hh.shape[1]  # proj_size when projecting, else hidden
    dt = xg.dtype
    # sigmoid(a) = 0.5 * tanh(a / 2) + 0.5: halve the i, f, o pre-activations (folded into the
    # weights), one tanh over all four gates, then one affine map back.
    half = xp.full((4 * hidden,), 0.5, dtype=dt)
    half[2 * hidden:3 * hidden] = 1.0
    shift = half.copy()
    shift[2 * hidden:3 * hidden] = 0.0
    w_t = xp.ascontiguousarray((w_hh * half[:, None]).T)
    gates = xg + b_hh if b_hh is not None else xg.copy()
    gates *= half
    n = plan.n
    cells = xp.empty((n, hidden), dtype=dt)
    tanh_c = xp.empty((n, hidden), dtype=dt)
    h_prev = xp.empty((n, state), dtype=dt)
    c_prev = xp.empty((n, hidden), dtype=dt)
    out = xp.empty((n, state), dtype=dt)
    raw = xp.empty((n, hidden), dtype=dt) if w_hr is not None else None
    w_hr_t = xp.ascontiguousarray(w_hr.T) if w_hr is not None else None
    h = _state(xp, h0, plan.batch, state, dt)
    c = _state(xp, c0, plan.batch, hidden, dt)
    for t in plan.order:
        r, b = plan.rows[t], plan.sizes[t]
        g = gates[r]
        hp, cp = h[:b], c[:b]
        g += hp @ w_t
        xp.tanh(g, out=g)
        g *= half
        g += shift
        h_prev[r] = hp
        c_prev[r] = cp
        cn = cells[r]
        xp.multiply(g[:, hidden:2 * hidden], cp, out=cn)
        cn += g[:, :hidden] * g[:, 2 * hidden:3 * hidden]
        tc = tanh_c[r]
        xp.tanh(cn, out=tc)
        if raw is None:
            xp.multiply(g[:, 3 * hidden:], tc, out=out[r])
        else:
            xp.multiply(g[:, 3 * hidden:], tc, out=raw[r])
            xp.matmul(raw[r], w_hr_t, out=out[r])
        h[:b] = out[r]
        c[:b] = cn
    return (out, h, c), (gates, cells, tanh_c, h_prev, c_prev, raw)


def _lstm_backward(xp, plan, work, w_hh, w_hr, g_out, g_h, g_c, need):
    gates, cells, tanh_c, h_prev, c_prev, raw = work
    hidden = w_hh.shape[0] // 4
    i_, f_ = slice(0, hidden), slice(hidden, 2 * hidden)
    g_, o_ = slice(2 * hidden, 3 * hidden), slice(3 * hidden, 4 * hidden)
    # Derivatives of the activations, for all steps at once.
    deriv = gates * (1 - gates)
    deriv[:, g_] = 1 - gates[:, g_] * gates[:, g_]
    o_dtanh = gates[:, o_] * (1 - tanh_c * tanh_c)
    dh = g_h.copy()
    dc = g_c.copy()
    d_gates = xp.empty_like(gates)
    d_state = xp.empty_like(g_out) if w_hr is not None else None
    for t in reversed(plan.order):
        r, b = plan.rows[t], plan.sizes[t]
        dht = dh[:b]
        dht += g_out[r]
        if w_hr is not None:
            d_state[r] = dht
            dht = dht @ w_hr
        dct = dc[:b]
        dct += dht * o_dtanh[r]
        gt, dg = gates[r], d_gates[r]
        xp.multiply(dct, gt[:, g_], out=dg[:, i_])
        xp.multiply(dct, c_prev[r], out=dg[:, f_])
        xp.multiply(dct, gt[:, i_], out=dg[:, g_])
        xp.multiply(dht, tanh_c[r], out=dg[:, o_])
        dg *= deriv[r]
        dct *= gt[:, f_]
        xp.matmul(dg, w_hh, out=dh[:b])
    grads = {"xg": d_gates, "h0": dh, "c0": dc}
    if need["w_hh"]:
        grads["w_hh"] = d_gates.T @ h_prev
    if need["b_hh"]:
        grads["b_hh"] = d_gates.sum(0)
    if w_hr is not None and need["w_hr"]:
        grads["w_hr"] = d_state.T @ raw
    return grads


# ---- GRU ---------------------------------------------------------------------------------------


def _gru_forward(xp, xg, h0, c0, w_hh, b_hh, w_hr, plan):
    hidden = w_hh.shape[0] // 3
    dt = xg.dtype
    w_t = xp.ascontiguousarray(w_hh.T)
    n = plan.n
    gates = xp.empty((n, 3 * hidden), dtype=dt)  # r, z, n after their activations
    h_lin = xp.empty((n, hidden), dtype=dt)  # W_hn h + b_hn, which the reset gate scales
    h_prev = xp.empty((n, hidden), dtype=dt)
    out = xp.empty((n, hidden), dtype=dt)
    h = _state(xp, h0, plan.batch, hidden, dt)
    for t in plan.order:
        r, b = plan.rows[t], plan.sizes[t]
        hp = h[:b]
        hh = hp @ w_t
        if b_hh is not None:
            hh += b_hh
        g, x = gates[r], xg[r]
        rz = g[:, :2 * hidden]
        xp.add(x[:, :2 * hidden], hh[:, :2 * hidden], out=rz)
        rz *= 0.5
        xp.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        h_lin[r] = hh[:, 2 * hidden:]
        nt = g[:, 2 * hidden:]
        xp.multiply(g[:, :hidden], hh[:, 2 * hidden:], out=nt)
        nt += x[:, 2 * hidden:]
        xp.tanh(nt, out=nt)
        h_prev[r] = hp
        o = out[r]
        xp.subtract(hp, nt, out=o)
        o *= g[:, hidden:2 * hidden]
        o += nt
        h[:b] = o
    return (out, h), (gates, h_lin, h_prev)


def _gru_backward(xp, plan, work, w_hh, w_hr, g_out, g_h, g_c, need):
    gates, h_lin, h_prev = work
    hidden = w_hh.shape[0] // 3
    r_, z_, n_ = slice(0, hidden), slice(hidden, 2 * hidden), slice(2 * hidden, 3 * hidden)
    rg, zg, ng = gates[:, r_], gates[:, z_], gates[:, n_]
    # Factors of the chain rule that do not depend on the incoming gradient.
    dn_fac = (1 - zg) * (1 - ng * ng)
    dz_fac = (h_prev - ng) * zg * (1 - zg)
    dr_fac = h_lin * rg * (1 - rg)
    d_x = xp.empty_like(gates)
    d_hh = xp.empty_like(gates)
    dh = g_h.copy()
    for t in reversed(plan.order):
        r, b = plan.rows[t], plan.sizes[t]
        dht = dh[:b]
        dht += g_out[r]
        dx, dhh = d_x[r], d_hh[r]
        dan = dx[:, n_]
        xp.multiply(dht, dn_fac[r], out=dan)
        xp.multiply(dht, dz_fac[r], out=dx[:, z_])
        xp.multiply(dan, dr_fac[r], out=dx[:, r_])
        dhh[:, :2 * hidden] = dx[:, :2 * hidden]
        xp.multiply(dan, rg[r], out=dhh[:, n_])
        dht *= zg[r]
        dht += dhh @ w_hh
    grads = {"xg": d_x, "h0": dh}
    if need["w_hh"]:
        grads["w_hh"] = d_hh.T @ h_prev
    if need["b_hh"]:
        grads["b_hh"] = d_hh.sum(0)
    return grads


# ---- Elman RNN ---------------------------------------------------------------------------------


def _rnn_forward(xp, xg, h0, c0, w_hh, b_hh, w_hr, plan, relu):
    hidden = w_hh.shape[0]
    w_t = xp.ascontiguousarray(w_hh.T)
    out = xg + b_hh if b_hh is not None else xg.copy()
    h_prev = xp.empty((plan.n, hidden), dtype=xg.dtype)
    h = _state(xp, h0, plan.batch, hidden, xg.dtype)
    for t in plan.order:
        r, b = plan.rows[t], plan.sizes[t]
        hp = h[:b]
        o = out[r]
        o += hp @ w_t
        if relu:
            xp.maximum(o, 0, out=o)
        else:
            xp.tanh(o, out=o)
        h_prev[r] = hp
        h[:b] = o
    return (out, h), (out, h_prev)


def _rnn_backward(xp, plan, work, w_hh, w_hr, g_out, g_h, g_c, need, relu):
    out, h_prev = work
    deriv = (out > 0).astype(out.dtype) if relu else 1 - out * out
    d_a = xp.empty_like(out)
    dh = g_h.copy()
    for t in reversed(plan.order):
        r, b = plan.rows[t], plan.sizes[t]
        dht = dh[:b]
        dht += g_out[r]
        da = d_a[r]
        xp.multiply(dht, deriv[r], out=da)
        xp.matmul(da, w_hh, out=dh[:b])
    grads = {"xg": d_a, "h0": dh}
    if need["w_hh"]:
        grads["w_hh"] = d_a.T @ h_prev
    if need["b_hh"]:
        grads["b_hh"] = d_a.sum(0)
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
        if mode in ("RNN_TANH", "RNN_RELU"):
            work = (out, work[1])  # the output itself: version-checked when saved
        ctx.save_for_backward(xg, h0, c0, w_hh, b_hh, w_hr, *work)
        return (out,) + tuple(outputs[1:])

    @staticmethod
    def backward(ctx, g_out, g_h, g_c=None):
        saved = ctx.saved_tensors
        if grad_mode.is_grad_enabled():
            return _backward_composed(ctx, saved, (g_out, g_h, g_c))
        xg, h0, c0, w_hh, b_hh, w_hr = (_array(s) for s in saved[:6])
        work = [_array(s) for s in saved[6:]]
        plan, mode = ctx.plan, ctx.mode
        xp = ctx.xp
        if mode in ("RNN_TANH", "RNN_RELU"):
            work[0] = work[0].reshape(plan.n, -1)
        needs = ctx.needs_input_grad
        need = dict(zip(_INPUTS, needs))
        flat_out = g_out._data.reshape(plan.n, -1)
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

