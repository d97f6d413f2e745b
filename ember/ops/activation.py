"""Activations: relu family, sigmoid family, gelu/silu/mish, softplus, softmax/log_softmax.

Each op follows ``torch.nn.functional``: same names, arguments, defaults, values and gradients
(including PyTorch's choice of gradient at the kinks, e.g. relu'(0) = 0, hardtanh' = 0 at both
bounds). Forwards are fused array code, written so that no intermediate overflows (sigmoid,
logsigmoid and softplus at |x| ~ 1000 in float32; softmax subtracts the max).

Backwards are ember ops, so every gradient is itself differentiable. Two private Functions
keep them cheap:

- ``_Scale(g, factor)``: ``g * factor`` with a constant array ``factor`` (a mask or piecewise
  slope). It is the whole backward of the piecewise-linear ops, and its own backward.
- ``_DerivMul(g, x, deriv, second)``: ``g * f'(x)`` where ``f'(x)`` was computed by the forward
  as an array; only its own backward (double backward) needs ``f''``, as ember ops. gelu, silu,
  elu and hardswish use it, so e.g. erf is evaluated once per step, not again in the backward.

mish and selu are composed from the others and need no backward of their own.
"""

import math

import numpy

from ember import dtypes, errors
from ember.autograd import grad_mode
from ember.autograd.function import Function, _Tracing
from ember.autograd.function import _as_array as _to_array
from ember.ops import _common, _relu_native, elementwise, reduce
from ember.tensor import Tensor

_State = grad_mode._State
_ndarray = numpy.ndarray
_make = Tensor._make

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = math.sqrt(2.0 / math.pi)  # tanh-gelu: tanh(C * (x + K * x**3))
_GELU_K = 0.044715
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


# ---- helpers -------------------------------------------------------------------------------


def _tensor_arg(op_name, x):
    if not isinstance(x, Tensor):
        raise errors.DTypeError(
            f"{op_name}: expected a Tensor, got {type(x).__name__}; wrap the data with "
            "ember.tensor(...) first"
        )
    return x


def _float_arg(op_name, x):
    """The input itself; integer/bool inputs are refused as PyTorch refuses them."""
    _tensor_arg(op_name, x)
    if x._data.dtype.kind != "f":
        raise errors.DTypeError(
            f"{op_name}: expected a floating-point input, got {dtypes.name(x.dtype)}; convert it "
            "first, e.g. x.float()"
        )
    return x


def _const(array):
    return Tensor._make(array, False, None, 0)


def _as_array(xp, y):
    """Ufuncs on 0-d arrays return scalars; outputs must be arrays so saved outputs link."""
    return y if hasattr(y, "flags") and not isinstance(y, numpy.generic) else xp.asarray(y)


class _Scale(Function):
    """``g * factor`` for a constant array ``factor`` (bool mask or slope of g's dtype)."""

    @staticmethod
    def forward(ctx, g, factor):
        ctx.factor = factor
        return _as_array(ctx.xp, g * factor)

    @staticmethod
    def backward(ctx, gy):
        return _Scale.apply(gy, ctx.factor), None


class _DerivMul(Function):
    """``g * f'(x)`` where the forward already has ``deriv = f'(x)`` as an array.

    ``second(x)`` gives ``f''(x)`` as ember ops on a Tensor, so the result is differentiable
    to any order: d/dg is this op again, d/dx is ``upstream * g * f''(x)``.
    """

    @staticmethod
    def forward(ctx, g, x, deriv, second):
        ctx.deriv = deriv
        ctx.second = second
        ctx.save_for_backward(g, x)
        return _as_array(ctx.xp, g * deriv)

    @staticmethod
    def backward(ctx, gy):
        g, x = ctx.saved_tensors
        need_g, need_x = ctx.needs_input_grad[:2]
        gg = _DerivMul.apply(gy, x, ctx.deriv, ctx.second) if need_g else None
        gx = gy * g * ctx.second(x) if need_x else None
        return gg, gx, None, None


def _sigmoid_array(xp, x):
    """1 / (1 + exp(-x)): accurate everywhere; exp(-x) = inf for x << 0 gives the right 0."""
    t = xp.empty_like(x)
    xp.negative(x, out=t)
    with numpy.errstate(over="ignore"):
        xp.exp(t, out=t)
    t += 1
    xp.reciprocal(t, out=t)
    return t


