"""Finite-difference checks of gradients, for ember's tests and for users' custom Functions."""

import numpy

from ember import errors
from ember.autograd import engine


def _numerical_jacobian_vjp(fn, inputs, index, v, eps):
    """d<v, fn(inputs)>/d inputs[index] by central differences (float64)."""
    from ember.tensor import Tensor  # noqa: PLC0415

    x = inputs[index]
    base = x._data
    grad = numpy.zeros(base.shape, dtype=numpy.float64)
    flat = base.reshape(-1) if base.flags.c_contiguous else None
    if flat is None:
        base = base.copy()
        x._data = base
        flat = base.reshape(-1)
    for k in range(flat.size):
        orig = flat[k]
        flat[k] = orig + eps
        plus = _dot_outputs(fn(*inputs), v)
        flat[k] = orig - eps
        minus = _dot_outputs(fn(*inputs), v)
        flat[k] = orig
        grad.reshape(-1)[k] = (plus - minus) / (2 * eps)
    _ = Tensor
    return grad


def _as_tuple(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def _dot_outputs(outputs, v):
    total = 0.0
    for o, w in zip(_as_tuple(outputs), v):
        if o is None or w is None:
            continue
        total += float(numpy.sum(numpy.asarray(o._data, dtype=numpy.float64) * w))
    return total


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Compare autograd's gradients of ``fn`` with central finite differences.

    ``inputs`` are float64 tensors; those with requires_grad are checked. A random weighting
    of the outputs turns the check into one vector-Jacobian product per input, which tests
    every output element at the cost of one backward.
    """
    inputs = list(_as_tuple(inputs))
    for i, x in enumerate(inputs):
        if hasattr(x, "_rg") and x._rg and x.dtype != numpy.float64:
            raise errors.DTypeError(
                f"gradcheck: input {i} is {x.dtype}; finite differences need float64 inputs"
            )
    rng = numpy.random.default_rng(seed)
    outputs = _as_tuple(fn(*inputs))
    diff_outputs = [o for o in outputs if o is not None and o.requires_grad]
    v = [rng.standard_normal(o.shape) if o is not None and o.requires_grad else None
         for o in outputs]
    wrt = [x for x in inputs if hasattr(x, "_rg") and x._rg]
    if not diff_outputs:
        raise errors.AutogradError("gradcheck: no output requires grad")
    from ember.tensor import Tensor  # noqa: PLC0415

    grads = engine.grad(
        diff_outputs,
        wrt,
        [Tensor._make(w.astype(o.dtype), False, None, 0) for o, w in zip(outputs, v) if w is not None],
        allow_unused=True,
    )
    for x, g in zip(wrt, grads):
        index = next(i for i, y in enumerate(inputs) if y is x)
        numeric = _numerical_jacobian_vjp(fn, inputs, index, v, eps)
        analytic = numpy.zeros(x.shape) if g is None else numpy.asarray(g._data, dtype=numpy.float64)
        if not numpy.allclose(analytic, numeric, atol=atol, rtol=rtol):
            err = numpy.max(numpy.abs(analytic - numeric))
            msg = (f"gradcheck: gradient of input {index} (shape {tuple(x.shape)}) differs from "
                   f"finite differences by up to {err:.3g}\nanalytic:\n{analytic}\nnumeric:\n{numeric}")
            if raise_exception:
                raise errors.AutogradError(msg)
            return False
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """gradcheck of the gradient itself: checks that ``fn``'s backward is differentiable."""
    inputs = list(_as_tuple(inputs))
    rng = numpy.random.default_rng(seed + 1)
    outputs = _as_tuple(fn(*inputs))
    from ember.tensor import Tensor  # noqa: PLC0415

    vs = [Tensor._make(rng.standard_normal(o.shape), False, None, 0) for o in outputs
          if o is not None and o.requires_grad]

    def first_grad(*xs):
        outs = [o for o in _as_tuple(fn(*xs)) if o is not None and o.requires_grad]
        wrt = [x for x in xs if hasattr(x, "_rg") and x._rg]
        gs = engine.grad(outs, wrt, vs, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None and g.requires_grad)

    return gradcheck(first_grad, inputs, eps, atol, rtol, raise_exception, seed)
