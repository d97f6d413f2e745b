"""The 2x2 max pool in C (ember/ops/_pool_native.py, ember/backend/native/maxpool.c): values,
winner codes, the gradient's scatter and its adjoint bit for bit against pool.py's NumPy
functions, over shapes, forced part counts, both float dtypes and special values (NaN, +-inf,
ties, -0.0); F.max_pool2d, its indices and gradients against PyTorch; which path ran; and the
NumPy path where the native one does not apply or the library is missing."""

import itertools
import os
import shutil

import numpy
import pytest
import torch
import torch.nn.functional as F

import ember
from ember import errors, nn
from ember.backend import native, threads
from ember.ops import _pool_native
from ember.ops import pool as pool_ops
from tests.oracle import check_op
from tests.ops.test_pool import _distinct

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None,
                                reason="no C compiler: ember uses its NumPy pool")

SPECIAL = [numpy.nan, -numpy.nan, numpy.inf, -numpy.inf, 0.0, -0.0, 1.0, -2.5]

# widths W/2 of 1-3, 4-7 and 8 or more (float32's plain loops, two narrow spans, wide spans
# with the last one overlapping; float64's switch at 2 and 4), one plane and up to 28, and
# output rows (N * C * H/2) from 1 to 224: fewer than the parts, or not a multiple of them
SHAPES = [(1, 1, 2, 2), (3, 5, 6, 8), (2, 3, 4, 14), (1, 7, 2, 16), (7, 1, 8, 30),
          (2, 3, 6, 34), (1, 2, 4, 130), (4, 4, 28, 28), (3, 2, 14, 14), (1, 1, 2, 6),
          (2, 1, 4, 10)]


def _geometry(shape):
    return pool_ops._geometry("max_pool2d", 2, shape[2:], 2, None, 0, 1, False)


def _inputs(shape, dtype, kind, seed=0):
    rng = numpy.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    if kind == "ties":  # zeros after a ReLU, and equal maxima in both directions
        return numpy.maximum(rng.integers(-1, 2, size=shape), 0).astype(dtype)
    return rng.choice(numpy.array(SPECIAL), size=shape).astype(dtype)


