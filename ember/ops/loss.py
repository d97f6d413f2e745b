"""Losses, PyTorch's ``torch.nn.functional`` losses: same names, arguments, defaults, values and
gradients, with ``reduction='none' | 'mean' | 'sum'`` everywhere (and the legacy
``size_average``/``reduce`` flags where PyTorch still takes them).

Most losses are composed from ember ops, so their gradients (also with respect to targets,
weights and margins' tensor arguments) and double backward come for free. Three are their own
Functions:

- ``cross_entropy``: the hottest loss (every classifier). One fused Function does
  log_softmax + nll + weights + ignore_index + label smoothing + the reduction, and its
  backward is ``softmax * s - q`` scaled (``q`` the per-class target coefficients).
- ``binary_cross_entropy``: a small Function so that saturated probabilities (exactly 0 or
  1) give PyTorch's finite gradient ``(x - y) / max(x (1 - x), 1e-12)`` instead of 0/0.
- ``ctc_loss``: the alpha-beta recursion on arrays, in ``ember/ops/_ctc.py``.

The margin and embedding losses (hinge, multi-margin, triplet, cosine embedding, soft margin)
live in ``loss_margin.py``; they use the argument helpers here, and every name they define is
also bound here (end of file), so ``loss.triplet_margin_loss`` keeps working.

Example::

    >>> logits = ember.randn(4, 10, requires_grad=True)
    >>> loss = F.cross_entropy(logits, ember.tensor([1, 0, 9, 3]))
    >>> loss.backward()
"""

import warnings

import numpy

from ember import errors
from ember.autograd import grad_mode
from ember.autograd.function import Function
from ember.backend import devices as _devices
from ember.ops import _common, _ctc, _xent_native, activation, elementwise, index, loss_margin
from ember.ops import shape
from ember.ops import reduce as _red
from ember.tensor import Tensor

# Exported at the top level as ``ember.NAME`` (the losses PyTorch also has as ``torch.NAME``);
# every loss is in ``ember.nn.functional``.
__all__ = ["binary_cross_entropy_with_logits", "ctc_loss", "kl_div", "poisson_nll_loss"]

TENSOR_METHODS = {}

_State = grad_mode._State
_REDUCTIONS = ("none", "mean", "sum")
_INT64 = range(-(2**63), 2**63)  # an ignore_index outside takes the NumPy path


class _TargetOutOfRange(errors.ShapeError, IndexError):
    """A class index outside [0, C): both a ShapeError and the IndexError PyTorch users catch."""


# ---- argument helpers ----------------------------------------------------------------------


def _dt(dtype):
    """'float32' (the name users pass to .to() / see in torch messages)."""
    return numpy.dtype(dtype).name


def _const(array):
    return Tensor._make(array, False, None, 0)


def _quiet():
    return numpy.errstate(divide="ignore", invalid="ignore", over="ignore")


def _reduction(name, size_average, reduce, reduction, allowed=_REDUCTIONS):
    """PyTorch's legacy flags win when given (None counts as True), else ``reduction``."""
    if size_average is not None or reduce is not None:
        if reduce is False:
            return "none"
        return "sum" if size_average is False else "mean"
    if reduction not in allowed:
        raise ValueError(
            f"{name}: reduction must be one of {', '.join(repr(r) for r in allowed)}. "
            f"Received: reduction={reduction!r}"
        )
    return reduction


def _tensor(name, what, x):
    if not isinstance(x, Tensor):
        raise errors.DTypeError(
            f"{name}: {what} must be a Tensor, got {type(x).__name__}; wrap it with "
            "ember.tensor(...)"
        )
    return x


def _float(name, what, x):
    _tensor(name, what, x)
    if x._data.dtype.kind != "f":
        raise errors.DTypeError(
            f"{name}: {what} must be floating point, got {_dt(x._data.dtype)}; convert "
            f"it with {what}.float()"
        )
    return x


def _shapes(**tensors):
    return ", ".join(f"{k} {errors.shape_str(v.shape)}" for k, v in tensors.items())


