"""Reductions against PyTorch: values, gradients, finite differences, double backward, errors."""

import math

import numpy
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from ember import errors
from tests.oracle import check_double_backward, check_op

F32 = numpy.float32
INF = math.inf

# (shape, dim, keepdim): broadcast-free coverage of every reduction's dim handling.
DIM_CASES = [
    ((3, 4), None, False),
    ((3, 4), 1, True),
    ((3, 4), -2, False),
    ((2, 3, 4), (0, 2), False),
    ((2, 3, 4), (-1, -3), True),
    ((2, 3, 4), (), False),
    ((), None, False),
    ((), 0, True),
    ((5,), 0, False),
]
EMPTY_CASES = [((0, 3), 0, False), ((0, 3), 1, True), ((2, 0), None, False)]


def _arr(values, dtype=numpy.float64):
    return numpy.array(values, dtype=dtype)


def _dim_kwargs(dim, keepdim):
    return {} if dim is None else {"dim": dim, "keepdim": keepdim}


# ---- sum / mean ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape, dim, keepdim", DIM_CASES + EMPTY_CASES)
def test_sum(shape, dim, keepdim):
    kw = _dim_kwargs(dim, keepdim)
    check_op(lambda x: x.sum(**kw), [shape])


@pytest.mark.parametrize("shape, dim, keepdim", DIM_CASES + EMPTY_CASES)
def test_mean(shape, dim, keepdim):
    kw = _dim_kwargs(dim, keepdim)
    check_op(lambda x: x.mean(**kw), [shape])


@pytest.mark.parametrize("fn", [lambda x: x.sum(1), lambda x: x.mean((0, 1), keepdim=True)])
def test_sum_mean_float32_and_noncontiguous(fn):
    check_op(fn, [(4, 3)], dtype=F32)
    check_op(lambda x: fn(x.mT), [(3, 4)])


def test_sum_mean_dtype_and_integers():
    x = ember.tensor([[1, 2], [3, 4]], dtype=ember.int32)
    assert x.sum().dtype == ember.int64 and x.sum().item() == 10
    assert ember.tensor([True, True, False]).sum().dtype == ember.int64
    assert x.sum(0, dtype=ember.float64).dtype == ember.float64
    assert ember.mean(x, dtype=ember.float32).item() == 2.5
    f = ember.tensor([1.0, 2.0], requires_grad=True)
    out = f.sum(dtype=ember.float64)
    out.backward()
    assert out.dtype == ember.float64 and f.grad.dtype == ember.float32


def test_empty_sum_is_zero_and_mean_is_nan():
    assert ember.zeros(0).sum().item() == 0.0
    assert math.isnan(ember.zeros(0, 3).mean().item())


def test_sum_mean_double_backward():
    check_double_backward(lambda x: (x.sum(1) ** 2).sum(), [(3, 4)])
    check_double_backward(lambda x: x.mean((0, 2), keepdim=True) ** 3, [(2, 3, 2)])


# ---- prod / cumsum / cumprod ---------------------------------------------------------------


@pytest.mark.parametrize("shape, dim, keepdim", [
    ((3, 4), None, False), ((3, 4), 1, True), ((2, 3, 4), -2, False), ((), None, False),
    ((), 0, True), ((0, 3), 0, False), ((0, 3), 1, False),
])
def test_prod(shape, dim, keepdim):
    kw = _dim_kwargs(dim, keepdim) if dim is not None else {}
    check_op(lambda x: x.prod(**kw), [shape])


PROD_ZEROS = [
    _arr([[1.5, 0.0, -2.0, 0.7], [0.3, 1.2, -0.8, 2.0]]),  # one zero in row 0
    _arr([[0.0, 1.5, 0.0, -2.0], [0.0, 0.0, 0.0, 1.0]]),  # two or more zeros per row
    _arr([[0.0, 1.5, 2.0, -0.5], [1.1, 0.9, -1.3, 0.0]]),  # zero first / last
]


@pytest.mark.parametrize("x", PROD_ZEROS)
def test_prod_gradient_with_zeros(x):
    check_op(lambda t: t.prod(1), [], inputs=[x])
    check_op(lambda t: t.prod(0, keepdim=True), [], inputs=[x])
    check_op(lambda t: t.prod(), [], inputs=[x])