def _softplus_array(xp, z):
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), which never overflows."""
    t = _as_array(xp, xp.abs(z))
    xp.negative(t, out=t)
    xp.exp(t, out=t)
    xp.log1p(t, out=t)
    t += xp.maximum(z, xp.zeros(z.shape, z.dtype))
    return _as_array(xp, t)


# ---- relu family: piecewise linear, backward is one _Scale ---------------------------------


class ReLU(Function):
    # NOTE: measured with NumPy 2.4, one thread. Forward: np.maximum(x, 0) (0 a weak Python
    # scalar, so x keeps its dtype) against a zeros array of x's shape: 277-344 vs 552 us on
    # (64, 16, 28, 28) and 373-489 vs 759 us on (32, 32, 32, 32) float32 (allocating and
    # filling the zeros is a full extra pass); equal within noise on (128, 512) (17-20 us).
    # x * (x > 0) gives nan at -inf; np.where(x > 0, x, 0) was ~10x slower than arithmetic.
    # NOTE: on NumPy the 0 is a cached 0-d array of x's dtype rather than the Python int:
    # NumPy's weak-scalar handling costs ~0.4 us per call (0.6 vs 1.0 us on 4x4 float32); the
    # result dtype is the same. A 0-d result comes back as a NumPy scalar; apply makes it an
    # array (and swaps it into what was saved).
    # NOTE (measured, NumPy 2.4, one thread, CPU time, old/new interleaved, medians of 9-11
    # rounds): the backward was g * (y > 0) on the saved y. Inside W3's step it cost 1.8 ms a
    # call (cProfile, 5 calls), against 0.8-1.0 ms on warm arrays: in a step y and g are
    # cold (4 MB each, L2 is 2 MB), and the bool pass (~0.25 ms warm) plus the float*bool
    # multiply (~0.65 ms warm; NumPy casts the bool in its buffered loop, but a float32 0/1
    # mask multiplies no faster) both stream through memory. Now the forward takes the
    # 1-byte mask chunk by chunk while y is in cache (_masked_pass) and saves only the mask,
    # so the backward is one multiply, and y can be freed when nothing downstream keeps it
    # (W2: the tiling max pool keeps only winner codes). ReLU's own CPU time per step,
    # forward + backward, inside real steps (medians of 3 runs of 9-11 rounds): W3 13.2 /
    # 13.4 / 11.5 -> 12.5 / 12.4 / 10.3 ms (forward 4.2 -> 5.6, backward 9.0 -> 6.7), W2
    # 2.1 / 2.5 / 2.0 -> 2.3 / 2.4 / 1.9 ms (noise level); warm (4, 4), (128, 512),
    # (64, 32, 14, 14): unchanged (19.9 / 75 / 473 us min).
    # Tried and dropped: np.heaviside, np.where, copyto(where=) 8-10x slower; an and on int32
    # views (extra casts); np.setbufsize larger or smaller; a chunked backward (mask and
    # multiply per L2-sized chunk: no faster); the mask from x without chunks (+0.4 ms in
    # the forward cold); earlier, warm (128, 512): bool mask 31-34 us, float mask 31-35,
    # np.where 420. Writing into gy in place would take the cold backward from 1.5 to 0.7 ms,
    # but only the engine can know that nobody else reads gy (Add.backward hands one gy to
    # both inputs), so it is not done here.
    @staticmethod
    def forward(ctx, x):
        if type(x) is not numpy.ndarray:
            y = ctx.xp.maximum(x, 0)
            if ctx._record:
                ctx.save_for_backward(ctx.xp.logical_not(y <= 0))
            return y
        if not (ctx._record and x.dtype.kind == "f"):
            return _relu_numpy(x)
        lib = _relu_native.library(x) if x.size >= _relu_native._MIN_SIZE else None
        if lib is not None:
            y, mask = _relu_native.forward(lib, x)
        elif x.size > _CHUNK and x.flags.c_contiguous:
            y, mask = _masked_pass(x, _relu_fill)
        else:
            zero = _zero(x.dtype)
            y = numpy.maximum(x, zero)
            mask = numpy.logical_not(numpy.less_equal(x, zero))  # as _relu_fill
        ctx.save_for_backward(mask)
        return y

    @staticmethod
    def backward(ctx, gy):
        (mask,) = ctx.saved_arrays  # not y <= 0: relu'(0) = 0, and 1 at NaN, as PyTorch's
        if not _common._State.enabled:  # no graph to record: one array product (Mul.backward)
            g = gy._data
            lib = None
            if g.size >= _relu_native._MIN_SIZE and g.shape == mask.shape \
                    and mask.flags.c_contiguous:  # one element order
                lib = _relu_native.library(g)
            if lib is not None:
                return _common.constant(_relu_native.backward(lib, g, mask))
            return _common.constant(g * mask)
        return _Scale.apply(gy, mask)


_ZEROS = {}  # dtype -> 0-d zero array (ReLU.forward)

# Elements per chunk of _masked_pass: 256 KB of float32, so each chunk's output is still in
# L2 when its mask is taken. NOTE (measured, (32, 32, 32, 32) float32, cache flushed before
# each call, one thread, CPU time, 25 interleaved rounds): maximum alone 0.80-1.02 ms, with
# the mask in 64K chunks 0.99-1.27 ms, as two whole-array passes 1.24-1.43 ms.
_CHUNK = 1 << 16


def _zero(dtype):
    zero = _ZEROS.get(dtype)
    if zero is None:
        zero = _ZEROS[dtype] = numpy.zeros((), dtype)
    return zero


def _masked_pass(x, fill):
    """(y, mask) from ``fill(x_part, y_part, mask_part)``, which writes a piecewise op's value
    and its bool slope mask, over chunks of a contiguous NumPy ``x``: the mask is taken while
    the chunk is in cache instead of in a second pass over memory (or in the backward)."""
    y = numpy.empty(x.shape, x.dtype)
    mask = numpy.empty(x.shape, bool)
    xf, yf, mf = x.reshape(-1), y.reshape(-1), mask.reshape(-1)
    for s in range(0, x.size, _CHUNK):
        e = s + _CHUNK
        fill(xf[s:e], yf[s:e], mf[s:e])
    return y, mask


def _relu_fill(x, y, mask):
    """y = max(x, 0); mask = not (y <= 0): the slope 1 passes a NaN's gradient, as PyTorch's
    threshold_backward does (y > 0 would give 0 there)."""
    zero = _zero(x.dtype)
    numpy.maximum(x, zero, out=y)
    numpy.less_equal(y, zero, out=mask)
    numpy.logical_not(mask, out=mask)


def _relu_numpy(x):
    """ReLU's forward on a NumPy array (a NumPy scalar for 0-d x)."""
    return numpy.maximum(x, _zero(x.dtype))


