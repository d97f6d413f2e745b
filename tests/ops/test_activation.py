"""Activations against PyTorch: values, gradients, finite differences, double backward,
large-magnitude stability, PyTorch's gradients at the kinks, and error messages."""

import math
import warnings

import numpy
import pytest
import torch
import torch.nn.functional as F

import ember
from ember import errors
from ember.ops import activation
from tests.oracle import check_double_backward, check_op

# (ember function, torch function, keyword arguments). Inputs are scaled by 3 so that every
# piece of the piecewise ops (|x| > 3, > 6, above softplus thresholds) is exercised.
ACTIVATIONS = {
    "sigmoid": (ember.sigmoid, torch.sigmoid, {}),
    "logsigmoid": (ember.logsigmoid, F.logsigmoid, {}),
    "relu": (ember.relu, torch.relu, {}),
    "relu6": (ember.relu6, F.relu6, {}),
    "leaky_relu": (ember.leaky_relu, F.leaky_relu, {}),
    "leaky_relu_0.2": (ember.leaky_relu, F.leaky_relu, {"negative_slope": 0.2}),
    "leaky_relu_steep": (ember.leaky_relu, F.leaky_relu, {"negative_slope": 1.7}),
    "elu": (ember.elu, F.elu, {}),
    "elu_alpha": (ember.elu, F.elu, {"alpha": 0.7}),
    "selu": (ember.selu, F.selu, {}),
    "celu": (ember.celu, F.celu, {}),
    "celu_alpha": (ember.celu, F.celu, {"alpha": 2.5}),
    "gelu": (ember.gelu, F.gelu, {}),
    "gelu_tanh": (ember.gelu, F.gelu, {"approximate": "tanh"}),
    "silu": (ember.silu, F.silu, {}),
    "mish": (ember.mish, F.mish, {}),
    "softplus": (ember.softplus, F.softplus, {}),
    "softplus_beta": (ember.softplus, F.softplus, {"beta": 2.0, "threshold": 4.0}),
    "softplus_negative_beta": (ember.softplus, F.softplus, {"beta": -0.5, "threshold": 1.0}),
    "softsign": (ember.softsign, F.softsign, {}),
    "hardtanh": (ember.hardtanh, F.hardtanh, {}),
    "hardtanh_bounds": (ember.hardtanh, F.hardtanh, {"min_val": -2.0, "max_val": 0.5}),
    "hardsigmoid": (ember.hardsigmoid, F.hardsigmoid, {}),
    "hardswish": (ember.hardswish, F.hardswish, {}),
}

SHAPES = [(3, 4), (), (0, 3), (2, 3, 4)]


def _scaled(fn, kwargs, transpose=False):
    def run(x):
        if transpose:
            x = x.mT
        return fn(x * 3.0, **kwargs)

    return run


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_matches_torch_and_finite_differences(name, shape):
    fn, torch_fn, kwargs = ACTIVATIONS[name]
    check_op(_scaled(fn, kwargs), [shape], torch_fn=_scaled(torch_fn, kwargs))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_noncontiguous_input(name):
    fn, torch_fn, kwargs = ACTIVATIONS[name]
    check_op(_scaled(fn, kwargs, True), [(4, 3)], torch_fn=_scaled(torch_fn, kwargs, True))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_float32(name):
    fn, torch_fn, kwargs = ACTIVATIONS[name]
    out = check_op(_scaled(fn, kwargs), [(8, 16)], torch_fn=_scaled(torch_fn, kwargs),
                   dtype=numpy.float32)
    assert out.dtype == ember.float32


# ---- softmax / log_softmax ----------------------------------------------------------------

SOFTMAXES = [(ember.softmax, torch.softmax), (ember.log_softmax, torch.log_softmax)]


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("fns", SOFTMAXES, ids=["softmax", "log_softmax"])
def test_softmax_dims(fns, dim):
    check_op(fns[0], [(2, 3, 4)], torch_fn=fns[1], kwargs={"dim": dim})


@pytest.mark.parametrize(
    ("shape", "dim"), [((), 0), ((), -1), ((5,), 0), ((0, 3), 0), ((0, 3), 1), ((3, 0), 1)]
)
@pytest.mark.parametrize("fns", SOFTMAXES, ids=["softmax", "log_softmax"])
def test_softmax_small_and_empty(fns, shape, dim):
    check_op(fns[0], [shape], torch_fn=fns[1], kwargs={"dim": dim})


