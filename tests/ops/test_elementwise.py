"""Elementwise ops against PyTorch: values, gradients, finite differences, dtypes, errors."""

import warnings

import numpy
import pytest
import torch

import ember
from ember import errors
from tests.oracle import check_double_backward, check_op

UNARY_SHAPES = [(3, 4), (), (0, 3), (2, 1, 3)]
BINARY_SHAPES = [[(3, 4), (3, 4)], [(3, 1), (4,)], [(), (2, 3)], [(2, 3), ()], [(0, 3), (3,)]]

# (method name, input options: a domain where the op and its gradient are smooth)
UNARY = [
    ("exp", {}), ("exp2", {}), ("expm1", {}), ("log", {"positive": True}),
    ("log2", {"positive": True}), ("log10", {"positive": True}),
    ("log1p", {"low": -0.5, "high": 2.0}), ("sqrt", {"positive": True}),
    ("rsqrt", {"positive": True}), ("square", {}), ("reciprocal", {"positive": True}),
    ("sin", {}), ("cos", {}), ("tan", {"low": -1.2, "high": 1.2}), ("tanh", {}), ("sinh", {}),
    ("cosh", {}), ("asin", {"low": -0.9, "high": 0.9}), ("acos", {"low": -0.9, "high": 0.9}),
    ("atan", {}), ("asinh", {}), ("acosh", {"low": 1.2, "high": 3.0}),
    ("atanh", {"low": -0.9, "high": 0.9}), ("erf", {}), ("erfc", {}), ("abs", {}), ("neg", {}),
    ("sign", {}), ("floor", {}), ("ceil", {}), ("trunc", {}), ("round", {}), ("frac", {}),
    ("nan_to_num", {}), ("positive", {}), ("clone", {}),
]