def test_prod_double_backward():
    check_double_backward(lambda x: x.prod(1), [(2, 4)])
    x = PROD_ZEROS[0]
    assert ember.autograd.gradgradcheck(lambda t: t.prod(1), [ember.tensor(x, requires_grad=True)])


def test_prod_integers_promote():
    x = ember.tensor([2, 3, 4], dtype=ember.int32)
    assert x.prod().dtype == ember.int64 and x.prod().item() == 24
    assert ember.tensor([True, True]).prod().item() == 1
    assert ember.ones(0).prod().item() == 1.0


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("shape, dim", [((5,), 0), ((3, 4), 1), ((3, 4), -2), ((2, 3, 4), 1),
                                        ((), 0), ((0, 3), 1)])
def test_cumulative(op, shape, dim):
    check_op(lambda x: getattr(x, op)(dim), [shape])


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
def test_cumulative_float32_noncontiguous_dtype(op):
    check_op(lambda x: getattr(x, op)(0), [(3, 4)], dtype=F32)
    check_op(lambda x: getattr(x.mT, op)(1), [(3, 4)])
    x = ember.tensor([[1, 2], [3, 4]], dtype=ember.int32)
    assert getattr(x, op)(1).dtype == ember.int64
    assert getattr(x, op)(1, dtype=ember.float32).dtype == ember.float32
    assert getattr(ember.tensor([True, True]), op)(0).dtype == ember.int64


CUMPROD_ZEROS = [
    _arr([1.5, 0.0, -2.0, 0.7, 1.3]),
    _arr([[0.0, 1.5, 0.0, -2.0], [0.9, 0.0, 0.0, 1.0], [1.2, -0.7, 1.1, 0.0]]),
]


@pytest.mark.parametrize("x", CUMPROD_ZEROS)
def test_cumprod_gradient_with_zeros(x):
    check_op(lambda t: t.cumprod(-1), [], inputs=[x])
    if x.ndim == 2:
        check_op(lambda t: t.cumprod(0), [], inputs=[x])


@pytest.mark.parametrize("x", CUMPROD_ZEROS)
def test_cumprod_gradient_with_zeros_under_create_graph(x):
    # create_graph switches to a formula that stays right when differentiated again; its
    # first-order values must still be PyTorch's.
    e, t = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    w = numpy.random.default_rng(3).standard_normal(x.shape)
    (ge,) = ember.autograd.grad(e.cumprod(-1), [e], [ember.tensor(w)], create_graph=True)
    (gt,) = torch.autograd.grad(t.cumprod(-1), [t], [torch.tensor(w)])
    assert ge.requires_grad
    numpy.testing.assert_allclose(ge.detach().numpy(), gt.numpy(), rtol=1e-12, atol=1e-12)


def test_cumulative_double_backward():
    check_double_backward(lambda x: x.cumsum(1) ** 2, [(2, 4)])
    check_double_backward(lambda x: x.cumprod(1), [(2, 4)])
    check_double_backward(lambda x: x.cumprod(0), [(3, 2)])
    for x in CUMPROD_ZEROS:
        t = ember.tensor(x, requires_grad=True)
        assert ember.autograd.gradgradcheck(lambda v: v.cumprod(-1), [t])


# ---- max / min / amax / amin / argmax / argmin / median ------------------------------------


@pytest.mark.parametrize("op", ["amax", "amin"])
@pytest.mark.parametrize("shape, dim, keepdim", DIM_CASES + [((0, 3), 1, True)])
def test_amax_amin(op, shape, dim, keepdim):
    kw = {"keepdim": keepdim} if dim is None else {"dim": dim, "keepdim": keepdim}
    check_op(lambda x: getattr(x, op)(**kw), [shape])


TIES = _arr([[1.0, 3.0, 3.0, -2.0], [-1.0, -1.0, 0.5, -1.0], [2.0, 2.0, 2.0, 2.0]])