def relu(input):
    """max(input, 0) elementwise; the gradient at 0 is 0. Integer tensors stay integer."""
    # NOTE (measured, `python bench/overhead.py --repeats 9 --threads 1 --clock cpu`, HEAD vs this):
    # the no-graph fast path took relu fwd from 3.3-3.8 us (1.17-1.29x PyTorch) to 2.0-2.2 us
    # (0.81-0.86x).
    if isinstance(input, Tensor):
        data = input._data
        if type(data) is _ndarray and _Tracing.tracer is None \
                and not (input._rg and _State.enabled):  # no-graph fast path (function.py)
            y = _relu_numpy(data)
            return _make(y if type(y) is _ndarray else _to_array(y), False, None, 0)
        return ReLU.apply(input)
    return ReLU.apply(_tensor_arg("relu", input))


class Hardtanh(Function):
    # NOTE: like ReLU, the slope mask (1 strictly inside the bounds) is taken in the forward,
    # chunk by chunk while x is in cache, and only the mask is saved (see ReLU's NOTE): the
    # backward is one multiply instead of two compares, an and and a multiply over memory.
    # Measured (relu6 forward + backward, cache flushed before each call, one thread, CPU
    # time, 21 interleaved rounds): (32, 32, 32, 32) 3.71 -> 3.39 ms median (2.90 -> 2.72
    # min), (64, 16, 28, 28) 2.89 -> 2.51 (2.65 -> 2.38).
    @staticmethod
    def forward(ctx, x, lo, hi):
        xp = ctx.xp
        if not ctx._record:
            return _as_array(xp, xp.clip(x, lo, hi))
        ctx.lo, ctx.hi = lo, hi
        if type(x) is numpy.ndarray and x.size > _CHUNK and x.flags.c_contiguous:
            y, inside = _masked_pass(x, lambda a, b, m: _hardtanh_fill(a, b, m, lo, hi))
        else:
            y = _as_array(xp, xp.clip(x, lo, hi))
            # PyTorch: slope 0 at both bounds. At NaN ember's slope is 0; PyTorch's is 1 or 0
            # depending on the array's size (its scalar and vector kernels differ).
            inside = _as_array(xp, (x > lo) & (x < hi))
        ctx.save_for_backward(inside)
        return y

    @staticmethod
    def backward(ctx, gy):
        (inside,) = ctx.saved_arrays
        return _Scale.apply(gy, inside), None, None


