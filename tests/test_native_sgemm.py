"""ember's own float32 matrix product (ember/backend/native/sgemm.c): every layout, the edges
of its register tiles and cache blocks, alpha and beta, strided operands, and the layers that
run on it, against float64 NumPy and PyTorch."""

import os
import shutil
import subprocess

import numpy
import pytest
import torch

import ember
from ember.backend import gemm, native, threads
from tests.native_check import run_with_capped_memory

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None,
                                reason="no C compiler: ember uses NumPy's and OpenBLAS's own")


@pytest.fixture(scope="module")
def lib():
    found = native.library()
    assert found is not None, native.reason()
    if not found.ember_sgemm_built():
        pytest.skip("this CPU has no AVX-512: float32 products go to BLAS")
    return found


def _operand(rng, rows, cols, transposed, pad):
    """op(X) of shape (rows, cols) stored as BLAS takes it: row-major with `pad` extra
    columns, or (transposed) as the transpose of such a matrix. Returns (op(X), stored, ld)."""
    shape = (cols, rows) if transposed else (rows, cols)
    big = rng.standard_normal((shape[0], shape[1] + pad)).astype(numpy.float32)
    stored = big[:, :shape[1]]
    return (stored.T if transposed else stored), big, shape[1] + pad


def _sgemm(lib, ta, tb, a_op, a_mem, lda, b_op, b_mem, ldb, c, ldc, alpha=1.0, beta=0.0):
    m, k = a_op.shape
    n = b_op.shape[1]
    return lib.ember_sgemm(ta, tb, m, n, k, alpha, a_mem.ctypes.data, lda, b_mem.ctypes.data,
                           ldb, beta, c.ctypes.data, ldc, None, 0)


# m: 1, under one tile (12 rows), one tile, a tile and one, several + a remainder, over one
# row block (768); n: under, at and over a 16-lane half and a 32-column panel, and n <= m / 2
# (op(B) packed whole, A's rows read in place), over one column block there (1024); k: under
# and over 16 (the transposes' block), one K chunk (256) and two unequal ones
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (5, 17, 15), (12, 32, 16), (13, 31, 17),
                                     (100, 33, 257), (37, 100, 600), (800, 48, 40),
                                     (24, 16, 256), (7, 200, 3), (2200, 1090, 20),
                                     (300, 150, 520), (317, 40, 300), (41, 20, 33)])
@pytest.mark.parametrize("ta, tb", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_products_match_float64(lib, m, n, k, ta, tb):
    rng = numpy.random.default_rng(m * 1000 + n + k)
    a_op, a_mem, lda = _operand(rng, m, k, ta, pad=3)
    b_op, b_mem, ldb = _operand(rng, k, n, tb, pad=5)
    c = numpy.full((m, n + 2), numpy.nan, numpy.float32)  # beta 0 never reads C
    assert _sgemm(lib, ta, tb, a_op, a_mem, lda, b_op, b_mem, ldb, c, n + 2) == 0
    want = a_op.astype(numpy.float64) @ b_op.astype(numpy.float64)
    numpy.testing.assert_allclose(c[:, :n], want, rtol=1e-5, atol=1e-5 * numpy.sqrt(k))
    assert numpy.isnan(c[:, n:]).all()  # the columns past n stay untouched


@pytest.mark.parametrize("alpha, beta", [(1.0, 1.0), (0.5, -2.0), (-1.5, 0.0), (2.0, 0.25)])
@pytest.mark.parametrize("k", [40, 600])  # one K chunk, three
def test_alpha_and_beta(lib, alpha, beta, k):
    rng = numpy.random.default_rng(7)
    m, n = 30, 70
    a_op, a_mem, lda = _operand(rng, m, k, 0, pad=0)
    b_op, b_mem, ldb = _operand(rng, k, n, 1, pad=0)
    c0 = rng.standard_normal((m, n)).astype(numpy.float32)
    c = c0.copy()
    assert _sgemm(lib, 0, 1, a_op, a_mem, lda, b_op, b_mem, ldb, c, n, alpha, beta) == 0
    want = alpha * (a_op.astype(numpy.float64) @ b_op.astype(numpy.float64)) + beta * c0
    numpy.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-4)


def test_empty_products_are_left_to_blas(lib):
    x = numpy.ones((4, 4), numpy.float32)
    for m, n, k in ((0, 4, 4), (4, 0, 4), (4, 4, 0)):
        assert lib.ember_sgemm(0, 0, m, n, k, 1.0, x.ctypes.data, 4, x.ctypes.data, 4, 0.0,
                               x.ctypes.data, 4, None, 0) == 2