def _same_shape(name, input, target, strict=False):
    """PyTorch warns (and broadcasts) when target and input differ in shape; a few losses
    refuse, and shapes that do not broadcast always raise."""
    if tuple(input.shape) == tuple(target.shape):
        return
    if not strict:
        try:
            shape.broadcast_shapes(tuple(input.shape), tuple(target.shape))
        except ValueError:
            strict = True
    if strict:
        raise errors.ShapeError(
            f"{name}: target and input must have the same shape, got "
            f"{_shapes(input=input, target=target)}"
        )
    warnings.warn(
        f"{name}: target size {errors.shape_str(target.shape)} differs from input size "
        f"{errors.shape_str(input.shape)}; they are broadcast, which is likely not intended",
        stacklevel=3,
    )


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return _red.sum(loss)
    return _red.mean(loss)


def _weighted(name, loss, input, weight, reduction, mean_over_weight):
    """``loss * weight`` (same shape as input) and PyTorch's reductions of weighted losses."""
    if weight is None:
        return _reduce(loss, reduction)
    _tensor(name, "weight", weight)
    if tuple(weight.shape) != tuple(input.shape):
        raise errors.ShapeError(
            f"{name}: weight must have the input's shape, got {_shapes(input=input, weight=weight)}"
        )
    loss = loss * weight
    if reduction == "mean" and mean_over_weight:
        return _red.sum(loss) / _red.sum(weight)
    return _reduce(loss, reduction)


# ---- regression ----------------------------------------------------------------------------


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error ``(input - target) ** 2``.

    Args:
        input, target (Tensor): same shape (a different shape broadcasts, with a warning).
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        weight (Tensor, optional): per-element weights of the input's shape; ``'mean'`` then
            divides by ``weight.sum()``.

    Example::

        >>> F.mse_loss(ember.tensor([1.0, 2.0]), ember.tensor([1.0, 4.0]))
        tensor(2.)
    """
    reduction = _reduction("mse_loss", size_average, reduce, reduction)
    _float("mse_loss", "input", input)
    _same_shape("mse_loss", input, _tensor("mse_loss", "target", target))
    d = input - target
    return _weighted("mse_loss", d * d, input, weight, reduction, True)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error ``|input - target|``; arguments as :func:`mse_loss`."""
    reduction = _reduction("l1_loss", size_average, reduce, reduction)
    _same_shape("l1_loss", _float("l1_loss", "input", input), _tensor("l1_loss", "target", target))
    return _weighted("l1_loss", elementwise.abs(input - target), input, weight, reduction, True)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input -
    target``); ``beta=0`` is the L1 loss.

    Example::

        >>> F.smooth_l1_loss(ember.tensor([0.0, 3.0]), ember.zeros(2), reduction="none")
        tensor([0.0000, 2.5000])
    """
    reduction = _reduction("smooth_l1_loss", size_average, reduce, reduction)
    _float("smooth_l1_loss", "input", input)
    _same_shape("smooth_l1_loss", input, _tensor("smooth_l1_loss", "target", target))
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative. Received: beta={beta}")
    a = elementwise.abs(input - target)
    if beta == 0:
        return _reduce(a, reduction)
    loss = elementwise.where(a < beta, a * a * (0.5 / beta), a - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``; with ``weight``
    (input's shape) ``'mean'`` is the plain mean of the weighted losses, as in PyTorch."""
    reduction = _reduction("huber_loss", None, None, reduction)
    _float("huber_loss", "input", input)
    _same_shape("huber_loss", input, _tensor("huber_loss", "target", target))
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive. Received: delta={delta}")
    a = elementwise.abs(input - target)
    loss = elementwise.where(a < delta, a * a * 0.5, (a - 0.5 * delta) * delta)
    return _weighted("huber_loss", loss, input, weight, reduction, False)


# ---- classification over classes: cross_entropy and nll_loss -------------------------------


def _got(x, t):
    """The shapes an error message of _class_args reports (built only when raising)."""
    return f"input {errors.shape_str(x.shape)}, target {errors.shape_str(t.shape)}"


def _out_of_range(name, value, input_shape, n_classes, ignore_index, after=""):
    """The error for a target class outside [0, n_classes) that is not ignore_index."""
    return _TargetOutOfRange(
        f"{name}: target class {int(value)} is out of range for input with {n_classes} "
        f"classes (shape {errors.shape_str(input_shape)}); class indices must be in "
        f"[0, {n_classes - 1}] or equal ignore_index={ignore_index}{after}"
    )


