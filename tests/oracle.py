"""Test helpers: run the same function in ember and PyTorch on equal inputs and compare
forward values and gradients; gradient-check in float64 against finite differences.

    check_op(lambda x, y: x * y, [(3, 1), (4,)])                  # same lambda, both frameworks
    check_op(ember.softmax, [(2, 5)], torch_fn=torch.softmax, kwargs={"dim": -1})

PyTorch is the oracle of tests only; ember never imports it.
"""

import numpy
import torch

import ember
from ember.autograd import gradcheck as _gradcheck

RTOL = {numpy.float32: 1e-4, numpy.float64: 1e-7}
ATOL = {numpy.float32: 1e-5, numpy.float64: 1e-9}


def make_inputs(specs, dtype=numpy.float64, seed=0, low=None, high=None, positive=False):
    """Random NumPy arrays from shapes (or arrays passed through)."""
    rng = numpy.random.default_rng(seed)
    arrays = []
    for spec in specs:
        if isinstance(spec, numpy.ndarray):
            arrays.append(spec)
            continue
        if low is not None:
            a = rng.uniform(low, high, size=spec)
        else:
            a = rng.standard_normal(spec)
        if positive:
            a = numpy.abs(a) + 0.5
        arrays.append(numpy.asarray(a, dtype=dtype))  # 0-d stays an array, not a scalar
    return arrays


def to_ember(arrays, requires_grad=True):
    return [
        ember.tensor(a, requires_grad=requires_grad and a.dtype.kind == "f")
        if isinstance(a, numpy.ndarray) else a
        for a in arrays
    ]


def to_torch(arrays, requires_grad=True):
    return [
        torch.tensor(a, requires_grad=requires_grad and a.dtype.kind == "f")
        if isinstance(a, numpy.ndarray) else a
        for a in arrays
    ]


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return numpy.asarray(t.detach()._data if hasattr(t, "_data") else t)


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def compare(e_out, t_out, rtol, atol, what):
    e_list, t_list = _outputs(e_out), _outputs(t_out)
    assert len(e_list) == len(t_list), f"{what}: {len(e_list)} outputs vs torch {len(t_list)}"
    for i, (e, t) in enumerate(zip(e_list, t_list)):
        if e is None or t is None:
            assert e is None and t is None, f"{what}[{i}]: ember {e is None}, torch {t is None}"
            continue
        en, tn = _np(e), _np(t)
        assert en.shape == tn.shape, f"{what}[{i}]: shape {en.shape} vs torch {tn.shape}"
        if tn.dtype.kind in "biu":
            numpy.testing.assert_array_equal(en, tn, err_msg=f"{what}[{i}]")
        else:
            numpy.testing.assert_allclose(en, tn, rtol=rtol, atol=atol, err_msg=f"{what}[{i}]",
                                          equal_nan=True)


def check_op(fn, specs, torch_fn=None, kwargs=None, dtype=numpy.float64, grad=True,
             gradcheck=True, seed=0, rtol=None, atol=None, inputs=None, **input_kw):
    """Compare ``fn`` in ember against ``torch_fn`` (default: the same lambda) on random inputs:
    forward values, then gradients of a random weighting of the outputs; then gradcheck."""
    kwargs = kwargs or {}
    arrays = inputs if inputs is not None else make_inputs(specs, dtype, seed, **input_kw)
    rtol = rtol if rtol is not None else RTOL.get(numpy.dtype(dtype).type, 1e-4)
    atol = atol if atol is not None else ATOL.get(numpy.dtype(dtype).type, 1e-5)
    torch_fn = torch_fn or fn
    e_in = to_ember(arrays, grad)
    t_in = to_torch(arrays, grad)
    e_out = fn(*e_in, **kwargs)
    t_out = torch_fn(*t_in, **kwargs)
    compare(e_out, t_out, rtol, atol, "forward")
    if not grad:
        return e_out
    e_outs = [o for o in _outputs(e_out) if o is not None and o.requires_grad]
    t_outs = [o for o in _outputs(t_out) if o is not None and o.requires_grad]
    rng = numpy.random.default_rng(seed + 7)
    weights = [rng.standard_normal(tuple(o.shape)).astype(_np(o).dtype) for o in t_outs]
    e_wrt = [x for x in e_in if getattr(x, "requires_grad", False)]
    t_wrt = [x for x in t_in if getattr(x, "requires_grad", False)]
    if not t_outs:
        return e_out
    t_grads = torch.autograd.grad(t_outs, t_wrt, [torch.tensor(w) for w in weights],
                                  allow_unused=True)
    e_grads = ember.autograd.grad(e_outs, e_wrt, [ember.tensor(w) for w in weights],
                                  allow_unused=True)
    t_grads = [torch.zeros_like(x) if g is None else g for x, g in zip(t_wrt, t_grads)]
    e_grads = [ember.zeros_like(x) if g is None else g for x, g in zip(e_wrt, e_grads)]
    compare(e_grads, t_grads, rtol, atol, "backward")
    if gradcheck and numpy.dtype(dtype) == numpy.float64:
        g_in = to_ember(arrays, True)
        assert _gradcheck(lambda *xs: fn(*xs, **kwargs), g_in)
    return e_out


def check_double_backward(fn, specs, seed=0, **input_kw):
    """Second-order gradients of ``fn`` agree with finite differences (create_graph works)."""
    arrays = make_inputs(specs, numpy.float64, seed, **input_kw)
    assert ember.autograd.gradgradcheck(fn, to_ember(arrays, True))