@pytest.mark.parametrize("fns", SOFTMAXES, ids=["softmax", "log_softmax"])
def test_softmax_noncontiguous_and_float32(fns):
    e_fn, t_fn = fns
    check_op(lambda x: e_fn(x.mT, 1), [(5, 3)], torch_fn=lambda x: t_fn(x.mT, 1))
    check_op(e_fn, [(16, 10)], torch_fn=t_fn, kwargs={"dim": -1}, dtype=numpy.float32)


@pytest.mark.parametrize("fns", SOFTMAXES, ids=["softmax", "log_softmax"])
def test_softmax_dtype_argument(fns):
    e_fn, t_fn = fns
    out = check_op(lambda x: e_fn(x, 1, dtype=ember.float64), [(3, 4)],
                   torch_fn=lambda x: t_fn(x, 1, dtype=torch.float64), dtype=numpy.float32)
    assert out.dtype == ember.float64
    ints = numpy.arange(-3, 9).reshape(3, 4)
    e_out = e_fn(ember.tensor(ints), 0, dtype=ember.float32)
    t_out = t_fn(torch.tensor(ints), 0, dtype=torch.float32)
    assert e_out.dtype == ember.float32
    numpy.testing.assert_allclose(e_out.numpy(), t_out.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("fns", SOFTMAXES, ids=["softmax", "log_softmax"])
def test_softmax_large_logits(fns, dtype):
    e_fn, t_fn = fns
    logits = numpy.array([[1000.0, 0.0, -1000.0, 999.0], [-5e4, -5e4 + 1, -5e4 + 2, 3e4],
                          [88.0, 89.0, 90.0, 91.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = check_op(e_fn, [None], torch_fn=t_fn, kwargs={"dim": 1}, dtype=dtype,
                       inputs=[logits], gradcheck=False)
    assert numpy.isfinite(out.detach().numpy()).all()


# ---- stability at large magnitude -----------------------------------------------------------

STABLE = ["sigmoid", "logsigmoid", "softplus", "softplus_beta", "silu", "gelu", "gelu_tanh",
          "mish", "elu", "selu", "celu", "softsign", "hardswish", "leaky_relu"]
BIG = numpy.array([-1000.0, -300.0, -100.0, -30.0, -17.0, 0.0, 17.0, 30.0, 100.0, 300.0,
                   1000.0])


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", STABLE)
def test_large_magnitude_matches_torch(name, dtype):
    fn, torch_fn, kwargs = ACTIVATIONS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings from NumPy either
        out = check_op(fn, [None], torch_fn=torch_fn, kwargs=kwargs, dtype=dtype,
                       inputs=[BIG.astype(dtype)], gradcheck=False)
    values = out.detach().numpy()
    assert numpy.isfinite(values).all()


def test_sigmoid_family_keeps_relative_accuracy_in_the_tails():
    x = numpy.array([-80.0, -40.0, -20.0, -10.0, 10.0, 40.0], dtype=numpy.float32)
    e_sig = ember.sigmoid(ember.tensor(x)).numpy()
    t_sig = torch.sigmoid(torch.tensor(x)).numpy()
    # tiny but nonzero where PyTorch is: a 0.5 + 0.5 * tanh(x / 2) shortcut would give 0
    numpy.testing.assert_allclose(e_sig, t_sig, rtol=1e-5, atol=0)
    e_ls = ember.logsigmoid(ember.tensor(x)).numpy()
    numpy.testing.assert_allclose(e_ls, F.logsigmoid(torch.tensor(x)).numpy(), rtol=1e-6,
                                  atol=0)


def test_softplus_linear_region_returns_input():
    x = numpy.array([19.0, 20.0, 20.5, 50.0, 1000.0])
    e_in = ember.tensor(x, requires_grad=True)
    y = ember.softplus(e_in)
    numpy.testing.assert_array_equal(y.detach().numpy()[2:], x[2:])
    (g,) = ember.autograd.grad(y.sum(), e_in)
    numpy.testing.assert_array_equal(g.numpy()[2:], 1.0)
    # Beyond PyTorch: no overflow to inf when the threshold is above exp's range.
    big = ember.softplus(ember.tensor(numpy.float32([1000.0])), threshold=1e4)
    assert big.item() == 1000.0


def test_gelu_exact_tails_and_normal_cdf():
    x = numpy.array([-40.0, -12.0, -8.0, -3.0, -0.5, 0.0, 1e-8, 0.7, 2.0, 6.0, 40.0])
    out = check_op(ember.gelu, [None], torch_fn=F.gelu, inputs=[x], gradcheck=False)
    y = out.detach().numpy()
    # x * Phi(x) keeps its sign and relative accuracy in the left tail (Phi(-8) ~ 6.2e-16).
    numpy.testing.assert_allclose(y[2], -8.0 * 6.22096057427178e-16, rtol=1e-9)
    assert y[0] <= 0 and numpy.isfinite(y).all()


# ---- PyTorch's gradient at the kinks ---------------------------------------------------------

KINKS = numpy.array([-6.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0, 7.0])


@pytest.mark.parametrize("name", ["relu", "relu6", "leaky_relu", "leaky_relu_steep", "elu",
                                  "elu_alpha", "celu_alpha", "hardtanh", "hardtanh_bounds",
                                  "hardsigmoid", "hardswish", "softsign", "selu"])
def test_gradient_at_kinks(name):
    fn, torch_fn, kwargs = ACTIVATIONS[name]
    check_op(fn, [None], torch_fn=torch_fn, kwargs=kwargs, inputs=[KINKS.copy()],
             gradcheck=False)


def test_softplus_gradient_at_threshold():
    x = numpy.array([1.9, 2.0, 2.1])
    check_op(ember.softplus, [None], torch_fn=F.softplus, kwargs={"beta": 2.0, "threshold": 4.0},
             inputs=[x], gradcheck=False)


# ---- the chunked forward of relu/hardtanh (mask taken in the forward) -------------------------


def _large_with_specials(dtype):
    """A contiguous input larger than activation._CHUNK (and not a multiple of it), holding
    the kinks, the hardtanh bounds, +-0, +-inf and NaN in several chunks."""
    n = 3 * (activation._CHUNK // 2 + 259)
    x = numpy.random.default_rng(3).standard_normal(n) * 4.0
    specials = [0.0, -0.0, 1.0, -1.0, 6.0, -2.0, 0.5, numpy.inf, -numpy.inf, numpy.nan]
    for k, v in enumerate(specials):
        x[k * (n // len(specials)) + numpy.arange(5)] = v
    return x.astype(dtype).reshape(3, -1)


CHUNKED = {
    "relu": (ember.relu, torch.relu, {}),
    "relu6": (ember.relu6, F.relu6, {}),
    "hardtanh": (ember.hardtanh, F.hardtanh, {}),
    "hardtanh_bounds": (ember.hardtanh, F.hardtanh, {"min_val": -2.0, "max_val": 0.5}),
    "leaky_relu": (ember.leaky_relu, F.leaky_relu, {}),
    "leaky_relu_steep": (ember.leaky_relu, F.leaky_relu, {"negative_slope": 1.7}),
}


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", CHUNKED)
def test_chunked_forward_matches_whole_array_path_and_torch(name, dtype):
    fn, torch_fn, kwargs = CHUNKED[name]
    x = _large_with_specials(dtype)
    g = numpy.random.default_rng(4).standard_normal(x.shape).astype(dtype)
    results = []
    # The contiguous input takes the chunked pass; its transpose (same values) the whole-array
    # one; both must give the same values and gradients, bit for bit.
    for data in (x, numpy.ascontiguousarray(x.T).T):
        assert data.flags.c_contiguous == (data is x)
        e_x = ember.tensor(data, requires_grad=True)
        y = fn(e_x, **kwargs)
        (gx,) = ember.autograd.grad(y, e_x, ember.tensor(g))
        results.append((y.detach().numpy(), gx.numpy()))
    (y0, g0), (y1, g1) = results
    numpy.testing.assert_array_equal(y0, y1)
    numpy.testing.assert_array_equal(g0, g1)
    assert y0.dtype == dtype and g0.dtype == dtype
    t_x = torch.tensor(x, requires_grad=True)
    t_y = torch_fn(t_x, **kwargs)
    (t_g,) = torch.autograd.grad(t_y, t_x, torch.tensor(g))
    numpy.testing.assert_array_equal(y0, t_y.detach().numpy())
    if name.startswith(("relu6", "hardtanh")):
        # At NaN ember's hardtanh slope is 0; PyTorch's is 1 on small arrays, 0 on large ones.
        finite = ~numpy.isnan(x)
        numpy.testing.assert_array_equal(g0[finite], t_g.numpy()[finite])
        assert numpy.all(g0[~finite] == 0)
    else:  # relu: slope 1 at NaN as PyTorch's (leaky_relu: its negative slope, as PyTorch's)
        numpy.testing.assert_array_equal(g0, t_g.numpy())


@pytest.mark.parametrize("name", CHUNKED)
def test_chunked_forward_double_backward(name):
    fn, torch_fn, kwargs = CHUNKED[name]
    x = _large_with_specials(numpy.float64)
    x[numpy.isnan(x)] = 0.25
    v = numpy.random.default_rng(5).standard_normal(x.shape)
    e_x = ember.tensor(x, requires_grad=True)
    e_v = ember.tensor(v, requires_grad=True)
    (g,) = ember.autograd.grad(fn(e_x, **kwargs), e_x, e_v, create_graph=True)
    (gv,) = ember.autograd.grad((g * g).sum(), e_v)
    t_x = torch.tensor(x, requires_grad=True)
    t_v = torch.tensor(v, requires_grad=True)
    (t_g,) = torch.autograd.grad(torch_fn(t_x, **kwargs), t_x, t_v, create_graph=True)
    (t_gv,) = torch.autograd.grad((t_g * t_g).sum(), t_v)
    numpy.testing.assert_array_equal(gv.detach().numpy(), t_gv.numpy())


@pytest.mark.parametrize("fn", [ember.relu, ember.relu6, ember.leaky_relu],
                         ids=["relu", "relu6", "leaky_relu"])
def test_relu_family_saves_only_the_mask_and_still_refuses_a_second_backward(fn):
    x = ember.tensor(_large_with_specials(numpy.float32), requires_grad=True)
    y = fn(x)
    (saved,) = y.grad_fn.saved_arrays
    assert saved.dtype == bool and saved.shape == x.shape
    y.sum().backward()
    with pytest.raises(errors.AutogradError, match="second time"):
        y.sum().backward()


# ---- double backward ---------------------------------------------------------------------

DOUBLE = ["sigmoid", "logsigmoid", "gelu", "gelu_tanh", "silu", "softplus", "softplus_beta",
          "elu", "elu_alpha", "celu_alpha", "selu", "mish", "softsign", "hardswish"]


@pytest.mark.parametrize("name", DOUBLE)
def test_double_backward(name):
    fn, _, kwargs = ACTIVATIONS[name]
    check_double_backward(_scaled(fn, kwargs), [(3, 4)])


@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("fn", [ember.softmax, ember.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_double_backward(fn, dim):
    check_double_backward(lambda x: fn(x, dim), [(3, 4)])


@pytest.mark.parametrize("name", ["sigmoid", "gelu", "gelu_tanh", "silu", "elu"])
def test_second_derivative_matches_torch(name):
    fn, torch_fn, kwargs = ACTIVATIONS[name]
    x = numpy.linspace(-4, 4, 9)
    e_x = ember.tensor(x, requires_grad=True)
    (e_g,) = ember.autograd.grad(fn(e_x, **kwargs).sum(), e_x, create_graph=True)
    (e_h,) = ember.autograd.grad(e_g.sum(), e_x)
    t_x = torch.tensor(x, requires_grad=True)
    (t_g,) = torch.autograd.grad(torch_fn(t_x, **kwargs).sum(), t_x, create_graph=True)
    (t_h,) = torch.autograd.grad(t_g.sum(), t_x)
    numpy.testing.assert_allclose(e_h.numpy(), t_h.numpy(), rtol=1e-7, atol=1e-9)


def test_piecewise_linear_backward_is_differentiable_in_the_incoming_gradient():
    # d(grad)/d(grad_output) is the mask itself; double backward through relu must flow.
    x = ember.tensor(numpy.array([-1.0, 0.0, 2.0]), requires_grad=True)
    v = ember.tensor(numpy.array([1.0, 2.0, 3.0]), requires_grad=True)
    (g,) = ember.autograd.grad(ember.relu(x), x, v, create_graph=True)
    (gv,) = ember.autograd.grad(g.sum(), v)
    numpy.testing.assert_array_equal(gv.numpy(), [0.0, 0.0, 1.0])


# ---- dtypes, methods, no-grad ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", "relu6", "hardtanh"])
def test_integer_input_stays_integer(name):
    fn, torch_fn, kwargs = ACTIVATIONS[name]
    x = numpy.arange(-8, 9, dtype=numpy.int64)
    out = fn(ember.tensor(x), **kwargs)
    assert out.dtype == ember.int64
    numpy.testing.assert_array_equal(out.numpy(), torch_fn(torch.tensor(x), **kwargs).numpy())


@pytest.mark.parametrize("name", ["sigmoid", "softsign"])
def test_integer_input_gives_float(name):
    fn, torch_fn, _ = ACTIVATIONS[name]
    x = numpy.arange(-4, 5)
    out = fn(ember.tensor(x))
    assert out.dtype == ember.float32
    numpy.testing.assert_allclose(out.numpy(), torch_fn(torch.tensor(x)).numpy(), rtol=1e-6)


def test_tensor_methods():
    check_op(lambda x: x.sigmoid() + x.relu(), [(3, 4)])
    check_op(lambda x: x.softmax(1) * x.log_softmax(dim=0), [(3, 4)])
    check_op(lambda x: x.softmax(-1, dtype=ember.float64), [(2, 5)],
             torch_fn=lambda x: x.softmax(-1, dtype=torch.float64), dtype=numpy.float32,
             gradcheck=False)


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "elu", "softplus", "hardswish"])
def test_forward_without_grad(name):
    fn, torch_fn, kwargs = ACTIVATIONS[name]
    x = numpy.linspace(-5, 5, 11)
    with ember.no_grad():
        out = fn(ember.tensor(x, requires_grad=True), **kwargs)
    assert not out.requires_grad
    numpy.testing.assert_allclose(out.numpy(), torch_fn(torch.tensor(x), **kwargs).numpy(),
                                  rtol=1e-12, atol=1e-15)


def test_normal_cdf_helper_accuracy():
    # the exact gelu relies on elementwise's erfc; pin the accuracy it gets from it
    x = numpy.linspace(-9, 9, 721)
    out = ember.gelu(ember.tensor(x)).numpy()
    ref = numpy.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    numpy.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-300)


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gelu", "silu", "elu", "softplus", "logsigmoid", "mish",
                                  "leaky_relu", "hardswish", "hardsigmoid", "celu", "selu"])
def test_integer_input_is_refused(name):
    fn = ACTIVATIONS[name][0]
    with pytest.raises(errors.DTypeError, match=rf"{name}: expected a floating-point input, "
                                                r"got ember.int64; .*x\.float\(\)"):
        fn(ember.tensor([1, 2, 3]))


def test_non_tensor_input_is_refused():
    with pytest.raises(errors.DTypeError, match=r"sigmoid: expected a Tensor, got list"):
        ember.sigmoid([1.0, 2.0])


@pytest.mark.parametrize("fn", [ember.softmax, ember.log_softmax])
def test_softmax_errors(fn):
    name = fn.__name__
    x = ember.tensor(numpy.zeros((2, 3)))
    with pytest.raises(IndexError, match=rf"{name}: dimension 2 is out of range for a tensor "
                                         r"with 2 dimensions \(expected a dim in \[-2, 1\]\)"):
        fn(x, 2)
    with pytest.raises(errors.DTypeError, match=rf"{name}: expected a floating-point input, got "
                                                r"ember.int64; pass dtype=ember.float32"):
        fn(ember.tensor([[1, 2]]), 1)
    with pytest.raises(TypeError, match=rf"{name}: dim must be an int, got None"):
        fn(x, None)


def test_argument_errors():
    x = ember.tensor(numpy.zeros(3))
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        ember.gelu(x, approximate="erf")
    with pytest.raises(ValueError, match=r"hardtanh: min_val cannot be greater than max_val, "
                                         r"got min_val=2.0, max_val=1.0"):
        ember.hardtanh(x, 2.0, 1.0)
    with pytest.raises(ValueError, match=r"celu: alpha cannot be 0"):
        ember.celu(x, alpha=0.0)


def test_every_activation_is_exported():
    names = ["sigmoid", "logsigmoid", "relu", "relu6", "leaky_relu", "elu", "selu", "celu",
             "gelu", "silu", "mish", "softplus", "softsign", "hardtanh", "hardsigmoid",
             "hardswish", "softmax", "log_softmax"]
    for name in names:
        assert getattr(ember, name) is getattr(activation, name)
    assert not hasattr(ember, "_Scale") and not hasattr(ember, "_DerivMul")


@pytest.mark.parametrize("n", [4, activation._CHUNK + 7], ids=["whole", "chunked"])
def test_relu_passes_the_gradient_at_nan_as_torch(n):
    x = numpy.linspace(-2.0, 2.0, n).astype(numpy.float32)
    x[:3] = [numpy.nan, 0.0, -0.0]
    e_x = ember.tensor(x, requires_grad=True)
    ember.relu(e_x).sum().backward()
    t_x = torch.tensor(x, requires_grad=True)
    torch.relu(t_x).sum().backward()
    numpy.testing.assert_array_equal(e_x.grad.numpy(), t_x.grad.numpy())
    assert e_x.grad.numpy()[0] == 1 and e_x.grad.numpy()[1] == 0