@pytest.mark.parametrize("op", ["amax", "amin"])
def test_amax_ties_share_gradient(op):
    for kw in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": (0, 1)}):
        check_op(lambda x: getattr(x, op)(**kw), [], inputs=[TIES], gradcheck=False)
        check_op(lambda x: getattr(x, op)(**kw), [], inputs=[TIES.astype(F32)], dtype=F32,
                 gradcheck=False)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_full(op):
    check_op(lambda x: getattr(x, op)(), [(3, 4)])
    check_op(lambda x: getattr(x, op)(), [()])
    check_op(lambda x: getattr(x.mT, op)(), [(3, 4)], dtype=F32)
    # Without dim, tied extremes share the gradient (PyTorch's evenly distributed rule).
    check_op(lambda x: getattr(x, op)(), [], inputs=[TIES], gradcheck=False)


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("shape, dim, keepdim", [((3, 4), 1, False), ((3, 4), 0, True),
                                                 ((2, 3, 4), -1, True), ((), 0, False),
                                                 ((5,), -1, False), ((0, 3), 1, False)])
def test_max_min_dim(op, shape, dim, keepdim):
    check_op(lambda x: getattr(x, op)(dim, keepdim), [shape])
    check_op(lambda x: getattr(x, op)(dim=dim, keepdim=keepdim), [shape], dtype=F32)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_dim_ties_pick_first(op):
    check_op(lambda x: getattr(x, op)(1), [], inputs=[TIES], gradcheck=False)
    check_op(lambda x: getattr(x.mT, op)(0), [], inputs=[TIES], gradcheck=False)


def test_max_returns_values_indices_pair():
    x = ember.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    result = ember.max(x, 1)
    values, indices = result
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert result.values is values and result.indices is indices
    assert indices.dtype == ember.int64
    assert ember.min(x, dim=0, keepdim=True).indices.tolist() == [[0, 1, 0]]
    m = ember.median(x, 1)
    assert m.values.tolist() == [2.0, 3.0] and m.indices.tolist() == [2, 2]


@pytest.mark.parametrize("op", ["max", "min"])
def test_binary_max_min(op):
    check_op(lambda a, b: getattr(a, op)(b), [(3, 4), (4,)])
    check_op(lambda a, b: getattr(torch if isinstance(a, torch.Tensor) else ember, op)(a, b),
             [], inputs=[TIES, TIES[::-1].copy()], gradcheck=False)


def test_max_integer_input():
    x = ember.tensor([[1, 5], [7, 2]])
    assert x.max().item() == 7 and x.max().dtype == ember.int64
    assert x.max(1).values.tolist() == [5, 7] and x.amin(0).tolist() == [1, 2]


def test_amax_double_backward():
    check_double_backward(lambda x: x.amax(1) ** 2, [(3, 4)])
    check_double_backward(lambda x: x.max(0).values ** 2, [(3, 4)])


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("kw", [{}, {"keepdim": True}, {"dim": 1}, {"dim": -1, "keepdim": True},
                                {"dim": 0}])
def test_argmax_argmin(op, kw):
    for x in (numpy.random.default_rng(1).standard_normal((3, 4)), TIES):
        check_op(lambda t: getattr(t, op)(**kw), [], inputs=[x], grad=False)
    check_op(lambda t: getattr(t, op)(), [], inputs=[_arr(2.5)], grad=False)
    check_op(lambda t: getattr(t, op)(0, True), [], inputs=[_arr(2.5)], grad=False)
    check_op(lambda t: getattr(t.mT, op)(1), [(3, 4)], grad=False)