def _class_args(name, input, target, weight, ignore_index, allow_probs):
    """Check (input, target, weight) of a loss over classes on dim 1; return
    ``(probs, n_classes, index_shape)``: ``probs`` says the target holds class probabilities."""
    _float(name, "input", input)
    _tensor(name, "target", target)
    x, t = input._data, target._data
    if x.ndim == 0:
        raise errors.ShapeError(
            f"{name}: input must be (C,), (N, C) or (N, C, d1, ...), got a 0-d tensor"
        )
    n_classes = x.shape[1] if x.ndim >= 2 else x.shape[0]
    index_shape = tuple(x.shape[:1] + x.shape[2:]) if x.ndim >= 2 else ()
    probs = False
    if t.dtype.kind == "f":
        if allow_probs and t.shape == x.shape:
            probs = True
        elif t.shape == index_shape:
            raise errors.DTypeError(
                f"{name}: expected class indices of dtype int64; got {_dt(t.dtype)} — "
                "use target.long()" + (
                    f" (or pass class probabilities of the input's shape "
                    f"{errors.shape_str(x.shape)})" if allow_probs else ""
                )
            )
        else:
            raise errors.ShapeError(
                f"{name}: expected target class indices of shape {errors.shape_str(index_shape)}"
                + (f" or class probabilities of shape {errors.shape_str(x.shape)}"
                   if allow_probs else "")
                + f"; got {_got(x, t)}"
            )
    elif t.dtype.kind in "iu":
        if t.shape != index_shape:
            if t.shape == x.shape:
                hint = (f"pass class indices target.argmax(dim={min(1, x.ndim - 1)}) of shape "
                        f"{errors.shape_str(index_shape)}")
                if allow_probs:
                    hint += " or class probabilities target.float()"
                raise errors.ShapeError(
                    f"{name}: integer target of the input's shape {errors.shape_str(x.shape)} "
                    f"looks like one-hot labels; {hint}"
                )
            if t.ndim >= 1 and len(index_shape) >= 1 and t.shape[0] != index_shape[0]:
                raise errors.ShapeError(
                    f"{name}: batch sizes differ: input batch {index_shape[0]}, target batch "
                    f"{t.shape[0]} ({_got(x, t)}); expected target of shape "
                    f"{errors.shape_str(index_shape)}"
                )
            raise errors.ShapeError(
                f"{name}: expected target of shape {errors.shape_str(index_shape)} for class "
                f"indices; got {_got(x, t)}"
            )
        if t.size and not (int(t.min()) >= 0 and int(t.max()) < n_classes):
            bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
            if bad.any():
                raise _out_of_range(name, t[bad].reshape(-1)[0], x.shape, n_classes,
                                    ignore_index)
    else:
        raise errors.DTypeError(
            f"{name}: target must hold class indices (int64), got {_dt(t.dtype)}; use "
            "target.long()"
        )
    if weight is not None:
        _float(name, "weight", weight)
        if tuple(weight.shape) != (n_classes,):
            raise errors.ShapeError(
                f"{name}: weight must have one entry per class, shape ({n_classes},); got "
                f"{errors.shape_str(weight.shape)}"
            )
    return probs, n_classes, index_shape