@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("shape", [(128, 784, 512), (512, 128, 784), (64, 512, 10)])
def test_split_products_on_the_pool(parts, shape):
    """gemm.matmul with 1-3 threads (each pool thread packs into buffers of its own) on the
    MLP's shapes, in the layouts its forward and backward use."""
    m, k, n = shape
    rng = numpy.random.default_rng(11)
    before = threads.get_num_threads()
    ember.set_num_threads(parts)
    try:
        a = rng.standard_normal((m, k)).astype(numpy.float32)
        w = rng.standard_normal((n, k)).astype(numpy.float32)
        at = numpy.ascontiguousarray(a.T).T
        for left, right in ((a, w.T), (a, numpy.ascontiguousarray(w.T)), (at, w.T)):
            got = gemm.matmul(left, right)
            want = left.astype(numpy.float64) @ right.astype(numpy.float64)
            numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    finally:
        ember.set_num_threads(before)


@pytest.mark.parametrize("threads_", [1, 2])
def test_linear_layer_against_torch(threads_):
    """A 784 -> 512 linear layer at batch 128 (the MLP benchmark's first layer, whose
    products all run on the kernel), forward and backward, against PyTorch."""
    import ember.nn.functional as F

    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((128, 784)).astype(numpy.float32)
    w = (rng.standard_normal((512, 784)) * 0.05).astype(numpy.float32)
    b = rng.standard_normal(512).astype(numpy.float32)
    g = rng.standard_normal((128, 512)).astype(numpy.float32)
    before = threads.get_num_threads()
    ember.set_num_threads(threads_)
    try:
        ex, ew, eb = (ember.tensor(v, requires_grad=True) for v in (x, w, b))
        ey = F.linear(ex, ew, eb)
        ey.backward(ember.tensor(g))
    finally:
        ember.set_num_threads(before)
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    ty = torch.nn.functional.linear(tx, tw, tb)
    ty.backward(torch.tensor(g))
    for got, want in ((ey, ty), (ex.grad, tx.grad), (ew.grad, tw.grad), (eb.grad, tb.grad)):
        numpy.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-4,
                                      atol=1e-3)


def test_no_memory_for_buffers_falls_back_to_blas(lib):
    """A thread whose packing buffers cannot be allocated gets 1 back and gemm.c runs BLAS
    instead: the product is still right (a child process whose address space is capped and
    filled up)."""
    out = run_with_capped_memory(
        "import numpy as np, ember\n"
        "from ember.backend import gemm\n"
        "ember.set_num_threads(1)\n"
        "a = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)\n"
        "gemm.native_kernels()\n"
        "np.dot(a, a)\n"                               # OpenBLAS's own buffers first
        "got = np.empty_like(a)\n",
        "hold = []\n"                                  # use up the room under the cap
        "for size in (1 << 20, 1 << 16):\n"
        "    while True:\n"
        "        try:\n"
        "            hold.append(bytearray(size))\n"
        "        except MemoryError:\n"
        "            break\n"
        "hold.pop()\n"                                # but leave Python some
        "gemm.matmul(a, a, out=got)\n"
        "status = ember.backend.native.library().ember_sgemm(0, 0, 300, 300, 300, 1.0,"
        " a.ctypes.data, 300, a.ctypes.data, 300, 0.0, got.ctypes.data, 300, None, 0)\n"
        "del hold\n"
        "print(float(np.abs(got - a.astype(np.float64) @ a).max()), status)\n",
        room_mb=16)
    err, status = out.split()
    assert float(err) < 1e-2
    assert status == "1"


@pytest.mark.parametrize("m, n, k", [(13, 100, 40), (30, 70, 600), (128, 512, 784),
                                     (300, 100, 600)])