@pytest.mark.parametrize("kw", [{}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": -1}])
def test_median(kw):
    check_op(lambda x: x.median(**kw), [(3, 5)])
    check_op(lambda x: x.median(**kw), [(4, 4)], dtype=F32)
    check_op(lambda x: x.mT.median(**kw), [(4, 3)])


def test_median_nan_and_edge_cases():
    nan = float("nan")
    x = _arr([[1.0, nan, 3.0, nan], [4.0, 2.0, 0.5, 1.0]])
    check_op(lambda t: t.median(1), [], inputs=[x], gradcheck=False)
    check_op(lambda t: t.median(), [], inputs=[x], gradcheck=False)
    check_op(lambda t: t.median(), [()])
    # Like max(), the median of all elements shares its gradient among tied elements.
    check_op(lambda t: t.median(), [], inputs=[TIES], gradcheck=False)
    check_op(lambda t: t.median(1), [], inputs=[_arr([[3.0, 1.0, 2.0, 5.0]])])
    check_op(lambda t: t.median(0), [()])
    assert math.isnan(ember.zeros(0).median().item())


# ---- var / std -----------------------------------------------------------------------------


VAR_KWARGS = [
    {}, {"dim": 1}, {"dim": (0, 2), "keepdim": True}, {"dim": -1, "correction": 0},
    {"dim": 1, "unbiased": False}, {"correction": 2}, {"dim": None, "keepdim": True},
]


@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.parametrize("kw", VAR_KWARGS)
def test_var_std(op, kw):
    check_op(lambda x: getattr(x, op)(**kw), [(3, 4, 5)])
    check_op(lambda x: getattr(x, op)(**kw), [(3, 4, 5)], dtype=F32)


@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std_positional_legacy_and_edges(op):
    check_op(lambda x: getattr(x, op)(1, True, True), [(3, 4)])
    check_op(lambda x: getattr(x, op)(False), [(3, 4)])
    check_op(lambda x: getattr(x.mT, op)(0), [(3, 4)])
    # One element with correction 1 divides by zero: nan, as in PyTorch (gradient nan too).
    check_op(lambda x: getattr(x, op)(), [(1,)], gradcheck=False)
    check_op(lambda x: getattr(x, op)(0), [(0, 3)], gradcheck=False)
    check_op(lambda x: getattr(x, op)(), [()], gradcheck=False)


def test_std_of_constant_has_zero_gradient():
    check_op(lambda x: x.std(1), [], inputs=[_arr([[2.0, 2.0, 2.0], [1.0, 0.0, -1.0]])],
             gradcheck=False)


@pytest.mark.parametrize("op", ["var_mean", "std_mean"])
@pytest.mark.parametrize("kw", [{}, {"dim": 1, "keepdim": True}, {"dim": 0, "correction": 0},
                                {"dim": 1, "unbiased": False}])
def test_var_mean_std_mean(op, kw):
    check_op(lambda x: getattr(ember, op)(x, **kw), [(3, 4)],
             torch_fn=lambda x: getattr(torch, op)(x, **kw))


def test_var_std_double_backward():
    check_double_backward(lambda x: x.var(1), [(3, 4)])
    check_double_backward(lambda x: x.std((0, 1), keepdim=True), [(3, 4)])


# ---- norm ----------------------------------------------------------------------------------


NORM_PS = [2, 1, INF, -INF, 0, 3, 0.5, -2, "fro"]


@pytest.mark.parametrize("p", NORM_PS)
@pytest.mark.parametrize("dim, keepdim", [(None, False), (1, True), ((0, 2), False),
                                          (-1, False)])
def test_norm(p, dim, keepdim):
    check_op(lambda x: x.norm(p, dim, keepdim), [(2, 3, 4)])
    check_op(lambda x: x.norm(p=p, dim=dim, keepdim=keepdim), [(2, 3, 4)], dtype=F32)


@pytest.mark.parametrize("p", [2, 1, INF, 3, "fro"])
def test_norm_edge_shapes(p):
    check_op(lambda x: x.norm(p), [()])
    check_op(lambda x: x.mT.norm(p, 0), [(3, 4)])
    if p != INF:
        check_op(lambda x: x.norm(p, 1), [(0, 3)])


def test_norm_zero_vector_gradient_is_zero_not_nan():
    x = numpy.zeros((2, 3))
    x[1] = [1.0, -2.0, 0.0]
    for p in (2, "fro", 3, 0.5, 1, INF):
        check_op(lambda t: t.norm(p, 1), [], inputs=[x], gradcheck=False)
    t = ember.zeros(3, requires_grad=True)
    t.norm().backward()
    assert t.grad.tolist() == [0.0, 0.0, 0.0]


def test_norm_inf_ties_and_dtype():
    check_op(lambda x: x.norm(INF, 1), [], inputs=[TIES], gradcheck=False)
    check_op(lambda x: x.norm(-INF), [], inputs=[TIES], gradcheck=False)
    x = ember.randn(3, 4)
    assert x.norm(dtype=ember.float64).dtype == ember.float64


def test_norm_double_backward():
    check_double_backward(lambda x: x.norm(), [(3, 4)])
    check_double_backward(lambda x: x.norm(3, 1), [(3, 4)])
    check_double_backward(lambda x: x.norm(2, (0, 1), True), [(2, 3)])


# ---- logsumexp -----------------------------------------------------------------------------


@pytest.mark.parametrize("dim, keepdim", [(1, False), (0, True), ((0, 2), False), (-1, True),
                                          ((), False)])
def test_logsumexp(dim, keepdim):
    if dim == ():
        check_op(lambda x: ember.logsumexp(x, dim), [(2, 3)],
                 torch_fn=lambda x: torch.logsumexp(x, (0, 1)))
        return
    check_op(lambda x: x.logsumexp(dim, keepdim), [(2, 3, 4)])
    check_op(lambda x: x.logsumexp(dim, keepdim=keepdim), [(2, 3, 4)], dtype=F32)


def test_logsumexp_is_stable_and_handles_inf_rows():
    big = _arr([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1002.0]])
    check_op(lambda x: x.logsumexp(1), [], inputs=[big])
    check_op(lambda x: x.logsumexp(1), [], inputs=[big.astype(F32)], dtype=F32)
    rows = _arr([[-INF, -INF, -INF], [-INF, 0.5, 1.0], [INF, 1.0, 2.0]])
    check_op(lambda x: x.logsumexp(1), [], inputs=[rows], gradcheck=False)
    check_op(lambda x: x.logsumexp(0), [(0, 3)])
    check_op(lambda x: x.logsumexp(0), [()])
    check_op(lambda x: x.mT.logsumexp(0), [(3, 4)])
    ints = ember.tensor([1, 2])
    assert ember.logsumexp(ints, 0).dtype == ember.float32


def test_logsumexp_double_backward():
    check_double_backward(lambda x: x.logsumexp(1), [(3, 4)])


# ---- all / any / count_nonzero / nansum / nanmean ------------------------------------------


LOGICAL_INPUTS = [
    _arr([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]),
    _arr([[True, True, False], [True, True, True]], bool),
    _arr([[0, 0, 0], [1, 2, 0]], numpy.int64),
    _arr([[0, 1], [2, 3]], numpy.uint8),
    numpy.zeros((0, 3)),
    _arr(0.0),
]


@pytest.mark.parametrize("x", LOGICAL_INPUTS)
@pytest.mark.parametrize("op", ["all", "any", "count_nonzero"])
def test_all_any_count_nonzero(x, op):
    dims = [None] + ([1, 0, (0, 1)] if x.ndim == 2 else [0])
    for dim in dims:
        kws = [{} if dim is None else {"dim": dim}]
        if op != "count_nonzero" and dim is not None:
            kws.append({"dim": dim, "keepdim": True})
        for kw in kws:
            check_op(lambda t: getattr(t, op)(**kw), [], inputs=[x], grad=False)


@pytest.mark.parametrize("op", ["nansum", "nanmean"])
@pytest.mark.parametrize("kw", [{}, {"dim": 1}, {"dim": 0, "keepdim": True}])
def test_nansum_nanmean(op, kw):
    nan = float("nan")
    x = _arr([[1.0, nan, 2.0], [nan, nan, nan], [0.5, -1.5, 3.0]])
    check_op(lambda t: getattr(t, op)(**kw), [], inputs=[x], gradcheck=False)
    check_op(lambda t: getattr(t, op)(**kw), [(3, 4)])
    assert ember.nansum(ember.tensor([1, 2])).dtype == ember.int64


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("call, op", [
    (lambda x: x.sum(2), "sum"), (lambda x: x.mean(-3), "mean"), (lambda x: x.amax(5), "amax"),
    (lambda x: x.max(2), "max"), (lambda x: x.cumsum(2), "cumsum"),
    (lambda x: x.var((0, 7)), "var"), (lambda x: x.norm(2, 3), "norm"),
    (lambda x: x.logsumexp(-5), "logsumexp"), (lambda x: x.argmax(2), "argmax"),
    (lambda x: x.prod(2), "prod"), (lambda x: x.median(2), "median"),
])
def test_bad_dim_names_op_and_range(call, op):
    with pytest.raises(IndexError, match=rf"{op}: dimension -?\d is out of range .*\[-2, 1\]"):
        call(ember.ones(2, 3))


def test_repeated_dim_is_an_error():
    with pytest.raises(ValueError, match="sum: dim .* repeats"):
        ember.ones(2, 3).sum((1, -1))


def test_float_only_reductions_reject_integers():
    x = ember.tensor([1, 2, 3])
    with pytest.raises(errors.DTypeError, match=r"mean: .*int64.*dtype=.*\.float\(\)"):
        x.mean()
    for op in ("var", "std", "norm"):
        with pytest.raises(errors.DTypeError, match=rf"{op}: .*int64.*\.float\(\)"):
            getattr(x, op)()
    with pytest.raises(errors.DTypeError, match="nanmean"):
        x.nanmean()


@pytest.mark.parametrize("call, op", [
    (lambda x: x.max(), "max"), (lambda x: x.min(), "min"), (lambda x: x.amax(), "amax"),
    (lambda x: x.argmax(), "argmax"), (lambda x: x.argmin(), "argmin"),
])
def test_extreme_of_empty_raises(call, op):
    with pytest.raises(errors.ShapeError, match=rf"{op}: input of shape \(0, 3\) is empty; "
                                               "specify the reduction dim"):
        call(ember.zeros(0, 3))


def test_extreme_over_empty_dim_raises():
    for call, op in [(lambda x: x.max(0), "max"), (lambda x: x.amin(0), "amin"),
                     (lambda x: x.argmax(0), "argmax"), (lambda x: x.median(0), "median")]:
        with pytest.raises(errors.ShapeError, match=rf"{op}: cannot reduce over dim 0 of size 0"):
            call(ember.zeros(0, 3))
    with pytest.raises(errors.ShapeError, match="norm: the inf norm over zero elements"):
        ember.zeros(0, 3).norm(INF)


def test_norm_argument_errors():
    x = ember.ones(2, 3, 4)
    with pytest.raises(errors.ShapeError, match="norm: p='fro' takes at most 2 dims"):
        x.norm("fro", (0, 1, 2))
    with pytest.raises(NotImplementedError, match="norm: p='nuc'"):
        x.norm("nuc")
    with pytest.raises(ValueError, match="norm: p must be a number"):
        x.norm("max")


def test_var_rejects_both_unbiased_and_correction():
    with pytest.raises(ValueError, match="var: pass either unbiased= or correction="):
        ember.ones(3).var(unbiased=True, correction=0)


def test_single_dim_ops_reject_tuples():
    with pytest.raises(TypeError, match=r"cumsum: dim must be an int, got \(0, 1\)"):
        ember.ones(2, 3).cumsum((0, 1))


# ---- property: broadcasting gradients are sums back to each input's shape -------------------


@st.composite
def _broadcast_pair(draw):
    """An output shape and two input shapes that broadcast to it (dims dropped or set to 1)."""
    out = draw(st.lists(st.integers(1, 3), min_size=0, max_size=4))

    def derive():
        lead = draw(st.integers(0, len(out)))
        return tuple(1 if draw(st.booleans()) else s for s in out[lead:])

    return tuple(out), derive(), derive()


def _numpy_sum_to(g, shape):
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


@settings(max_examples=60, deadline=None)
@given(_broadcast_pair(), st.integers(0, 2**16))
def test_gradient_of_broadcast_product_sums_to_input_shape(shapes, seed):
    out_shape, sa, sb = shapes
    rng = numpy.random.default_rng(seed)
    a_np, b_np = rng.standard_normal(sa), rng.standard_normal(sb)
    a = ember.tensor(a_np, requires_grad=True)
    b = ember.tensor(b_np, requires_grad=True)
    (a * b).sum().backward()
    full = numpy.broadcast_shapes(sa, sb)
    want_a = _numpy_sum_to(numpy.broadcast_to(b_np, full), sa)
    want_b = _numpy_sum_to(numpy.broadcast_to(a_np, full), sb)
    assert a.grad.shape == sa and b.grad.shape == sb
    numpy.testing.assert_allclose(a.grad.numpy(), want_a, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(b.grad.numpy(), want_b, rtol=1e-12, atol=1e-12)