@pytest.mark.parametrize("name,kw", UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("shape", UNARY_SHAPES)
def test_unary_matches_torch(name, kw, shape):
    check_op(lambda x: getattr(x, name)(), [shape], **kw)


@pytest.mark.parametrize("name,kw", UNARY, ids=[u[0] for u in UNARY])
def test_unary_function_form_noncontiguous_and_float32(name, kw):
    e_fn, t_fn = getattr(ember, name), getattr(torch, name)
    check_op(lambda x: e_fn(x.mT), [(4, 3)], torch_fn=lambda x: t_fn(x.mT), **kw)
    check_op(lambda x: getattr(x, name)(), [(3, 5)], dtype=numpy.float32, **kw)


BINARY = [
    ("add", lambda a, b: a + b, {}),
    ("sub", lambda a, b: a - b, {}),
    ("mul", lambda a, b: a * b, {}),
    ("div", lambda a, b: a / b, {"positive": True}),
    ("pow", lambda a, b: a**b, {"positive": True}),
    ("remainder", lambda a, b: a % b, {"positive": True}),
    ("fmod", lambda a, b: a.fmod(b), {}),
    ("atan2", lambda a, b: a.atan2(b), {}),
    ("maximum", lambda a, b: a.maximum(b), {}),
    ("minimum", lambda a, b: a.minimum(b), {}),
    ("add_alpha", lambda a, b: a.add(b, alpha=-2.5), {}),
    ("sub_alpha", lambda a, b: a.sub(b, alpha=0.5), {}),
    ("lerp", lambda a, b: a.lerp(b, 0.3), {}),
    ("lerp_far", lambda a, b: a.lerp(b, 0.8), {}),
]


@pytest.mark.parametrize("name,fn,kw", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shapes", BINARY_SHAPES)
def test_binary_matches_torch(name, fn, kw, shapes):
    check_op(fn, shapes, **kw)


@pytest.mark.parametrize("name,fn,kw", BINARY, ids=[b[0] for b in BINARY])
def test_binary_noncontiguous_and_float32(name, fn, kw):
    check_op(lambda a, b: fn(a.mT, b), [(4, 3), (3, 4)], **kw)
    check_op(fn, [(3, 1), (4,)], dtype=numpy.float32, **kw)


def test_fmod_and_remainder_signs_follow_torch():
    a = numpy.array([5.0, -5.0, 5.5, -5.5, 0.0])
    for b in (3.0, -3.0):
        check_op(lambda x: x % b, [None], inputs=[a], gradcheck=False)
        check_op(lambda x: x.fmod(b), [None], inputs=[a], gradcheck=False)
    ai = numpy.array([7, -7, 0, 3])
    bi = numpy.array([2, 2, -3, -2])
    for fn in (lambda x, y: x % y, lambda x, y: x.fmod(y), lambda x, y: x // y,
               lambda x, y: x.div(y, rounding_mode="trunc")):
        check_op(fn, [None, None], inputs=[ai, bi], grad=False)


def test_tensor_exponent_and_weight_gradients():
    check_op(lambda a, e, w: a.lerp(e, w), [(2, 3), (2, 3), (3,)], low=-1.0, high=1.5)
    check_op(lambda a, b: a.pow(b), [(2, 3), (3,)], positive=True)


def test_reflected_operators():
    check_op(lambda x: 2 - x, [(2, 3)])
    check_op(lambda x: 2.0 ** x, [(2, 3)])
    check_op(lambda x: 3 / x, [(2, 3)], positive=True)
    # torch has no gradient for a number % tensor; ember's is checked by finite differences.
    check_op(lambda x: 3.5 % x, [(2, 3)], positive=True, grad=False)
    assert ember.autograd.gradcheck(lambda x: 3.5 % x, [ember.tensor([[0.8, 1.3, 2.2]],
                                                                     dtype=ember.float64,
                                                                     requires_grad=True)])
    check_op(lambda x: 1 + x * 2 - (-x), [(2, 3)])
    check_op(lambda x: abs(x) + (+x), [(2, 3)])
    x = ember.tensor([1.0, 2.0], dtype=ember.float32)
    for scalar in (numpy.float64(2.0), numpy.int64(2)):
        out = scalar - x
        assert isinstance(out, ember.Tensor) and out.dtype == ember.float32
        numpy.testing.assert_allclose(out.numpy(), [1.0, 0.0])
        assert isinstance(scalar * x, ember.Tensor) and isinstance(scalar ** x, ember.Tensor)


def test_pow_edge_gradients_match_torch():
    base = numpy.array([0.0, 1.0, -1.5, 2.0])
    for exponent in (0.0, 2.0, 3.0, 0.5):
        check_op(lambda x: x**exponent, [None], inputs=[base], gradcheck=False)
    check_op(lambda x, e: x**e, [None, None], inputs=[base, numpy.array([0.0, 2.0, 2.0, -0.5])],
             gradcheck=False)
    check_op(lambda e: 2.0**e, [(3,)])
    check_op(lambda e: 0.0**e, [None], inputs=[numpy.array([0.0, 2.0, 1.5])], gradcheck=False)


def test_div_rounding_modes():
    a = numpy.array([7.5, -7.5, 3.0, -0.2])
    b = numpy.array([2.0, 2.0, -2.0, 0.3])
    for mode in ("trunc", "floor"):
        check_op(lambda x, y: x.div(y, rounding_mode=mode), [None, None], inputs=[a, b],
                 gradcheck=False)
        check_op(lambda x, y: ember.div(x, y, rounding_mode=mode), [None, None], inputs=[a, b],
                 torch_fn=lambda x, y: torch.div(x, y, rounding_mode=mode), gradcheck=False)
    # torch has no gradient for floor_divide; ember gives the zero gradient of div(floor).
    check_op(lambda x, y: x // y, [None, None], inputs=[a, b], grad=False)
    x = ember.tensor(a, requires_grad=True)
    (x // 2.0).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), numpy.zeros(4))
    with pytest.raises(ValueError, match="rounding_mode must be None, 'trunc' or 'floor'"):
        ember.div(x, 2.0, rounding_mode="round")


def test_round_decimals_and_halves():
    a = numpy.array([0.5, 1.5, 2.5, -0.5, -2.5, 1.2345, 123.456, -987.65])
    for d in (0, 1, 2, -1, -2):
        check_op(lambda x: x.round(decimals=d), [None], inputs=[a], gradcheck=False)


CLAMP_CASES = [
    {"min": -0.5, "max": 0.5}, {"min": -0.5}, {"max": 0.3}, {"min": 0.5, "max": -0.5},
]


@pytest.mark.parametrize("kwargs", CLAMP_CASES)
@pytest.mark.parametrize("shape", [(3, 4), (), (0, 2)])
def test_clamp_number_bounds(kwargs, shape):
    check_op(lambda x: x.clamp(**kwargs), [shape])
    check_op(lambda x: x.clip(**kwargs), [shape], dtype=numpy.float32)


def test_clamp_tensor_bounds_including_ties_and_crossed_bounds():
    check_op(lambda x, lo, hi: x.clamp(lo, hi), [(3, 4), (4,), (3, 1)])
    check_op(lambda x, lo: torch.clamp(x, min=lo) if isinstance(x, torch.Tensor)
             else ember.clamp(x, min=lo), [(3, 4), (3, 4)])
    check_op(lambda x, hi: x.clamp(max=hi), [(3, 4), ()])
    x = numpy.array([0.0, 1.0, 2.0, 3.0, 2.0])
    lo = numpy.array([1.0, 2.0, 3.0, 4.0, 2.0])
    hi = numpy.array([0.5, 2.0, 2.5, 3.0, 3.0])
    check_op(lambda a, b, c: a.clamp(b, c), [None] * 3, inputs=[x, lo, hi], gradcheck=False)
    check_op(lambda a: a.clamp(1.0, 2.0), [None], inputs=[x], gradcheck=False)  # on the bounds


def test_clamp_dtype_promotion():
    assert ember.clamp(ember.tensor([1, 2, 3]), min=1.5).dtype == ember.float32
    assert ember.clamp(ember.tensor([1, 2, 3]), 0, 2).dtype == ember.int64
    numpy.testing.assert_allclose(ember.tensor([1, 2, 3]).clamp(min=1.5).numpy(), [1.5, 2, 3])


def test_maximum_minimum_split_ties_like_torch():
    a = numpy.array([1.0, 2.0, 3.0, numpy.nan])
    b = numpy.array([1.0, 3.0, 2.0, 0.0])
    for fn in (lambda x, y: x.maximum(y), lambda x, y: x.minimum(y)):
        check_op(fn, [None, None], inputs=[a, b], gradcheck=False)


def test_where_variants():
    cond = numpy.array([[True, False, True]])

    def both(fn_e, fn_t):
        return lambda x, y: (fn_e if isinstance(x, ember.Tensor) else fn_t)(x, y)

    c_e, c_t = ember.tensor(cond), torch.tensor(cond)
    check_op(both(lambda x, y: ember.where(c_e, x, y), lambda x, y: torch.where(c_t, x, y)),
             [(2, 3), (2, 1)])
    check_op(both(lambda x, y: x.where(c_e, y), lambda x, y: x.where(c_t, y)), [(2, 3), ()])
    check_op(both(lambda x, y: ember.where(c_e, x, 0.0) * y,
                  lambda x, y: torch.where(c_t, x, 0.0) * y), [(3,), (2, 3)])
    check_op(both(lambda x, y: ember.where(x > y, x, y), lambda x, y: torch.where(x > y, x, y)),
             [(0, 3), (3,)])
    assert ember.where(c_e, 1.0, 0.0).dtype == ember.float32
    assert ember.where(c_e, ember.tensor([1, 2, 3]), 2.5).dtype == ember.float32
    idx_e = ember.where(ember.tensor([[0, 1], [1, 1]]))
    idx_t = torch.where(torch.tensor([[0, 1], [1, 1]]))
    for e, t in zip(idx_e, idx_t):
        numpy.testing.assert_array_equal(e.numpy(), t.numpy())
        assert e.dtype == ember.int64


def test_nan_to_num_values_and_gradient():
    a = numpy.array([1.0, numpy.nan, numpy.inf, -numpy.inf, -2.0])
    check_op(lambda x: x.nan_to_num(), [None], inputs=[a], gradcheck=False)
    check_op(lambda x: x.nan_to_num(nan=1.5, posinf=9.0, neginf=-9.0), [None], inputs=[a],
             gradcheck=False)
    check_op(lambda x: x.nan_to_num(), [None], inputs=[a.astype(numpy.float32)],
             dtype=numpy.float32)


# ---- erf -----------------------------------------------------------------------------------


def _erf_grid():
    grid = numpy.concatenate([
        numpy.linspace(-7.0, 7.0, 4001), numpy.geomspace(1e-300, 1e-3, 50),
        -numpy.geomspace(1e-300, 1e-3, 50), numpy.geomspace(5.0, 27.0, 200),
        numpy.array([0.0, -0.0, 0.999999, 1.0, 2.5, 5.0, 30.0, 1e300]),
    ])
    return grid


def test_erf_is_accurate_in_float64():
    x = _erf_grid()
    got = ember.erf(ember.tensor(x)).numpy()
    ref = torch.erf(torch.tensor(x)).numpy()
    numpy.testing.assert_allclose(got, ref, rtol=1e-13, atol=0)
    assert numpy.signbit(got[x == 0]).tolist() == numpy.signbit(ref[x == 0]).tolist()


def test_erfc_is_accurate_in_float64():
    x = _erf_grid()
    got = ember.erfc(ember.tensor(x)).numpy()
    ref = torch.erfc(torch.tensor(x)).numpy()
    numpy.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-305)


def test_erf_special_values_and_low_precision():
    x = numpy.array([numpy.nan, numpy.inf, -numpy.inf, 0.3, -4.0])
    for dt in (numpy.float64, numpy.float32, numpy.float16):
        a = x.astype(dt)
        for name in ("erf", "erfc"):
            got = getattr(ember, name)(ember.tensor(a))
            ref = getattr(torch, name)(torch.tensor(a)).numpy()
            assert got.dtype == a.dtype
            numpy.testing.assert_allclose(got.numpy(), ref, rtol=1e-3 if dt == numpy.float16
                                          else 1e-6, equal_nan=True)
    assert ember.erf(ember.tensor([1, 2])).dtype == ember.float32


# ---- double backward -------------------------------------------------------------------------


@pytest.mark.parametrize("fn,kw", [
    (lambda x: x.exp(), {}), (lambda x: x.log(), {"positive": True}), (lambda x: x.tanh(), {}),
    (lambda x: x.sin(), {}), (lambda x: x.cos(), {}), (lambda x: x.sqrt(), {"positive": True}),
    (lambda x: x.erf(), {}), (lambda x: x.erfc(), {}), (lambda x: x.rsqrt(), {"positive": True}),
    (lambda x: x.reciprocal(), {"positive": True}),
    (lambda x: x.asin(), {"low": -0.8, "high": 0.8}),
    (lambda x: x.abs() * x, {}), (lambda x: x.clamp(-0.5, 0.5) * x, {}),
    (lambda x: x**3, {}), (lambda x: 2.0**x, {}), (lambda x: x.tan(), {"low": -1, "high": 1}),
    (lambda x: x.log1p(), {"positive": True}), (lambda x: x.expm1(), {}),
])
def test_double_backward_unary(fn, kw):
    check_double_backward(fn, [(2, 3)], **kw)


@pytest.mark.parametrize("fn,kw", [
    (lambda a, b: a * b, {}), (lambda a, b: a / b, {"positive": True}),
    (lambda a, b: a**b, {"positive": True}), (lambda a, b: a.atan2(b), {"positive": True}),
    (lambda a, b: ember.where(a > b, a * a, b * a), {}),
    (lambda a, b: a.clamp(min=b) * a, {}), (lambda a, b: a.maximum(b) * b, {}),
    (lambda a, b: a.lerp(b, 0.3) ** 2, {}), (lambda a, b: (a % b) * a, {"positive": True}),
])
def test_double_backward_binary(fn, kw):
    check_double_backward(fn, [(2, 3), (3,)], **kw)


# ---- dtypes ----------------------------------------------------------------------------------


def _pair(a_np, b):
    """The same operands for ember and torch."""
    if isinstance(b, numpy.ndarray):
        return (ember.tensor(a_np), ember.tensor(b)), (torch.tensor(a_np), torch.tensor(b))
    return (ember.tensor(a_np), b), (torch.tensor(a_np), b)


DTYPE_CASES = [
    (numpy.array([1, 2]), 2.5, lambda a, b: a + b),
    (numpy.array([1.0, 2.0], numpy.float32), 2, lambda a, b: a * b),
    (numpy.array([1, 2]), numpy.array([1.0, 3.0], numpy.float16), lambda a, b: a + b),
    (numpy.array([True, False]), numpy.array([True, True]), lambda a, b: a + b),
    (numpy.array([True, False]), numpy.array([True, True]), lambda a, b: a * b),
    (numpy.array([1, 2]), numpy.array([2, 4]), lambda a, b: a / b),
    (numpy.array([7, -7]), numpy.array([2, 2]), lambda a, b: a // b),
    (numpy.array([7, -7]), 2, lambda a, b: a % b),
    (numpy.array([7, -7], numpy.int32), 2.5, lambda a, b: a % b),
    (numpy.array([2, 3]), 2, lambda a, b: a**b),
    (numpy.array([2, 3]), 0.5, lambda a, b: a**b),
    (numpy.array([2, 3], numpy.int32), numpy.array(4), lambda a, b: a * b),
    (numpy.array([1.0], numpy.float32), numpy.array(4.0), lambda a, b: a * b),
    (numpy.array([1.0], numpy.float16), numpy.array([4.0]), lambda a, b: a - b),
    (numpy.array([1, 2]), 1.5, lambda a, b: a < b),
    (numpy.array([1, 2], numpy.uint8), 1, lambda a, b: a == b),
    (numpy.array([4, 9]), None, lambda a, b: a.sqrt()),
    (numpy.array([4, 9]), None, lambda a, b: a.exp()),
    (numpy.array([-4, 9]), None, lambda a, b: a.abs()),
    (numpy.array([-4, 9]), None, lambda a, b: a.sign()),
    (numpy.array([-4, 9]), None, lambda a, b: a.square()),
    (numpy.array([True, False]), None, lambda a, b: a.square()),
    (numpy.array([-4, 9]), None, lambda a, b: a.floor()),
    (numpy.array([1, 0]), numpy.array([1.5, 0.0]), lambda a, b: a.logical_and(b)),
    (numpy.array([5, 3]), numpy.array([True, False]), lambda a, b: a & b),
    (numpy.array([2, 3]), numpy.array([1, 4]), lambda a, b: a.atan2(b)),
]


@pytest.mark.parametrize("a,b,fn", DTYPE_CASES)
def test_result_dtypes_match_torch(a, b, fn):
    (ea, eb), (ta, tb) = _pair(a, b)
    e, t = fn(ea, eb), fn(ta, tb)
    assert str(e.dtype).replace("ember.", "") == str(t.dtype).replace("torch.", ""), (e, t)
    numpy.testing.assert_allclose(e.numpy().astype(float), t.numpy().astype(float), rtol=1e-3)


def test_integer_division_by_zero_raises_and_float_division_is_quiet():
    ints = ember.tensor([1, 2, 3])
    for fn in (lambda: ints // 0, lambda: ints % ember.tensor([1, 0, 1]),
               lambda: ints.fmod(0), lambda: ints.div(0, rounding_mode="trunc")):
        with pytest.raises(ZeroDivisionError, match="integer division by zero"):
            fn()
    with pytest.raises(errors.EmberError):
        ints // 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        numpy.testing.assert_array_equal((ints / 0).numpy(), [numpy.inf] * 3)
        x = ember.tensor([-1.0, 0.0, 1.0])
        numpy.testing.assert_array_equal(x.log().isnan().numpy(), [True, False, False])
        assert (x.sqrt().isnan() | x.reciprocal().isinf()).tolist() == [True, True, False]
        numpy.testing.assert_array_equal((x % 0.0).isnan().numpy(), [True] * 3)


# ---- comparisons, logic, predicates ----------------------------------------------------------


COMPARE = [
    lambda a, b: a == b, lambda a, b: a != b, lambda a, b: a < b, lambda a, b: a <= b,
    lambda a, b: a > b, lambda a, b: a >= b, lambda a, b: a.eq(b), lambda a, b: a.ne(b),
    lambda a, b: a.lt(b), lambda a, b: a.le(b), lambda a, b: a.gt(b), lambda a, b: a.ge(b),
    lambda a, b: a.greater_equal(b), lambda a, b: a.less(b), lambda a, b: a.not_equal(b),
]


@pytest.mark.parametrize("fn", COMPARE)
def test_comparisons_are_bool_and_broadcast(fn):
    a = numpy.array([[1.0, 2.0, numpy.nan], [0.0, -1.0, 3.0]])
    b = numpy.array([1.0, 3.0, numpy.nan])
    (ea, eb), (ta, tb) = _pair(a, b)
    for x, y, u, v in ((ea, eb, ta, tb), (ea, 1.0, ta, 1.0), (eb, ea, tb, ta)):
        e, t = fn(x, y), fn(u, v)
        assert e.dtype == ember.bool and not e.requires_grad
        numpy.testing.assert_array_equal(e.numpy(), t.numpy())


LOGIC = [
    lambda a, b: a.logical_and(b), lambda a, b: a.logical_or(b), lambda a, b: a.logical_xor(b),
    lambda a, b: a.logical_not(), lambda a, b: a & b, lambda a, b: a | b, lambda a, b: a ^ b,
    lambda a, b: ~a, lambda a, b: a.bitwise_and(b), lambda a, b: a.bitwise_not(),
    lambda a, b: True & a, lambda a, b: 6 | a, lambda a, b: a ^ 3,
]


@pytest.mark.parametrize("fn", LOGIC)
@pytest.mark.parametrize("dtype", [numpy.bool_, numpy.int64, numpy.uint8])
def test_logical_and_bitwise(fn, dtype):
    a = numpy.array([[0, 1, 5, 3]]).astype(dtype)
    b = numpy.array([[1], [0], [6]]).astype(dtype)
    (ea, eb), (ta, tb) = _pair(a, b)
    e, t = fn(ea, eb), fn(ta, tb)
    assert str(e.dtype).replace("ember.", "") == str(t.dtype).replace("torch.", "")
    numpy.testing.assert_array_equal(e.numpy(), t.numpy())


def test_logical_ops_on_floats():
    a = numpy.array([0.0, 1.5, -2.0, numpy.nan])
    b = numpy.array([1.0, 0.0, 3.0, 0.0])
    (ea, eb), (ta, tb) = _pair(a, b)
    for name in ("logical_and", "logical_or", "logical_xor"):
        numpy.testing.assert_array_equal(getattr(ea, name)(eb).numpy(),
                                         getattr(ta, name)(tb).numpy())
    numpy.testing.assert_array_equal(ea.logical_not().numpy(), ta.logical_not().numpy())


def test_predicates_and_closeness():
    a = numpy.array([1.0, numpy.nan, numpy.inf, -numpy.inf, 0.0, 1e-9])
    b = numpy.array([1.0 + 1e-7, numpy.nan, numpy.inf, numpy.inf, 1e-9, 0.0])
    (ea, eb), (ta, tb) = _pair(a, b)
    for name in ("isnan", "isinf", "isfinite", "isposinf", "isneginf"):
        numpy.testing.assert_array_equal(getattr(ember, name)(ea).numpy(),
                                         getattr(torch, name)(ta).numpy())
        numpy.testing.assert_array_equal(getattr(ea, name)().numpy(), getattr(ta, name)().numpy())
    assert ember.isnan(ember.tensor([1, 2])).tolist() == [False, False]
    assert ember.isfinite(ember.tensor([1, 2])).tolist() == [True, True]
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.0, "atol": 1e-8}):
        numpy.testing.assert_array_equal(ember.isclose(ea, eb, **kw).numpy(),
                                         torch.isclose(ta, tb, **kw).numpy())
        assert ember.allclose(ea, eb, **kw) == torch.allclose(ta, tb, **kw)
        assert ea.allclose(ea, **kw) == ta.allclose(ta, **kw)
    assert ember.equal(ea[:1], eb[:1]) is torch.equal(ta[:1], tb[:1]) is False
    assert ember.equal(ember.tensor([1, 2]), ember.tensor([1, 2])) is True
    assert ember.equal(ember.tensor([1, 2]), ember.tensor([1, 2, 3])) is False


# ---- in-place ----------------------------------------------------------------------------------


INPLACE = [
    lambda x, y: x.add_(y), lambda x, y: x.sub_(y, alpha=2), lambda x, y: x.mul_(y),
    lambda x, y: x.div_(y.abs() + 1), lambda x, y: x.abs().add_(1).pow_(y),
    lambda x, y: x.clamp_(-0.3, 0.4).mul_(y), lambda x, y: x.exp_() + y,
    lambda x, y: x.mul_(y).neg_().tanh_(), lambda x, y: x.sin_().lerp_(y, 0.25),
    lambda x, y: x.copy_(y), lambda x, y: x.fill_(2.0) * y, lambda x, y: x.zero_().add_(y),
    lambda x, y: x.abs_().add_(1).sqrt_() * x, lambda x, y: x.add_(y).mul_(2),
    lambda x, y: x.atan2_(y).erf_(), lambda x, y: x.remainder_(y.abs() + 1),
]


@pytest.mark.parametrize("fn", INPLACE)
def test_inplace_on_non_leaf_matches_torch(fn):
    check_op(lambda x, y: fn(x * 1.0, y), [(2, 3), (3,)])


def test_inplace_operators_keep_identity_and_dtype():
    e = ember.tensor([[1.0, 2.0], [3.0, 4.0]])
    t = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    ref = e
    for op in ("+=", "-=", "*=", "/=", "//=", "%=", "**="):
        loc_e, loc_t = {"v": e}, {"v": t}
        exec(f"v {op} 1.5", {}, loc_e)
        exec(f"v {op} 1.5", {}, loc_t)
        e, t = loc_e["v"], loc_t["v"]
        assert e is ref
        numpy.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-6)
    i = ember.tensor([12, 10])
    i_ref = i
    i |= 1
    i &= 13
    i ^= 4
    i += 2
    i *= 3
    i //= 2
    assert i is i_ref and i.dtype == ember.int64 and i.tolist() == [16, 22]
    with pytest.raises(errors.DTypeError, match="can't be cast"):
        i /= 2
    with pytest.raises(errors.DTypeError, match="can't be cast"):
        i.exp_()


def test_inplace_on_leaf_requiring_grad_raises_like_torch():
    e = ember.tensor([1.0, 2.0], requires_grad=True)
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        t.add_(1.0)
    for fn in (lambda x: x.add_(1.0), lambda x: x.exp_(), lambda x: x.zero_(),
               lambda x: x.clamp_(0, 1)):
        with pytest.raises(errors.AutogradError, match="leaf tensor that requires grad"):
            fn(e)
    with ember.no_grad():
        e.mul_(3.0).add_(1.0)
    numpy.testing.assert_allclose(e.detach().numpy(), [4.0, 7.0])


def test_stale_saved_tensor_raises_at_backward_like_torch():
    for lib in (torch, ember):
        x = lib.tensor([0.5, 1.0], requires_grad=True)
        y = (x * 2).exp()  # saves its output
        y.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"
                           if lib is torch else "modified by an in-place operation"):
            y.sum().backward()
        h = x * 2
        z = h.sin()  # saves its input
        h.mul_(2.0)
        with pytest.raises(RuntimeError):
            z.sum().backward()