class CrossEntropy(Function):
    """log_softmax + nll (+ class weights, ignore_index, label smoothing, reduction) over
    rows of ``x (M, C)``.

    Every variant is ``loss_i = -sum_c q_ic log p_ic`` with per-class coefficients ``q``:
    ``(1 - eps) w_t onehot(t) + eps/C w`` for class indices (0 on ignored rows) and
    ``w (1 - eps) t + eps/C w`` for probabilities. So ``d loss_i / dx_i = p_i s_i - q_i`` with
    ``s_i = sum_c q_ic``, and ``d loss_i / dt_ic = -(1 - eps) w_c log p_ic``.

    NOTE: fused because cross_entropy ends every classifier step. Without create_graph the
    backward is array code (one scaled copy of softmax and a scatter of the targets); with
    create_graph it is the same formula in ember ops on a recomputed softmax, so double
    backward works. The common case (class indices, no weights, no smoothing, C-contiguous
    NumPy float logits) is one native call each way (``_xent_native``, which has the numbers:
    (128, 10) float32 forward + backward 68-74 -> 34-39 us), with the NumPy path's values.
    """

    native = None  # the native library when the forward took the native pass

    @staticmethod
    def forward(ctx, x, t, w, ignore_index, eps, reduction, probs):
        if not (probs or eps) and w is None and ignore_index in _INT64:
            lib = _xent_native.library(x)
            if lib is not None:
                return CrossEntropy._native_forward(ctx, lib, x, t, ignore_index, reduction)
        xp = ctx.xp
        m, c = x.shape
        dt = x.dtype.type  # Python floats times arrays keep x's dtype; numpy scalars may not
        with _quiet():
            z = x - xp.max(x, axis=1, keepdims=True) if m else x.copy()
            w_total = dt(c) if w is None else w.sum()
            unit = False  # every row has s_i = 1: the backward is p * g - onehot * g
            if probs:
                q = t * dt(1.0 - eps) + dt(eps / c) if eps else t
                if w is not None:
                    q = q * w
                s = q.sum(axis=1)
                qz = (q * z).sum(axis=1)
                denom = m
                ctx.q = q
            else:
                valid = t != ignore_index
                all_valid = bool(valid.all())
                ts = t if all_valid else xp.where(valid, t, 0)
                if w is None:
                    wt = valid.astype(x.dtype)
                    unit = all_valid and not eps
                else:
                    wt = w[ts] if all_valid else w[ts] * valid
                a = wt * dt(1.0 - eps) if eps else wt
                rows = xp.arange(m)
                picked = z[rows, ts]
                if eps:
                    b = valid.astype(x.dtype) * dt(eps / c)
                    zw = z.sum(axis=1) if w is None else z @ w
                    ctx.b = b
                denom = dt(m) if unit else wt.sum()
                ctx.rows, ctx.ts, ctx.a = rows, ts, a
            p = xp.exp(z, out=z)
            se = p.sum(axis=1)
            lse = xp.log(se)
            p /= se[:, None]
            if probs:
                loss = s * lse - qz
            else:
                loss = lse - picked if unit else a * (lse - picked)  # unit: a is all ones
                s = a
                if eps:
                    loss += b * (lse * w_total - zw)
                    s = a + b * w_total
            if reduction == "none":
                out = loss
            elif reduction == "sum":
                out = loss.sum()
            else:
                out = loss.sum() / denom
        ctx.w, ctx.s, ctx.denom, ctx.lse, ctx.unit = w, s, denom, lse, unit
        ctx.eps, ctx.reduction, ctx.probs = eps, reduction, probs
        ctx.save_for_backward(x, t if probs else None, p)
        return xp.asarray(out, dtype=x.dtype)

    @staticmethod
    def _native_forward(ctx, lib, x, t, ignore_index, reduction):
        t = _xent_native.targets(t)
        p, out, bad = _xent_native.forward(lib, x, t, ignore_index, reduction)
        if bad >= 0:
            raise _out_of_range("cross_entropy", t[bad], x.shape, x.shape[1], ignore_index)
        ctx.native, ctx.t, ctx.ignore_index, ctx.reduction = lib, t, ignore_index, reduction
        ctx.save_for_backward(x, None, p)
        return out

    @staticmethod
    def _native_backward(ctx, gy):
        p = ctx.saved_arrays[2]
        gx, bad = _xent_native.backward(ctx.native, p, ctx.t, gy._data, ctx.ignore_index,
                                        ctx.reduction)
        if bad >= 0:
            raise _out_of_range("cross_entropy", ctx.t[bad], p.shape, p.shape[1],
                                ctx.ignore_index, " (the target was changed after the forward)")
        return _const(gx), None, None, None, None, None, None

    @staticmethod
    def _native_coefficients(ctx, dtype):
        """What the NumPy forward keeps for ``_graph_backward``, after a native forward."""
        t = ctx.t
        valid = t != ctx.ignore_index
        ctx.rows, ctx.ts = numpy.arange(t.shape[0]), numpy.where(valid, t, 0)
        ctx.a = ctx.s = valid.astype(dtype)
        ctx.denom = ctx.a.sum()
        ctx.w, ctx.eps, ctx.probs = None, 0.0, False

    @staticmethod
    def backward(ctx, gy):
        if _State.enabled:
            return CrossEntropy._graph_backward(ctx, gy)
        if ctx.native is not None:
            return CrossEntropy._native_backward(ctx, gy)
        x, _, p = ctx.saved_tensors
        need_x, need_t = ctx.needs_input_grad[:2]
        g = gy._data
        with _quiet():
            if ctx.reduction == "mean":
                g = g / ctx.denom
            g_col = g[:, None] if g.ndim else g
            gx = gt = None
            if need_x:
                gx = p._data * (g_col if ctx.unit else (ctx.s * g)[:, None])
                if ctx.probs:
                    gx -= ctx.q * g_col
                else:
                    gx[ctx.rows, ctx.ts] -= ctx.a * g
                    if ctx.eps:
                        wb = ctx.b * g
                        gx -= wb[:, None] if ctx.w is None else wb[:, None] * ctx.w
                gx = _const(gx.astype(x.dtype, copy=False))
            if need_t:
                xa = x._data
                logp = xa - xa.max(axis=1, keepdims=True)
                logp -= ctx.lse[:, None]
                k = g_col * (ctx.eps - 1.0)
                gt = logp * (k if ctx.w is None else k * ctx.w)
                gt = _const(gt.astype(xa.dtype, copy=False))
        return gx, gt, None, None, None, None, None

    @staticmethod
    def _graph_backward(ctx, gy):
        """The same gradients as ember ops, for create_graph=True."""
        x, t, _ = ctx.saved_tensors
        if ctx.native is not None:
            CrossEntropy._native_coefficients(ctx, x._data.dtype)
        need_x, need_t = ctx.needs_input_grad[:2]
        m, c = x.shape
        eps, w = ctx.eps, ctx.w
        if ctx.reduction == "none":
            g = shape.reshape(gy, (m, 1))
        elif ctx.reduction == "sum":
            g = gy
        else:
            g = gy / _const(numpy.asarray(ctx.denom, dtype=x.dtype))
        gx = gt = None
        if need_x:
            if ctx.probs:
                q = t * (1.0 - eps) + eps / c if eps else t
                if w is not None:
                    q = q * _const(w)
                s = _red.sum(q, 1, True)
            else:
                qa = _devices.get_array_module(x._data).zeros_like(x._data)
                qa[ctx.rows, ctx.ts] = ctx.a
                if eps:
                    qa += ctx.b[:, None] * (1.0 if w is None else w)
                q = _const(qa)
                s = _const(ctx.s[:, None].astype(qa.dtype))
            gx = (activation.softmax(x, 1) * s - q) * g
        if need_t:
            k = activation.log_softmax(x, 1) * (eps - 1.0)
            gt = (k if w is None else k * _const(w)) * g
        return gx, gt, None, None, None, None, None


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross entropy between the softmax of the logits ``input`` and ``target``: a stable fused
    log_softmax + nll (fine for logits ~1e4 in float32).

    Args:
        input (Tensor): logits, ``(C,)``, ``(N, C)`` or ``(N, C, d1, d2, ...)`` (e.g. one score
            map per class for segmentation).
        target (Tensor): class indices (int64) of shape ``()``, ``(N,)`` or ``(N, d1, ...)``,
            or class probabilities (float) of the input's shape.
        weight (Tensor, optional): per-class rescaling, shape ``(C,)``.
        ignore_index (int): target value that adds nothing and is left out of the mean
            (class-index targets only). Default: -100.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. For class indices, ``'mean'``
            divides by the summed weights of the non-ignored targets; for probabilities, by
            the number of rows ``N * d1 * ...``.
        label_smoothing (float): in [0, 1]; mixes the target with the uniform distribution
            ``eps / C``. Default: 0.

    Shape:
        Output: a scalar, or the target's index shape ``(N, d1, ...)`` with ``'none'``.

    Example::

        >>> logits = ember.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
        >>> F.cross_entropy(logits, ember.tensor([0, 2]))
        tensor(0.1681)
    """
    name = "cross_entropy"
    reduction = _reduction(name, size_average, reduce, reduction)
    probs, c, index_shape = _class_args(name, input, target, weight, ignore_index, True)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"{name}: label_smoothing must be in [0, 1]. Received: label_smoothing="
            f"{label_smoothing}"
        )
    x, t = input, target
    if probs and target._data.dtype != input._data.dtype:
        t = target.to(input.dtype)
    if input.ndim == 1:
        x = shape.reshape(x, (1, c))
        t = shape.reshape(t, (1, c) if probs else (1,))
    elif input.ndim > 2:
        x = shape.reshape(shape.movedim(x, 1, -1), (-1, c))
        t = shape.reshape(shape.movedim(t, 1, -1), (-1, c)) if probs else shape.reshape(t, (-1,))
    w = None if weight is None else weight._data.astype(input._data.dtype, copy=False)
    out = CrossEntropy.apply(x, t, w, int(ignore_index), float(label_smoothing), reduction, probs)
    if reduction == "none" and input.ndim != 2:
        out = shape.reshape(out, index_shape)
    return out


def _expand1(a):
    return a.reshape(a.shape[:1] + (1,) + a.shape[1:])


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log likelihood ``-weight[t] * input[n, t]`` of log-probabilities ``input``.

    Args:
        input (Tensor): log-probabilities, ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``.
        target (Tensor): class indices of shape ``()``, ``(N,)`` or ``(N, d1, ...)``.
        weight (Tensor, optional): per-class rescaling, shape ``(C,)``.
        ignore_index (int): target value that is skipped (also in the mean). Default: -100.
        reduction (str): ``'mean'`` divides by the summed weights of non-ignored targets.

    Example::

        >>> logp = F.log_softmax(ember.randn(3, 5), dim=1)
        >>> F.nll_loss(logp, ember.tensor([1, 0, 4])).shape
        ember.Size([])
    """
    name = "nll_loss"
    reduction = _reduction(name, size_average, reduce, reduction)
    _class_args(name, input, target, weight, ignore_index, False)
    t = target._data
    xp = _devices.get_array_module(t)
    valid = t != ignore_index
    ts = xp.where(valid, t, 0)
    dt = input._data.dtype
    coef = valid.astype(dt) if weight is None else weight._data.astype(dt)[ts] * valid
    coef = xp.asarray(coef, dtype=dt)  # 0-d stays an array for an unbatched input
    if input.ndim == 1:
        picked = index.getitem(input, int(ts))
    else:
        picked = shape.squeeze(index.gather(input, 1, _const(_expand1(ts))), 1)
    loss = picked * _const(xp.negative(coef, out=coef.copy()))
    if reduction == "none":
        return loss
    total = _red.sum(loss)
    if reduction == "sum":
        return total
    with _quiet():
        return total / _const(xp.asarray(coef.sum(), dtype=dt))