def _hardtanh_fill(x, y, mask, lo, hi):
    numpy.clip(x, lo, hi, out=y)
    numpy.greater(x, lo, out=mask)
    mask &= x < hi


def hardtanh(input, min_val=-1.0, max_val=1.0):
    """``input`` clamped to [min_val, max_val]; slope 1 strictly inside, 0 elsewhere."""
    _tensor_arg("hardtanh", input)
    if min_val > max_val:
        raise ValueError(
            f"hardtanh: min_val cannot be greater than max_val, got min_val={min_val}, "
            f"max_val={max_val}"
        )
    if input._data.dtype.kind != "f":
        # Integer bounds keep an integer tensor integer (a float bound would make it float64).
        min_val, max_val = math.ceil(min_val), math.floor(max_val)
    return Hardtanh.apply(input, min_val, max_val)


def relu6(input):
    """min(max(input, 0), 6): hardtanh(input, 0, 6)."""
    return hardtanh(input, 0.0, 6.0)


class LeakyReLU(Function):
    # NOTE: the mask x > 0 is taken in the forward, chunk by chunk (see ReLU's NOTE), and
    # saved instead of x; the backward builds the slope from it in two passes instead of
    # three, and x can be freed. Measured (leaky_relu(x, 0.1) forward + backward, cache
    # flushed before each call, one thread, CPU time, 21 interleaved rounds, 3 runs): min
    # 2.58-2.79 -> 2.16-2.52 ms on (32, 32, 32, 32), 1.92-2.23 -> 1.76-2.00 on
    # (64, 16, 28, 28); medians equal within noise (2.9-3.4 and 2.1-2.8 ms both ways).
    @staticmethod
    def forward(ctx, x, slope):
        xp = ctx.xp
        # x for x > 0, slope * x otherwise: the larger of the two when slope <= 1.
        pick = xp.maximum if slope <= 1 else xp.minimum
        if not ctx._record:
            return _as_array(xp, pick(x, x * slope))
        ctx.slope = slope
        if type(x) is numpy.ndarray and x.size > _CHUNK and x.flags.c_contiguous:
            y, positive = _masked_pass(x, lambda a, b, m: _leaky_fill(a, b, m, slope, pick))
        else:
            y = _as_array(xp, pick(x, x * slope))
            positive = _as_array(xp, x > 0)
        ctx.save_for_backward(positive)
        return y

    @staticmethod
    def backward(ctx, gy):
        (positive,) = ctx.saved_arrays
        xp, dtype = ctx.xp, gy._data.dtype
        # 1 where x > 0, slope elsewhere (x == 0 included, as PyTorch), rounded as before:
        # mask * (1 - slope) + slope in the gradient's dtype.
        factor = _as_array(xp, xp.multiply(positive, xp.asarray(1 - ctx.slope, dtype)))
        factor += ctx.slope
        return _Scale.apply(gy, factor), None


def _leaky_fill(x, y, mask, slope, pick):
    numpy.multiply(x, slope, out=y)
    pick(x, y, out=y)
    numpy.greater(x, 0, out=mask)


def leaky_relu(input, negative_slope=0.01):
    """``input`` where positive, ``negative_slope * input`` elsewhere."""
    return LeakyReLU.apply(_float_arg("leaky_relu", input), float(negative_slope))


class Hardsigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        xp = ctx.xp
        ctx.save_for_backward(x)
        y = _as_array(xp, x * (1.0 / 6.0))
        y += 0.5
        return _as_array(xp, xp.clip(y, 0.0, 1.0, out=y))

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        d = x._data
        slope = ((d > -3.0) & (d < 3.0)).astype(d.dtype)
        slope *= 1.0 / 6.0
        return _Scale.apply(gy, slope)


def hardsigmoid(input):
    """relu6(input + 3) / 6: 0 below -3, 1 above 3, linear in between."""
    return Hardsigmoid.apply(_float_arg("hardsigmoid", input))


# ---- exponential-linear units ----------------------------------------------------------------


class ELU(Function):
    """x for x > 0, alpha * (exp(x * inv) - 1) otherwise (elu: inv = 1, celu: inv = 1/alpha)."""

    @staticmethod
    def forward(ctx, x, alpha, inv):
        xp = ctx.xp
        zeros = xp.zeros(x.shape, x.dtype)
        neg = _as_array(xp, xp.minimum(x, zeros))
        neg *= inv
        y = _as_array(xp, xp.expm1(neg))
        if ctx.needs_input_grad[0]:
            # f'(x) = 1 for x > 0, alpha * inv * exp(x * inv) otherwise (x == 0 included).
            # Masks by multiplication: boolean-index assignment is ~10x slower here.
            deriv = _as_array(xp, y + 1.0)
            deriv *= alpha * inv
            deriv *= x <= 0
            deriv += x > 0
            ctx.deriv = deriv
            ctx.second = _ELUSecond(alpha, inv, x < 0)  # PyTorch: f''(0) = 0
            ctx.save_for_backward(x)
        y *= alpha
        y += xp.maximum(x, zeros)  # exactly x where x > 0 (expm1(0) = 0 there)
        return y

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return _DerivMul.apply(gy, x, ctx.deriv, ctx.second), None, None


class _ELUSecond:
    """f''(x) of ELU as ember ops: alpha * inv**2 * exp(x * inv) where x < 0, else 0."""

    def __init__(self, alpha, inv, negative):
        self.alpha, self.inv, self.negative = alpha, inv, negative

    def __call__(self, x):
        # Masking x first keeps exp finite on the positive side (inf * 0 would be nan).
        e = elementwise.exp(_Scale.apply(x, self.negative) * self.inv)
        return _Scale.apply(e, self.negative) * (self.alpha * self.inv * self.inv)