def _every_window(dtype, half):
    """Every 2x2 window of SPECIAL's values (8^4 of them, the first ones again to fill the
    last row), laid out in rows of ``half`` windows."""
    windows = numpy.array(list(itertools.product(SPECIAL, repeat=4)), dtype=dtype)
    filled = -(-len(windows) // half) * half
    windows = numpy.concatenate([windows, windows[:filled - len(windows)]])
    w = windows.reshape(-1, half, 2, 2)  # (row, j, h, w)
    return numpy.ascontiguousarray(w.transpose(0, 2, 1, 3)).reshape(-1, 1, 2, 2 * half)


def _same(native_out, numpy_out, what):
    """Equal bits, dtype and shape."""
    assert native_out.dtype == numpy_out.dtype and native_out.shape == numpy_out.shape, what
    if native_out.dtype.kind == "f":
        bits = f"u{native_out.dtype.itemsize}"
        native_out, numpy_out = native_out.view(bits), numpy_out.view(bits)
    numpy.testing.assert_array_equal(native_out, numpy_out, err_msg=what)


def _check_bits(lib, x, gy_kind="normal", seed=1):
    g = _geometry(x.shape)
    y, codes = _pool_native.max_pool(lib, x)
    y0, codes0 = pool_ops._tile_max(numpy, x, g)
    _same(y, y0, f"values of {x.shape}")
    assert len(codes) == len(codes0) == 2
    for i, (c, c0) in enumerate(zip(codes, codes0)):
        _same(c, c0, f"codes[{i}] of {x.shape}")
    gy = _inputs(y.shape, x.dtype, gy_kind, seed)
    with numpy.errstate(invalid="ignore"):  # inf * 0 in NumPy's scatter
        gx0 = pool_ops._tile_scatter(numpy, gy, codes0, g, x.shape)
    _same(_pool_native.scatter(lib, gy, codes, x.shape), gx0, f"scatter of {x.shape}")
    gz = _inputs(x.shape, x.dtype, "special", seed + 1)
    _same(_pool_native.gather(lib, gz, codes), pool_ops._tile_gather(numpy, gz, codes0, g),
          f"gather of {x.shape}")


@pytest.fixture
def lib():
    found = _pool_native._library()
    assert found is not None, native.reason()
    return found


@pytest.fixture
def calls(monkeypatch):
    """Count the native calls, by direction."""
    seen = dict.fromkeys(("max_pool", "scatter", "gather"), 0)

    def counted(name, fn):
        def run(*args):
            seen[name] += 1
            return fn(*args)
        return run

    for name in seen:
        monkeypatch.setattr(_pool_native, name, counted(name, getattr(_pool_native, name)))
    return seen


def _force_parts(monkeypatch, parts):
    monkeypatch.setattr(_pool_native, "_parts", lambda rows, nbytes: min(parts, rows))


# ---- bit for bit against the NumPy functions ---------------------------------------------------


@pytest.mark.parametrize("parts", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("kind", ["normal", "ties", "special"])
def test_matches_numpy_bit_for_bit(monkeypatch, lib, parts, dtype, kind):
    _force_parts(monkeypatch, parts)
    for seed, shape in enumerate(SHAPES):
        _check_bits(lib, _inputs(shape, dtype, kind, seed), gy_kind=kind, seed=seed)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("half", [1, 3, 4, 6, 7, 8, 14, 15, 64])
def test_every_window_of_special_values(monkeypatch, lib, dtype, half):
    """NaN (either sign) and +-inf in every position, ties, -0.0 against 0.0, in every order;
    gradients of NaN, inf, -0.0 and negative values."""
    _force_parts(monkeypatch, 3)
    _check_bits(lib, _every_window(dtype, half), gy_kind="special")


def test_signed_zeros_and_nans_by_hand(lib):
    nan = numpy.nan
    x = numpy.array([[[[-0.0, 0.0, 0.0, -0.0, 1.0, nan, numpy.inf, numpy.inf, -nan, 1.0],
                       [0.0, -0.0, -0.0, 0.0, nan, 2.0, numpy.inf, -numpy.inf, nan, 0.0]]]],
                    dtype=numpy.float32)
    y, (code_w, code_h) = _pool_native.max_pool(lib, x)
    # numpy.maximum on x86: of equal values the second, a NaN wins (the first of two NaNs);
    # a code is set only where the later value is greater: never here (ties, NaN, inf - inf)
    expected = numpy.array([-0.0, 0.0, nan, numpy.inf, -nan], dtype=numpy.float32)
    _same(y.reshape(-1), expected, "values")
    assert not code_w.any() and not code_h.any()
    _check_bits(lib, x)


def test_plain_and_vector_loops_agree(monkeypatch, lib):
    """The same windows in rows of 3 (plain loops), 6 (narrow spans) and 12 (wide spans)."""
    _force_parts(monkeypatch, 1)
    x = _inputs((48, 1, 2, 2), numpy.float32, "special", 5).reshape(-1)
    results = []
    for half in (3, 6, 12):
        windows = x.reshape(-1, 1, 2, 2)  # (window, 1, h, w)
        rows = windows.reshape(-1, half, 2, 2).transpose(0, 2, 1, 3).reshape(-1, 1, 2, 2 * half)
        y, (code_w, code_h) = _pool_native.max_pool(lib, numpy.ascontiguousarray(rows))
        results.append((y.reshape(-1).view(numpy.uint32), code_h.reshape(-1),
                        code_w.reshape(-1, 2, half).transpose(0, 2, 1).reshape(-1)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            numpy.testing.assert_array_equal(a, b)


def test_split_over_two_threads(monkeypatch, lib):
    monkeypatch.setattr(threads, "_COUNT", [2])
    assert _pool_native._parts(64 * 16 * 14, 64 * 16 * 28 * 28 * 4) == 2
    _check_bits(lib, _inputs((64, 16, 28, 28), numpy.float32, "normal"))
    _check_bits(lib, _inputs((64, 32, 14, 14), numpy.float64, "ties"))


def test_part_count(monkeypatch):
    monkeypatch.setattr(threads, "_COUNT", [2])
    assert _pool_native._parts(1, 1 << 30) == 1  # never more parts than rows
    assert _pool_native._parts(100, 1000) == 1  # tiny: one part
    assert _pool_native._parts(1000, 4 * _pool_native._PART_BYTES) == 2  # one per thread
    monkeypatch.setattr(threads, "_COUNT", [1])
    assert _pool_native._parts(1000, 1 << 30) == 1


# ---- through max_pool2d: PyTorch, which path ran -----------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 6, 8), (3, 5, 14, 14), (2, 4, 2, 18), (3, 6, 4)])
@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool2d_matches_torch_with_gradcheck(calls, shape, return_indices):
    check_op(ember.max_pool2d, [], torch_fn=F.max_pool2d, inputs=[_distinct(shape)],
             kwargs={"kernel_size": 2, "return_indices": return_indices})
    assert calls["max_pool"] >= 2 and calls["scatter"] >= 2


@pytest.mark.parametrize("shape", [(64, 16, 28, 28), (64, 32, 14, 14)])
def test_lenet_shapes_float32_match_torch(calls, shape):
    x = _inputs(shape, numpy.float32, "ties", 3)  # ties everywhere: the first maximum wins
    e = ember.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    ey, ei = ember.max_pool2d(e, 2, return_indices=True)
    ty, ti = F.max_pool2d(t, 2, return_indices=True)
    gy = _inputs(tuple(ty.shape), numpy.float32, "normal", 4)
    ey.backward(ember.tensor(gy))
    ty.backward(torch.tensor(gy))
    numpy.testing.assert_array_equal(ey.detach().numpy(), ty.detach().numpy())
    numpy.testing.assert_array_equal(ei.numpy(), ti.numpy())
    numpy.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())
    assert calls["max_pool"] == 1 and calls["scatter"] == 1


def test_layer_and_adaptive_pool_take_the_native_path(calls):
    x = _distinct((2, 3, 8, 8)).astype(numpy.float32)
    for e_fn, t_fn in ((nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
                       (lambda v: ember.adaptive_max_pool2d(v, 4),
                        lambda v: F.adaptive_max_pool2d(v, 4))):
        numpy.testing.assert_array_equal(e_fn(ember.tensor(x)).numpy(),
                                         t_fn(torch.tensor(x)).numpy())
    assert calls["max_pool"] == 2


def test_double_backward_runs_the_native_gather(calls):
    x = ember.tensor(_distinct((3, 2, 6, 10)), requires_grad=True)
    assert ember.autograd.gradgradcheck(lambda v: ember.max_pool2d(v, 2) ** 2, [x])
    assert calls["gather"] > 0


def test_noncontiguous_input_and_gradient(calls):
    x = _distinct((3, 2, 8, 6)).astype(numpy.float32)
    e = ember.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    ey = ember.max_pool2d(e.transpose(2, 3), 2)
    ty = F.max_pool2d(t.transpose(2, 3), 2)
    ey.sum().backward()  # a broadcast gradient: made contiguous for the scatter
    ty.sum().backward()
    numpy.testing.assert_array_equal(ey.detach().numpy(), ty.detach().numpy())
    numpy.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())
    assert calls["max_pool"] == 1 and calls["scatter"] == 1


@pytest.mark.parametrize("fn", [
    lambda x: ember.max_pool2d(x, 3),
    lambda x: ember.max_pool2d(x, 2, stride=1),
    lambda x: ember.max_pool2d(x, 2, padding=1),
    lambda x: ember.max_pool2d(x, 2, dilation=2),
    lambda x: ember.max_pool2d(x, (2, 3)),
    lambda x: ember.max_pool2d(x[..., :5, :], 2),  # odd height: no tiling
    lambda x: ember.max_pool1d(x.reshape(2, 3, 36), 2),
    lambda x: ember.max_pool3d(x.reshape(2, 3, 2, 6, 3), (2, 2, 1)),
], ids=["k3", "stride1", "padding", "dilation", "k2x3", "odd", "1d", "3d"])
def test_other_pools_keep_numpy(calls, fn):
    x = ember.tensor(_distinct((2, 3, 6, 6)), requires_grad=True)
    fn(x).sum().backward()
    assert calls == {"max_pool": 0, "scatter": 0, "gather": 0}


def test_float16_and_integer_inputs(calls):
    x = _inputs((2, 3, 6, 8), numpy.float32, "normal").astype(numpy.float16)
    y = ember.max_pool2d(ember.tensor(x), 2).numpy()
    assert y.dtype == numpy.float16
    expected = ember.max_pool2d(ember.tensor(x.astype(numpy.float32)), 2).numpy()
    numpy.testing.assert_array_equal(y, expected.astype(numpy.float16))
    assert calls["max_pool"] == 1  # the float32 one only
    with pytest.raises(errors.DTypeError, match="floating-point"):
        ember.max_pool2d(ember.tensor(numpy.arange(16).reshape(1, 1, 4, 4)), 2)


def test_kernels_refuse_what_they_cannot_run(lib):
    g = _geometry((2, 3, 4, 6))
    x = numpy.zeros((2, 3, 4, 6), dtype=numpy.float32)
    code_w = numpy.zeros((2, 3, 4, 3), dtype=bool)
    code_h = numpy.zeros((2, 3, 2, 3), dtype=bool)
    assert _pool_native.kernels(numpy, g, (x,)) is lib
    assert _pool_native.kernels(numpy, g, (x,), (code_w, code_h)) is lib
    assert _pool_native.kernels(numpy, g, (x.astype(numpy.float16),)) is None
    assert _pool_native.kernels(numpy, g, (x.astype(numpy.int32),)) is None
    assert _pool_native.kernels(numpy, g, (x.astype(">f4"),)) is None  # byte-swapped
    assert _pool_native.kernels(numpy, g, (x[:0],)) is None
    assert _pool_native.kernels(numpy, g, (x,), (code_w[..., ::-1], code_h)) is None
    assert _pool_native.kernels(numpy, g, (x,), (code_w.view(numpy.uint8), code_h)) is None
    assert _pool_native.kernels(numpy, _geometry((2, 3, 4, 5)), (x,)) is None
    assert _pool_native.kernels(None, g, (x,)) is None  # another array library


# ---- without the library -----------------------------------------------------------------------


def _pool_and_grads(x, gy, gz):
    """y, indices, dL/dx, and the gradient's own vjp for gz (the gather) of max_pool2d(x, 2)."""
    e = ember.tensor(x, requires_grad=True)
    g = ember.tensor(gy, requires_grad=True)
    y, idx = ember.max_pool2d(e, 2, return_indices=True)
    (gx,) = ember.autograd.grad(y, [e], [g], create_graph=True)
    (gg,) = ember.autograd.grad(gx, [g], [ember.tensor(gz)])
    return [y.detach().numpy(), idx.numpy(), gx.detach().numpy(), gg.numpy()]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_without_the_library_results_are_the_same(monkeypatch, calls, dtype):
    x = _inputs((5, 3, 6, 10), dtype, "ties", 2)
    gy = _inputs((5, 3, 3, 5), dtype, "normal", 3)
    gz = _inputs(x.shape, dtype, "special", 4)
    with_lib = _pool_and_grads(x, gy, gz)
    assert calls == {"max_pool": 1, "scatter": 1, "gather": 1}
    monkeypatch.setattr(_pool_native, "_library", lambda: None)  # as with EMBER_NATIVE=0
    without = _pool_and_grads(x, gy, gz)
    assert calls == {"max_pool": 1, "scatter": 1, "gather": 1}
    for a, b in zip(with_lib, without):
        _same(a, b, "with and without the library")


def test_either_backward_after_either_forward(monkeypatch, calls):
    x = _inputs((4, 3, 6, 10), numpy.float32, "ties", 6)
    gy = _inputs((4, 3, 3, 5), numpy.float32, "normal", 7)
    real = _pool_native._library
    grads = []
    for native_forward, native_backward in itertools.product((True, False), repeat=2):
        monkeypatch.setattr(_pool_native, "_library", real if native_forward else lambda: None)
        e = ember.tensor(x, requires_grad=True)
        y = ember.max_pool2d(e, 2)
        monkeypatch.setattr(_pool_native, "_library", real if native_backward else lambda: None)
        y.backward(ember.tensor(gy))
        grads.append(e.grad.numpy())
    assert calls == {"max_pool": 2, "scatter": 2, "gather": 0}
    for other in grads[1:]:
        _same(other, grads[0], "mixed paths")