def test_bias_in_the_product_pass(lib, m, n, k):
    """The bias added in the kernel's last pass: bit for bit the finished product plus the
    bias (the same rounding), with and without K chunks and partial panels."""
    rng = numpy.random.default_rng(13)
    a_op, a_mem, lda = _operand(rng, m, k, 0, pad=0)
    b_op, b_mem, ldb = _operand(rng, k, n, 1, pad=0)
    bias = rng.standard_normal(n).astype(numpy.float32)
    plain = numpy.empty((m, n), numpy.float32)
    fused = numpy.empty((m, n), numpy.float32)
    assert _sgemm(lib, 0, 1, a_op, a_mem, lda, b_op, b_mem, ldb, plain, n) == 0
    assert lib.ember_sgemm(0, 1, m, n, k, 1.0, a_mem.ctypes.data, lda, b_mem.ctypes.data, ldb,
                           0.0, fused.ctypes.data, n, bias.ctypes.data, 0) == 0
    numpy.testing.assert_array_equal(fused, plain + bias)
    # ReLU in the same pass, after the bias and only on the finished sums (K chunks: a
    # partial sum's sign says nothing), and without a bias
    for v, expected in ((bias, plain + bias), (None, plain)):
        fused[...] = numpy.nan
        assert lib.ember_sgemm(0, 1, m, n, k, 1.0, a_mem.ctypes.data, lda, b_mem.ctypes.data,
                               ldb, 0.0, fused.ctypes.data, n,
                               None if v is None else v.ctypes.data, 1) == 0
        numpy.testing.assert_array_equal(fused, numpy.where(expected <= 0, 0, expected))
        assert (fused == 0).any() and (fused > 0).any()


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape", [(4, 3, 5), (128, 96, 160), (2, 64, 40, 24)])
def test_matmul_with_bias_on_every_path(dtype, shape):
    """gemm.matmul(a, b, bias=v) on each path (NumPy for small products, the kernel, BLAS for
    float64, a stack of matrices) equals a @ b + v, and with relu=True its ReLU."""
    rng = numpy.random.default_rng(17)
    a = rng.standard_normal(shape).astype(dtype)              # (..., m, k)
    b = rng.standard_normal((shape[-1], 48)).astype(dtype)
    v = rng.standard_normal(48).astype(dtype)
    before = threads.get_num_threads()
    ember.set_num_threads(2)
    try:
        got = gemm.matmul(a, b, bias=v)
        got_relu = gemm.matmul(a, b, bias=v, relu=True)
        got_relu_no_bias = gemm.matmul(a, b, relu=True)
    finally:
        ember.set_num_threads(before)
    numpy.testing.assert_allclose(got, a @ b + v, rtol=1e-5, atol=1e-5)
    numpy.testing.assert_array_equal(got_relu, numpy.maximum(got, 0))
    numpy.testing.assert_allclose(got_relu_no_bias, numpy.maximum(a @ b, 0), rtol=1e-5,
                                  atol=1e-5)


def test_builds_without_avx512_and_leaves_products_to_blas(tmp_path):
    """On a CPU without AVX-512 (here: the sources built for plain x86-64) the library still
    builds, says the kernel is not there, and split products run on BLAS."""
    import ctypes
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the x86-64 baseline build is an x86 question")
    flags = [f if f != "-march=native" else "-march=x86-64" for f in native._FLAGS]
    target = tmp_path / "baseline.so"
    done = subprocess.run([native._compiler(), *flags, "-o", str(target), *native._SOURCES],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "implicit declaration" not in done.stderr, done.stderr
    base = ctypes.CDLL(str(target))
    for name, argtypes in native._SIGNATURES.items():
        getattr(base, name).argtypes = argtypes
        getattr(base, name).restype = native._RESULTS.get(name)
    assert base.ember_sgemm_built() == 0
    found = gemm.native_kernels()
    assert found is not None, native.reason()
    _, sgemm, _, ilp64 = found
    rng = numpy.random.default_rng(19)
    a = rng.standard_normal((70, 45)).astype(numpy.float32)
    b = rng.standard_normal((45, 150)).astype(numpy.float32)
    v = rng.standard_normal(150).astype(numpy.float32)
    out = numpy.full((70, 150), numpy.nan, dtype=numpy.float32)
    base.ember_gemm(sgemm, ilp64, 0, 0, 0, 70, 150, 45, 1, 1, a.ctypes.data, 45, 0, 0,
                    b.ctypes.data, 150, 0, 0, out.ctypes.data, 150, 0, 0, 1.0, 0.0,
                    v.ctypes.data, 0, 2, 0)
    numpy.testing.assert_allclose(out, a.astype(numpy.float64) @ b + v, rtol=1e-4, atol=1e-4)
    relu = numpy.full((70, 150), numpy.nan, dtype=numpy.float32)
    base.ember_gemm(sgemm, ilp64, 0, 0, 0, 70, 150, 45, 1, 1, a.ctypes.data, 45, 0, 0,
                    b.ctypes.data, 150, 0, 0, relu.ctypes.data, 150, 0, 0, 1.0, 0.0,
                    v.ctypes.data, 1, 2, 0)
    numpy.testing.assert_array_equal(relu, numpy.maximum(out, 0))