# ---- binary classification -----------------------------------------------------------------


class BinaryCrossEntropy(Function):
    """Elementwise ``-(y max(log x, -100) + (1 - y) max(log(1 - x), -100))`` with PyTorch's
    gradients: ``(x - y) / max(x (1 - x), 1e-12)`` for x and ``log(1 - x) - log(x)`` for y,
    finite also where x is exactly 0 or 1."""

    @staticmethod
    def forward(ctx, x, y):
        xp = ctx.xp
        with _quiet():
            log_x = xp.maximum(xp.log(x), -100.0)
            log_1mx = xp.maximum(xp.log1p(-x), -100.0)
        ctx.save_for_backward(x, y)
        return xp.asarray(-(y * log_x + (1 - y) * log_1mx), dtype=x.dtype)

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[:2]
        gx = gy * (x - y) / elementwise.clamp(x * (1 - x), min=1e-12) if need_x else None
        gy_ = gy * (elementwise.log1p(-x) - elementwise.log(x)) if need_y else None
        return gx, gy_


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """Binary cross entropy between probabilities ``input`` in [0, 1] and ``target``; the logs
    are clamped to >= -100, so an input of exactly 0 or 1 gives a finite loss (as PyTorch).

    Prefer :func:`binary_cross_entropy_with_logits` on logits: it is stable and faster.

    Args:
        input (Tensor): probabilities, any shape.
        target (Tensor): the input's shape, values in [0, 1].
        weight (Tensor, optional): rescaling broadcast to the input's shape.

    Example::

        >>> F.binary_cross_entropy(ember.tensor([0.9, 0.2]), ember.tensor([1.0, 0.0]))
        tensor(0.1643)
    """
    name = "binary_cross_entropy"
    reduction = _reduction(name, size_average, reduce, reduction)
    _float(name, "input", input)
    _float(name, "target", target)
    _same_shape(name, input, target, strict=True)
    x = input._data
    if x.size and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(
            f"{name}: all elements of input must be probabilities in [0, 1], got values in "
            f"[{float(x.min()):g}, {float(x.max()):g}]; apply sigmoid first, or use "
            "binary_cross_entropy_with_logits on the logits"
        )
    if target._data.dtype != x.dtype:
        target = target.to(input.dtype)
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * _tensor(name, "weight", weight)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross entropy in one stable expression:
    ``max(x, 0) - x y + log1p(exp(-|x|))``, with ``pos_weight`` weighting the positive term.

    Args:
        input (Tensor): logits, any shape ``(*)``.
        target (Tensor): the input's shape, values in [0, 1].
        weight (Tensor, optional): rescaling broadcast to the input's shape.
        pos_weight (Tensor, optional): weight of positive examples, broadcast over the last
            (class) dim, e.g. ``(C,)`` for input ``(N, C)``.

    Example::

        >>> F.binary_cross_entropy_with_logits(ember.tensor([3.0, -1.0]), ember.tensor([1.0, 0.0]))
        tensor(0.1809)
    """
    name = "binary_cross_entropy_with_logits"
    reduction = _reduction(name, size_average, reduce, reduction)
    _float(name, "input", input)
    _tensor(name, "target", target)
    _same_shape(name, input, target, strict=True)
    # (1 - y) x - log(sigmoid(x)) == max(x, 0) - x y + log1p(exp(-|x|)); logsigmoid is the
    # stable form of the last two terms.
    neg_log_sig = -activation.logsigmoid(input)
    if pos_weight is None:
        loss = (1 - target) * input + neg_log_sig
    else:
        _tensor(name, "pos_weight", pos_weight)
        if pos_weight.ndim and input.ndim and pos_weight.shape[-1] not in (1, input.shape[-1]):
            raise errors.ShapeError(
                f"{name}: pos_weight must broadcast over the last (class) dim of the input, got "
                f"{_shapes(input=input, pos_weight=pos_weight)}; give one weight per class"
            )
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * neg_log_sig
    if weight is not None:
        loss = loss * _tensor(name, "weight", weight)
    return _reduce(loss, reduction)


# ---- distributions -------------------------------------------------------------------------


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence ``target * (log(target) - input)`` pointwise, with ``input``
    given as log-probabilities (and ``target`` too when ``log_target=True``).

    Args:
        reduction (str): ``'none'`` | ``'batchmean'`` (the KL divergence proper: sum divided
            by the batch size ``input.size(0)``) | ``'sum'`` | ``'mean'`` (over all elements).

    Example::

        >>> logq = F.log_softmax(ember.randn(4, 5), dim=1)
        >>> p = F.softmax(ember.randn(4, 5), dim=1)
        >>> F.kl_div(logq, p, reduction="batchmean").shape
        ember.Size([])
    """
    name = "kl_div"
    reduction = _reduction(name, size_average, reduce, reduction,
                           _REDUCTIONS + ("batchmean",))
    _float(name, "input", input)
    _float(name, "target", target)
    _same_shape(name, input, target)
    if log_target:
        loss = elementwise.exp(target) * (target - input)
    else:
        # xlogy(t, t) - t * x: a target of 0 adds 0 (not 0 * -inf).
        pos = target > 0
        safe = elementwise.where(pos, target, 1.0)
        loss = elementwise.where(pos, target * elementwise.log(safe), 0.0) - target * input
    if reduction == "batchmean":
        if loss.ndim == 0:
            return loss
        # Per-sample sums averaged over the batch: equal to sum / N, and a traced graph keeps
        # the batch size symbolic (dividing by input.shape[0] would freeze it in an export).
        per_sample = _red.sum(loss, tuple(range(1, loss.ndim))) if loss.ndim > 1 else loss
        return _red.mean(per_sample)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """Negative log likelihood of ``target ~ Poisson(rate)``: ``exp(input) - target * input``
    when ``log_input`` (input is the log-rate), else ``input - target * log(input + eps)``.
    ``full`` adds Stirling's term ``t log t - t + 0.5 log(2 pi t)`` for targets > 1."""
    name = "poisson_nll_loss"
    reduction = _reduction(name, size_average, reduce, reduction)
    _float(name, "input", input)
    _same_shape(name, input, _tensor(name, "target", target))
    if log_input:
        loss = elementwise.exp(input) - target * input
    else:
        loss = input - target * elementwise.log(input + eps)
    if full:
        big = target > 1
        t = elementwise.where(big, target, 2.0)
        stirling = t * elementwise.log(t) - t + 0.5 * elementwise.log(t * (2 * numpy.pi))
        loss = loss + elementwise.where(big, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Negative log likelihood of ``target ~ N(input, var)``:
    ``0.5 (log(max(var, eps)) + (input - target)**2 / max(var, eps))`` (+ ``0.5 log(2 pi)``
    when ``full``). As in PyTorch the clamp of ``var`` does not stop its gradient.

    Args:
        input (Tensor): means, ``(N, *)`` or ``(*)``.
        target (Tensor): the input's shape.
        var (Tensor or float): variances: the input's shape, or one dim fewer / a last dim of
            1 (one variance per sample, homoscedastic), or a positive number.
    """
    name = "gaussian_nll_loss"
    reduction = _reduction(name, None, None, reduction)
    _float(name, "input", input)
    _tensor(name, "target", target)
    if not isinstance(var, Tensor):
        if float(var) < 0:
            raise ValueError(f"{name}: var must be non-negative. Received: var={var}")
        var = _const(input._data.dtype.type(var) + 0 * input._data)
    ishape, vshape = tuple(input.shape), tuple(var.shape)
    if vshape != ishape:
        if ishape[:-1] == vshape:
            var = shape.unsqueeze(var, -1)
        elif not (ishape[:-1] == vshape[:-1] and vshape[-1:] == (1,)):
            raise errors.ShapeError(
                f"{name}: var must have the input's shape, or lack its last dim, or have a last "
                f"dim of 1; got {_shapes(input=input, var=var)}"
            )
    v = var._data
    if v.size and float(v.min()) < 0:
        raise ValueError(f"{name}: var has negative entries; variances must be >= 0")
    # Clamp without cutting the gradient: var + (max(var, eps) - var) as a constant.
    var = var + _const(_devices.get_array_module(v).maximum(v, eps) - v)
    d = input - target
    loss = 0.5 * (elementwise.log(var) + d * d / var)
    if full:
        loss = loss + 0.5 * float(numpy.log(2 * numpy.pi))
    return _reduce(loss, reduction)


# ---- sequences -----------------------------------------------------------------------------


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """Connectionist Temporal Classification loss: ``-log p(target | input)`` summed over all
    alignments of the target to the input frames (with blanks and repeats).

    The forward runs the alpha recursion in log space, vectorised over the batch and the
    extended label sequence (a loop over time only); the gradient is the alpha-beta one,
    written on arrays. Double backward (``create_graph=True`` through ctc_loss) is not
    supported and raises an error.

    The gradient is the exact derivative with respect to ``log_probs``. When ``log_probs`` is
    ``log_softmax(logits)`` (the usual case), the gradient of the logits equals PyTorch's;
    PyTorch's own gradient with respect to ``log_probs`` itself adds ``exp(log_probs)``,
    which cancels through that log_softmax.

    Args:
        log_probs (Tensor): ``(T, N, C)`` (or ``(T, C)`` unbatched) log-probabilities over C
            classes, blank included.
        targets (Tensor): int, padded ``(N, S)`` or all targets concatenated ``(sum(
            target_lengths),)``; must not contain ``blank``.
        input_lengths (Tensor or sequence of int): ``(N,)``, each <= T.
        target_lengths (Tensor or sequence of int): ``(N,)``, each <= S for padded targets.
        blank (int): the blank class. Default: 0.
        reduction (str): ``'none'`` (one loss per sample), ``'mean'`` (each loss divided by
            its target length, then the batch mean), or ``'sum'``.
        zero_infinity (bool): give impossible alignments (input too short) a loss and
            gradient of 0 instead of inf. Default: False.

    Example::

        >>> lp = F.log_softmax(ember.randn(30, 2, 5, requires_grad=True), dim=2)
        >>> tg = ember.tensor([[1, 2, 2], [3, 1, 0]])
        >>> F.ctc_loss(lp, tg, [30, 25], [3, 2]).shape
        ember.Size([])
    """
    name = "ctc_loss"
    reduction = _reduction(name, None, None, reduction)
    _float(name, "log_probs", log_probs)
    _tensor(name, "targets", targets)
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = shape.unsqueeze(log_probs, 1)
    if log_probs.ndim != 3:
        raise errors.ShapeError(
            f"{name}: log_probs must be (T, N, C) or (T, C), got "
            f"{errors.shape_str(log_probs.shape)}"
        )
    lp = log_probs._data
    xp = _devices.get_array_module(lp)
    padded, in_lens, tg_lens = _ctc.check_args(
        name, xp, lp.shape, targets._data, input_lengths, target_lengths, blank, unbatched
    )
    losses = _ctc.CTC.apply(log_probs, padded, in_lens, tg_lens, int(blank), bool(zero_infinity))
    if reduction == "none":
        return shape.reshape(losses, ()) if unbatched else losses
    if reduction == "sum":
        return _red.sum(losses)
    scale = 1.0 / xp.maximum(tg_lens, 1).astype(lp.dtype)
    return _red.mean(losses * _const(scale))


# The margin losses were defined in this file before it was split; they stay importable here.
_common.reexport(globals(), loss_margin)