def test_copy_fill_zero_gradients():
    check_op(lambda x, s: (x * 1.0).copy_(s) * x, [(2, 3), (3,)])
    check_op(lambda x, s: (x * 1.0).copy_(s), [(2, 3), ()])
    check_op(lambda x, v: (x * 1.0).fill_(v) + x, [(2, 3), ()])
    check_op(lambda x: (x * 2.0).zero_() + x * x, [(2, 3)])
    dst = ember.zeros(2, 3, dtype=ember.int64)
    dst.copy_(ember.tensor([1.7, -2.7, 3.2]))
    assert dst.tolist() == [[1, -2, 3]] * 2
    f = ember.zeros(3)
    assert f.fill_(ember.tensor(2.5)).tolist() == [2.5] * 3
    # in-place writes show through views
    base = ember.zeros(2, 2)
    base[0].fill_(1.0)
    assert base.tolist() == [[1.0, 1.0], [0.0, 0.0]]


def test_clone_is_a_differentiable_copy():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert c._data is not x._data and not c.is_leaf
    (c * c).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    check_op(lambda x: x.clone() * 3.0, [(2, 0)])


# ---- errors ------------------------------------------------------------------------------------


def test_error_messages():
    a, b = ember.ones(2, 3), ember.ones(4)
    with pytest.raises(errors.ShapeError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be"):
        a + b
    with pytest.raises(errors.ShapeError, match=r"maximum: shapes \(2, 3\) and \(4,\)"):
        ember.maximum(a, b)
    with pytest.raises(errors.ShapeError, match="where: condition"):
        ember.where(ember.ones(5) > 0, a, 0.0)
    with pytest.raises(ValueError, match="clamp: at least one of min and max"):
        a.clamp()
    with pytest.raises(errors.DTypeError, match="bitwise_and: only integer and bool.*float32"):
        a & a
    with pytest.raises(errors.DTypeError, match="bitwise_or: only integer.*the number 1.5"):
        ember.tensor([1]) | 1.5
    with pytest.raises(errors.DTypeError, match="integers to negative integer powers"):
        ember.tensor([2, 3]) ** -1
    with pytest.raises(errors.DTypeError, match="isclose: input is ember.float32 but other is"):
        ember.isclose(a, a.double())
    with pytest.raises(errors.DTypeError, match="neg: negation of a bool tensor"):
        -(a > 0)
    with pytest.raises(errors.DTypeError, match="sub: subtraction of two bool tensors"):
        (a > 0) - (a > 0)
    with pytest.raises(errors.DTypeError, match="frac: needs a floating tensor, got ember.int64"):
        ember.tensor([1]).frac()
    with pytest.raises(errors.ShapeError, match=r"copy_: a source of shape \(4,\) cannot be"):
        a.copy_(b)
    with pytest.raises(errors.ShapeError, match=r"fill_: the value must be a number or a 0-d"):
        a.fill_(b)
    with pytest.raises(errors.ShapeError, match=r"add_: the result of shape \(2, 3\) cannot be"):
        ember.ones(3).add_(a)
    with pytest.raises(errors.DTypeError, match="exp: expected a Tensor, got float"):
        ember.exp(1.0)
