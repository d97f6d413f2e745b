"""The float32 (and float16) erf/erfc kernel of ember/ops/_erf.py: accuracy in float32 ulps
against math.erf/erfc over dense grids, special values, block and thread splitting, that float64
keeps its own precise path, and erf / exact GELU against PyTorch, forward and backward."""

import math

import numpy
import pytest
import torch
import torch.nn.functional as F

import ember
from ember.backend import threads
from ember.ops import _erf

F32 = numpy.float32


def _grid():
    """float32 points: dense over erfc's float32 range, tiny and subnormal |x|, the neighbours of
    the piece boundary (1/4), of K (3), of the fit's end (10.5) and of erf's saturation."""
    parts = [
        numpy.linspace(0.0, 10.5, 300001),
        numpy.geomspace(1e-45, 1.0, 4000),
        numpy.linspace(0.2, 0.3, 20001),
    ]
    edges = [0.25, 0.5, 1.0, 2.5, 3.0, 3.92, 5.0, 9.1, 10.05, 10.5]
    grid = numpy.concatenate(parts).astype(F32)
    near = []
    for e in edges:
        v = F32(e)
        lo = hi = v
        for _ in range(4):
            lo, hi = numpy.nextafter(lo, F32(0)), numpy.nextafter(hi, F32(20))
            near += [lo, hi]
        near.append(v)
    grid = numpy.concatenate([grid, numpy.array(near, F32)])
    return numpy.concatenate([grid, -grid])


def _ulps(got, ref):
    """|got - ref| in units of the float32 spacing at ref (ref in float64)."""
    spacing = numpy.spacing(numpy.abs(ref).astype(F32)).astype(numpy.float64)
    return numpy.abs(got.astype(numpy.float64) - ref) / spacing


@pytest.fixture(scope="module")
def grid_and_refs():
    x = _grid()
    erf_ref = numpy.array([math.erf(float(v)) for v in x])
    erfc_ref = numpy.array([math.erfc(float(v)) for v in x])
    return x, erf_ref, erfc_ref


def test_float32_erf_within_one_ulp_everywhere(grid_and_refs):
    x, ref, _ = grid_and_refs
    got = _erf.erf_array(numpy, x, complement=False)
    assert got.dtype == numpy.float32
    err = _ulps(got, ref)
    assert err.max() <= 1.0, (err.max(), x[err.argmax()])  # measured 0.69
    # tiny x keep their relative accuracy (erf(x) = 2x/sqrt(pi) there), subnormals aside
    tiny = (numpy.abs(x) > 0) & (numpy.abs(x) < 1e-20) & (numpy.abs(ref) > 1.2e-38)
    assert tiny.sum() > 100
    assert _ulps(got[tiny], ref[tiny]).max() <= 0.75  # measured 0.65


def test_float32_erfc_relative_accuracy_down_to_underflow(grid_and_refs):
    x, _, ref = grid_and_refs
    got = _erf.erf_array(numpy, x, complement=True)
    assert got.dtype == numpy.float32
    normal = ref >= 1.2e-38
    err = _ulps(got[normal], ref[normal])
    assert err.max() <= 1.0, (err.max(), x[normal][err.argmax()])  # measured 0.77
    assert ref[normal].min() < 1e-37  # the grid reaches erfc's float32 tail (x ~ 9.1)
    # in the subnormal tail, within a few subnormal steps (2**-149 each)
    tail = ~normal
    assert numpy.abs(got[tail].astype(numpy.float64) - ref[tail]).max() <= 4 * 2.0**-149


def test_float32_special_values():
    x = numpy.array([0.0, -0.0, numpy.inf, -numpy.inf, numpy.nan, -numpy.nan, 3.4e38, -3.4e38,
                     1e-45, -1e-45, 11.0, -11.0, 100.0, -100.0], F32)
    e = _erf.erf_array(numpy, x, False)
    c = _erf.erf_array(numpy, x, True)
    assert e[0] == 0 and not numpy.signbit(e[0])
    assert e[1] == 0 and numpy.signbit(e[1])  # erf(-0.0) = -0.0, as math.erf and torch give
    assert e[2:4].tolist() == [1.0, -1.0] and c[2:4].tolist() == [0.0, 2.0]
    assert not numpy.signbit(c[2])  # erfc(inf) = +0.0
    assert numpy.isnan(e[4:6]).all() and numpy.isnan(c[4:6]).all()
    assert e[6:8].tolist() == [1.0, -1.0] and c[6:8].tolist() == [0.0, 2.0]
    assert e[8] == F32(2 / math.sqrt(math.pi) * 1e-45) and e[9] == -e[8]
    assert c[0] == c[1] == c[8] == c[9] == 1.0
    assert e[10:].tolist() == [1.0, -1.0, 1.0, -1.0] and c[10:].tolist() == [0.0, 2.0, 0.0, 2.0]
    ref = torch.tensor(x)
    numpy.testing.assert_array_equal(e, torch.erf(ref).numpy())
    numpy.testing.assert_array_equal(c, torch.erfc(ref).numpy())


def test_float32_no_floating_point_errors_even_when_raised():
    x = numpy.array([-12, -9.5, -1, 0, 1e-40, 9.5, 12, numpy.inf], F32)
    with numpy.errstate(all="raise"):
        _erf.erf_array(numpy, x, False)
        _erf.erf_array(numpy, x, True)