def elu(input, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return ELU.apply(_float_arg("elu", input), float(alpha), 1.0)


def selu(input):
    """scale * elu(x, alpha) with the self-normalizing constants of Klambauer et al. (2017)."""
    return ELU.apply(_float_arg("selu", input), _SELU_ALPHA, 1.0) * _SELU_SCALE


def celu(input, alpha=1.0):
    """x for x > 0, alpha * (exp(x / alpha) - 1) otherwise."""
    _float_arg("celu", input)
    if alpha == 0:
        raise ValueError(
            "celu: alpha cannot be 0 (the negative branch is alpha * (exp(x / alpha) - 1)); "
            "use relu for the alpha -> 0 limit"
        )
    return ELU.apply(input, float(alpha), 1.0 / float(alpha))


# ---- sigmoid family ------------------------------------------------------------------------


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = _sigmoid_array(ctx.xp, x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * (y - y * y)


def sigmoid(input):
    """1 / (1 + exp(-input)); integer inputs give the default float dtype."""
    return Sigmoid.apply(_common.float_operand("sigmoid", _tensor_arg("sigmoid", input)))


class LogSigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        xp = ctx.xp
        ctx.save_for_backward(x)
        # log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): no overflow, no log(0).
        t = _as_array(xp, xp.abs(x))
        xp.negative(t, out=t)
        xp.exp(t, out=t)
        xp.log1p(t, out=t)
        y = _as_array(xp, xp.minimum(x, xp.zeros(x.shape, x.dtype)))
        y -= t
        return y

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * sigmoid(-x)


def logsigmoid(input):
    """log(sigmoid(input)), computed without overflow for large |input|."""
    return LogSigmoid.apply(_float_arg("logsigmoid", input))


class Softplus(Function):
    @staticmethod
    def forward(ctx, x, beta, threshold):
        xp = ctx.xp
        z = _as_array(xp, x * beta)
        y = _softplus_array(xp, z)
        if beta != 1:
            y /= beta
        linear = z > threshold
        ctx.linear = linear if linear.any() else None
        if ctx.linear is not None:
            y[linear] = x[linear]  # PyTorch returns x itself above the threshold
        ctx.beta = beta
        ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        slope = sigmoid(x * ctx.beta)
        if ctx.linear is not None:
            slope = elementwise.where(_const(ctx.linear), 1.0, slope)
        return gy * slope, None, None


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (as PyTorch).

    Unlike PyTorch, the smooth branch never overflows: with a threshold above ~88 (float32)
    PyTorch returns inf for large x, ember returns x.
    """
    return Softplus.apply(_float_arg("softplus", input), float(beta), float(threshold))


class SiLU(Function):
    @staticmethod
    def forward(ctx, x):
        xp = ctx.xp
        s = _sigmoid_array(xp, x)
        if ctx.needs_input_grad[0]:
            # f'(x) = s * (1 + x * (1 - s))
            deriv = _as_array(xp, 1 - s)
            deriv *= x
            deriv += 1
            deriv *= s
            ctx.deriv = deriv
            ctx.save_for_backward(x)
        s *= x
        return s

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return _DerivMul.apply(gy, x, ctx.deriv, _silu_second)


def _silu_second(x):
    s = sigmoid(x)
    return (s - s * s) * (x * (1.0 - 2.0 * s) + 2.0)


def silu(input):
    """x * sigmoid(x) (also called swish)."""
    return SiLU.apply(_float_arg("silu", input))


def mish(input):
    """x * tanh(softplus(x)), composed, so its gradients of every order come for free."""
    x = _float_arg("mish", input)
    return x * elementwise.tanh(softplus(x))


def softsign(input):
    """x / (1 + |x|); integer inputs give the default float dtype."""
    x = _common.float_operand("softsign", _tensor_arg("softsign", input))
    return Softsign.apply(x)


class Softsign(Function):
    @staticmethod
    def forward(ctx, x):
        xp = ctx.xp
        ctx.save_for_backward(x)
        d = _as_array(xp, xp.abs(x))
        d += 1
        return _as_array(xp, xp.divide(x, d, out=d))

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        # |x| as x * sign(x), sign constant, so the second derivative is right too.
        d = _Scale.apply(x, _sign(x._data)) + 1.0
        return gy / (d * d)


def _sign(a):
    return (a > 0).astype(a.dtype) - (a < 0).astype(a.dtype)


# ---- gelu and hardswish ----------------------------------------------------------------------


class GELU(Function):
    @staticmethod
    def forward(ctx, x, approximate):
        xp = ctx.xp
        need = ctx.needs_input_grad[0]
        if approximate == "tanh":
            x2 = _as_array(xp, x * x)
            u = x2 * (_GELU_C * _GELU_K)
            u += _GELU_C
            u *= x  # u = C * (x + K * x**3)
            t = _as_array(xp, xp.tanh(u))
            half1pt = _as_array(xp, t * 0.5)
            half1pt += 0.5  # (1 + tanh(u)) / 2
            y = _as_array(xp, x * half1pt)
            if need:
                # f'(x) = (1 + t)/2 + x/2 * (1 - t**2) * C * (1 + 3 K x**2)
                up = x2 * (3.0 * _GELU_C * _GELU_K)
                up += _GELU_C
                t *= t
                xp.subtract(1.0, t, out=t)
                t *= up
                t *= x
                t *= 0.5
                t += half1pt
                ctx.deriv, ctx.second = t, _gelu_tanh_second
        else:
            cdf = elementwise._erf_array(xp, _as_array(xp, x * -_SQRT_HALF), complement=True)
            cdf *= 0.5  # Phi(x) = erfc(-x / sqrt 2) / 2, accurate in the far left tail too
            y = _as_array(xp, x * cdf)
            if need:
                # f'(x) = Phi(x) + x * pdf(x)
                pdf = _as_array(xp, x * x)
                pdf *= -0.5
                xp.exp(pdf, out=pdf)
                pdf *= _INV_SQRT_2PI
                pdf *= x
                pdf += cdf
                ctx.deriv, ctx.second = pdf, _gelu_second
        if need:
            ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return _DerivMul.apply(gy, x, ctx.deriv, ctx.second), None


def _gelu_second(x):
    x2 = x * x
    return elementwise.exp(x2 * -0.5) * (_INV_SQRT_2PI * (2.0 - x2))


def _gelu_tanh_second(x):
    # With u = C (x + K x^3), t = tanh(u): f'' = (1 - t^2) (u' (1 - x t u') + x u'' / 2),
    # u' = C (1 + 3 K x^2), x u'' / 2 = 3 C K x^2.
    x2 = x * x
    t = elementwise.tanh(x * (x2 * (_GELU_C * _GELU_K) + _GELU_C))
    up = x2 * (3.0 * _GELU_C * _GELU_K) + _GELU_C
    return (1.0 - t * t) * (up * (1.0 - x * t * up) + x2 * (3.0 * _GELU_C * _GELU_K))


def gelu(input, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF; ``approximate='tanh'`` uses
    0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))."""
    _float_arg("gelu", input)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(input, approximate)


class Hardswish(Function):
    @staticmethod
    def forward(ctx, x):
        xp = ctx.xp
        r = _as_array(xp, x + 3.0)
        xp.clip(r, 0.0, 6.0, out=r)
        r *= x
        r *= 1.0 / 6.0  # x * relu6(x + 3) / 6
        ctx.save_for_backward(x)
        return r

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        d = x._data
        # PyTorch: slope 0 for x <= -3, (2x + 3) / 6 strictly inside, 1 for x >= 3.
        mid = ((d > -3.0) & (d < 3.0)).astype(d.dtype)
        deriv = d * (1.0 / 3.0) + 0.5
        deriv *= mid
        deriv += d >= 3.0
        curvature = _const(mid * (1.0 / 3.0))
        return _DerivMul.apply(gy, x, deriv, lambda _x: curvature)


def hardswish(input):
    """x * relu6(x + 3) / 6."""
    return Hardswish.apply(_float_arg("hardswish", input))


# ---- softmax -------------------------------------------------------------------------------


def _softmax_input(op_name, input, dim, dtype):
    _tensor_arg(op_name, input)
    if dtype is not None:
        input = input.to(dtype)
    if input._data.dtype.kind != "f":
        raise errors.DTypeError(
            f"{op_name}: expected a floating-point input, got {dtypes.name(input.dtype)}; pass "
            "dtype=ember.float32 or convert it first with x.float()"
        )
    if dim is None or not isinstance(dim, (int, numpy.integer)):
        raise TypeError(f"{op_name}: dim must be an int, got {dim!r}")
    return input, _common.normalize_dim(int(dim), input.ndim, op_name)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        xp = ctx.xp
        axis = dim if x.ndim else None
        if x.size == 0:
            y = xp.empty_like(x)
        else:
            y = _as_array(xp, x - xp.max(x, axis=axis, keepdims=True))
            xp.exp(y, out=y)
            y /= xp.sum(y, axis=axis, keepdims=True)
        ctx.dim = axis
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return y * (gy - reduce.sum(gy * y, ctx.dim, True)), None


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        xp = ctx.xp
        axis = dim if x.ndim else None
        if x.size == 0:
            y = xp.empty_like(x)
        else:
            y = _as_array(xp, x - xp.max(x, axis=axis, keepdims=True))
            y -= xp.log(xp.sum(xp.exp(y), axis=axis, keepdims=True))
        ctx.dim = axis
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy - elementwise.exp(y) * reduce.sum(gy, ctx.dim, True), None


def softmax(input, dim, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim`` (the max is subtracted first, so large logits are
    fine). ``dtype`` casts the input before the op, as in PyTorch."""
    x, d = _softmax_input("softmax", input, dim, dtype)
    return Softmax.apply(x, d)


def log_softmax(input, dim, dtype=None):
    """x - logsumexp(x) along ``dim``, computed stably; ``dtype`` casts the input first."""
    x, d = _softmax_input("log_softmax", input, dim, dtype)
    return LogSoftmax.apply(x, d)


TENSOR_METHODS = {
    "relu": relu, "sigmoid": sigmoid, "softmax": softmax, "log_softmax": log_softmax,
}