@pytest.mark.parametrize("complement", [False, True])
def test_float32_shapes_blocks_and_threads(complement):
    rng = numpy.random.default_rng(0)
    base = (rng.standard_normal(5 * _erf._BLOCK + 123) * 3).astype(F32)
    ref = _erf.erf_array(numpy, base, complement)
    # element by element is the same computation: blocks do not leak into each other
    pieces = numpy.concatenate([_erf.erf_array(numpy, base[i:i + 1000], complement)
                                for i in range(0, base.size, 1000)])
    numpy.testing.assert_array_equal(pieces, ref)
    # non-contiguous, 0-d and empty inputs keep their shape
    m = base[: 40 * 30].reshape(40, 30)
    numpy.testing.assert_array_equal(_erf.erf_array(numpy, m.T, complement),
                                     ref[:1200].reshape(40, 30).T)
    numpy.testing.assert_array_equal(_erf.erf_array(numpy, m[:, ::3], complement),
                                     ref[:1200].reshape(40, 30)[:, ::3])
    assert _erf.erf_array(numpy, numpy.array(base[7]), complement).shape == ()
    assert _erf.erf_array(numpy, base[7], complement) == ref[7]
    assert _erf.erf_array(numpy, numpy.zeros((0, 3), F32), complement).shape == (0, 3)
    # large arrays split over ember's threads give the same values
    big = numpy.tile(base, 60)
    before = threads.get_num_threads()
    try:
        threads.set_num_threads(2)
        two = _erf.erf_array(numpy, big, complement)
        threads.set_num_threads(1)
        one = _erf.erf_array(numpy, big, complement)
    finally:
        threads.set_num_threads(before)
    numpy.testing.assert_array_equal(two, one)
    numpy.testing.assert_array_equal(one, numpy.tile(ref, 60))


@pytest.mark.parametrize("complement", [False, True])
def test_float16_is_the_float32_result_rounded(complement):
    x = numpy.concatenate([numpy.linspace(-6, 6, 4001), [0.0, -0.0, numpy.inf, -numpy.inf]])
    x16 = x.astype(numpy.float16)
    got = _erf.erf_array(numpy, x16, complement)
    assert got.dtype == numpy.float16
    numpy.testing.assert_array_equal(
        got, _erf.erf_array(numpy, x16.astype(F32), complement).astype(numpy.float16))
    fn = torch.erfc if complement else torch.erf
    ref = fn(torch.tensor(x16.astype(F32))).numpy()
    numpy.testing.assert_allclose(got.astype(F32), ref, rtol=1e-3, atol=1e-7)


def test_float64_keeps_its_precise_path():
    # the float32 kernel is ~1e-8 relative; float64 must still be ~1e-16
    x = numpy.concatenate([numpy.linspace(-6, 6, 20001), numpy.geomspace(1e-300, 1, 200)])
    erf_ref = numpy.array([math.erf(v) for v in x])
    erfc_ref = numpy.array([math.erfc(v) for v in x])
    e = _erf.erf_array(numpy, x, False)
    c = _erf.erf_array(numpy, x, True)
    assert e.dtype == c.dtype == numpy.float64
    numpy.testing.assert_allclose(e, erf_ref, rtol=5e-15, atol=0)
    numpy.testing.assert_allclose(c, erfc_ref, rtol=1e-13, atol=0)


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_erf_float32_against_torch_forward_and_backward(name):
    rng = numpy.random.default_rng(1)
    x = (rng.standard_normal((8, 257)) * 2.5).astype(F32)
    w = rng.standard_normal(x.shape).astype(F32)
    e_x = ember.tensor(x, requires_grad=True)
    e_y = getattr(ember, name)(e_x)
    (e_y * ember.tensor(w)).sum().backward()
    t_x = torch.tensor(x, requires_grad=True)
    t_y = getattr(torch, name)(t_x)
    (t_y * torch.tensor(w)).sum().backward()
    assert e_y.dtype == ember.float32 and e_x.grad.dtype == ember.float32
    numpy.testing.assert_allclose(e_y.detach().numpy(), t_y.detach().numpy(), rtol=2e-7, atol=1e-37)
    numpy.testing.assert_allclose(e_x.grad.numpy(), t_x.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_exact_gelu_float32_against_torch_forward_and_backward():
    rng = numpy.random.default_rng(2)
    x = (rng.standard_normal((16, 64, 64)) * 3).astype(F32)
    x.reshape(-1)[:8] = [0.0, -0.0, -9.0, -12.0, -15.0, 9.0, 1e-30, -1e-30]
    w = rng.standard_normal(x.shape).astype(F32)
    e_x = ember.tensor(x, requires_grad=True)
    e_y = ember.gelu(e_x)
    (e_y * ember.tensor(w)).sum().backward()
    t_x = torch.tensor(x, requires_grad=True)
    t_y = F.gelu(t_x)
    (t_y * torch.tensor(w)).sum().backward()
    assert e_y.dtype == ember.float32
    got, want = e_y.detach().numpy(), t_y.detach().numpy()
    # torch's float32 gelu is x/2 * (1 + erf(x / sqrt 2)), which cancels in the left tail (abs
    # error up to ~3e-7 |x|); ember's x * erfc(-x / sqrt 2) / 2 does not
    assert (numpy.abs(got - want) <= 1e-6 * numpy.abs(want) + 5e-7 * numpy.abs(x)).all()
    numpy.testing.assert_allclose(e_x.grad.numpy(), t_x.grad.numpy(), rtol=1e-5, atol=1e-6)
    flat = x.reshape(-1)[:2000].tolist()
    ref = numpy.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in flat])
    # relative to the true value everywhere, the left tail included (x * Phi(x) ~ -1e-32 at
    # x = -12); the error there comes from rounding the argument -x / sqrt 2 to float32
    numpy.testing.assert_allclose(got.reshape(-1)[:2000], ref, rtol=2e-5, atol=1.5e-45)
