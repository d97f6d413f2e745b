"""The no-graph fast paths (ops computed on the arrays without Function.apply when nothing is
recorded, see autograd/function.py) give exactly what the general path gives, leave the tracer
hook, views' version counters and error messages as they were, and match PyTorch."""

import contextlib

import numpy
import pytest
import torch

import ember
from ember import errors
from ember.autograd.function import _Tracing


class _Recorder:
    """A tracer that only notes which Functions ran: installing it forces the general path."""

    def __init__(self):
        self.ops = []

    def record(self, cls, ctx, args, kwargs, results):
        self.ops.append(cls.__name__)


@contextlib.contextmanager
def _general_path():
    recorder = _Recorder()
    _Tracing.tracer = recorder
    try:
        yield recorder
    finally:
        _Tracing.tracer = None


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else ember


_RNG = numpy.random.default_rng(7)
_A = _RNG.standard_normal((4, 5)).astype(numpy.float32)
_B = _RNG.standard_normal((4, 5)).astype(numpy.float32)
_M = _RNG.standard_normal((5, 3)).astype(numpy.float32)
_P = _RNG.standard_normal((16, 32)).astype(numpy.float32)
_Q = _RNG.standard_normal((16, 3)).astype(numpy.float32)
_BIG = numpy.ascontiguousarray(_RNG.standard_normal((130, 160)).astype(numpy.float32))
_I23 = numpy.arange(6).reshape(2, 3)
_F16, _F64 = numpy.float16, numpy.float64

# (name, op, the Function the general path records, operands as NumPy arrays)
_CASES = [
    ("add", lambda x, y: x + y, "Add", (_A, _B)),
    ("add_broadcast", lambda x, y: x + y, "Add", (_A, _B[:1])),
    ("sub", lambda x, y: x - y, "Sub", (_A, _B)),
    ("mul", lambda x, y: x * y, "Mul", (_A, _B)),
    ("mul_scalar", lambda x: x * 2.5, "Mul", (_A,)),
    ("rmul_int", lambda x: 3 * x, "Mul", (_A,)),
    ("rsub_scalar", lambda x: 1.5 - x, "Sub", (_A,)),
    ("add_0d", lambda x, y: x + y, "Add", (numpy.float32(1.5), numpy.float32(-2.0))),
    ("mul_f64", lambda x, y: x * y, "Mul", (_A.astype(_F64), _B.astype(_F64))),
    ("add_int", lambda x, y: x + y, "Add", (_I23, _I23 + 6)),
    ("matmul", lambda x, y: x @ y, "MatMul", (_A, _M)),
    ("matmul_big", lambda x, y: x @ y, "MatMul", (_BIG[:, :70], _BIG[:70, 70:].copy())),
    ("matmul_f64", lambda x, y: x @ y, "MatMul", (_A.astype(_F64), _M.astype(_F64))),
    ("matmul_transposed", lambda x, y: x @ y.T, "MatMul", (_A, _B)),
    ("matmul_strided", lambda x, y: x[:, ::2] @ y[:3], "MatMul", (_A, _M)),
    ("matmul_column", lambda x, y: x @ y[:, :1], "MatMul", (_A, _M)),
    # a strided matrix times a column: ndarray.dot rounds differently here than the matmul
    # ufunc, so the fast path must keep a @ b for it
    ("matmul_strided_column", lambda x, y: x[:, ::2] @ y[:, :1], "MatMul", (_P, _Q)),
    ("matmul_half", lambda x, y: x @ y, "MatMul", (_A.astype(_F16), _M.astype(_F16))),
    ("matmul_int", lambda x, y: x @ y, "MatMul", (_I23, numpy.arange(12).reshape(3, 4))),
    ("matmul_empty", lambda x, y: x @ y, "MatMul", (_A[:, :0], _M[:0])),
    ("exp", lambda x: x.exp(), "Exp", (_A,)),
    ("exp_0d", lambda x: x.exp(), "Exp", (numpy.float32(0.5),)),
    ("exp_half", lambda x: ember.exp(x), "Exp", (_A.astype(numpy.float16),)),
    ("relu", lambda x: x.relu(), "ReLU", (_A,)),
    ("relu_0d", lambda x: x.relu(), "ReLU", (numpy.float32(-0.5),)),
    ("relu_int", lambda x: x.relu(), "ReLU", (numpy.arange(-3, 3),)),
    ("sum", lambda x: x.sum(), "Sum", (_A,)),
    ("sum_big", lambda x: x.sum(), "Sum", (_RNG.standard_normal((123, 77)).astype(numpy.float32),)),
    ("sum_half", lambda x: x.sum(), "Sum", (_A.astype(numpy.float16),)),
    ("sum_int", lambda x: x.sum(), "Sum", (numpy.arange(12, dtype=numpy.int32).reshape(3, 4),)),
    ("sum_bool", lambda x: x.sum(), "Sum", (_A > 0,)),
    ("sum_dtype", lambda x: x.sum(dtype=_lib(x).float64), "Sum", (_A,)),
    ("sum_dim", lambda x: x.sum(1), "Sum", (_A,)),
    ("sum_keepdim", lambda x: x.sum((0, 1), keepdim=True), "Sum", (_A,)),
    ("sum_0d", lambda x: x.sum(), "Sum", (numpy.float32(2.5),)),
    ("sum_empty", lambda x: x.sum(), "Sum", (_A[:0],)),
    ("reshape", lambda x: x.reshape(-1), "Reshape", (_A,)),
    ("reshape_2d", lambda x: x.reshape(5, 4), "Reshape", (_A,)),
    ("reshape_copy", lambda x: x.T.reshape(-1), "Reshape", (_A,)),
    ("getitem_slice", lambda x: x[1:3], "GetItem", (_A,)),
    ("getitem_int", lambda x: x[-1], "GetItem", (_A,)),
    ("getitem_scalar", lambda x: x[1, 2], "GetItem", (_A,)),
    ("getitem_tuple", lambda x: x[0, 1:], "GetItem", (_A,)),
]


def _run(op, arrays, requires_grad=False):
    tensors = [ember.tensor(a) for a in arrays]
    if requires_grad:
        tensors = [t.requires_grad_() for t in tensors]
    return op(*tensors)


def _same(fast, general):
    assert type(fast._data) is numpy.ndarray
    assert fast.dtype == general.dtype and tuple(fast.shape) == tuple(general.shape)
    assert fast._data.tobytes() == general._data.tobytes()  # bit for bit
    assert not fast.requires_grad and fast.grad_fn is None


@pytest.mark.parametrize("name, op, fn_name, arrays", _CASES, ids=[c[0] for c in _CASES])
def test_fast_path_gives_what_apply_gives(name, op, fn_name, arrays):
    fast = _run(op, arrays)
    with _general_path() as recorder:
        general = _run(op, arrays)
    assert fn_name in recorder.ops  # the general path ran (and the tracer saw the op)
    _same(fast, general)


@pytest.mark.parametrize("name, op, fn_name, arrays", _CASES, ids=[c[0] for c in _CASES])
def test_no_grad_takes_the_fast_path_with_the_same_result(name, op, fn_name, arrays):
    if any(numpy.asarray(a).dtype.kind != "f" for a in arrays):
        return  # only floating tensors can require grad
    recorded = _run(op, arrays, requires_grad=True)
    with ember.no_grad():
        fast = _run(op, arrays, requires_grad=True)
    _same(fast, recorded.detach())
    assert recorded.requires_grad


@pytest.mark.parametrize("name, op, fn_name, arrays", _CASES, ids=[c[0] for c in _CASES])
def test_fast_path_matches_torch(name, op, fn_name, arrays):
    if any(numpy.asarray(a).dtype == numpy.float16 for a in arrays):
        return  # PyTorch's CPU half kernels round differently
    got = _run(op, arrays)
    expected = op(*[torch.tensor(numpy.asarray(a)) for a in arrays])
    assert str(got.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
    numpy.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


def test_every_op_is_traced_when_a_tracer_is_installed():
    x, y, m = ember.tensor(_A), ember.tensor(_B), ember.tensor(_M)
    with _general_path() as recorder:
        (((x + y) * y) @ m).exp().relu().reshape(-1)[1:4].sum()
    assert recorder.ops == ["Add", "Mul", "MatMul", "Exp", "ReLU", "Reshape", "GetItem", "Sum"]


def test_checkpoint_still_finds_the_parameters_used_under_no_grad():
    # checkpoint's collector stands in for the tracer under no_grad: the fast paths must
    # leave the ops to it, or the weight below would get no gradient.
    w = ember.tensor(_M).requires_grad_()
    x = ember.tensor(_A)
    out = ember.utils.checkpoint.checkpoint(lambda t: ((t @ w).relu() * 2.0).exp().sum(), x)
    out.backward()
    tw = torch.tensor(_M).requires_grad_()
    ((torch.tensor(_A) @ tw).relu() * 2.0).exp().sum().backward()
    numpy.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("view", [lambda x: x.reshape(-1), lambda x: x[1:3], lambda x: x[1, 2]])
def test_fast_path_views_share_storage_and_version(view):
    x = ember.tensor(_A.copy())
    v = view(x)
    assert v._base is x and v._version is x._version
    x.add_(1.0)
    assert v._version_count == 1
    numpy.testing.assert_array_equal(v.numpy(), view(ember.tensor(_A + numpy.float32(1.0))).numpy())


def test_in_place_change_of_a_fast_path_view_is_caught_under_autograd():
    w = ember.tensor([1.0, 2.0, 3.0, 4.0]).requires_grad_()
    x = ember.tensor([[1.0, 2.0], [3.0, 4.0]])
    v = x.reshape(-1)  # fast path: x needs no grad
    out = (w * v).sum()
    x.mul_(2.0)  # v shares x's version counter, so backward must see the change
    with pytest.raises(errors.AutogradError, match="modified by an in-place operation"):
        out.backward()


def test_fast_path_errors_are_the_general_paths():
    x = ember.ones(2, 3)
    with pytest.raises(errors.ShapeError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be"):
        x + ember.ones(4)
    with pytest.raises(errors.ShapeError, match=r"mul: shapes \(2, 3\) and \(2,\)"):
        x * ember.ones(2)
    with pytest.raises(errors.ShapeError, match="matmul: shapes"):
        x @ ember.ones(2, 3)
    with pytest.raises(errors.DTypeError, match="matmul: expected operands of one dtype"):
        x @ ember.ones(3, 2, dtype=ember.float64)
    with pytest.raises(errors.ShapeError, match="reshape: cannot reshape a tensor of shape"):
        x.reshape(4, 2)
    with pytest.raises(errors.DTypeError, match="exp: expected a Tensor"):
        ember.exp(_A)
    with pytest.raises(errors.DTypeError, match="relu: expected a Tensor"):
        ember.relu(_A)


def test_fast_path_dtype_rules():
    i = ember.tensor([[1, 2], [3, 4]])
    assert ember.exp(i).dtype == ember.float32  # integers: float math in the default dtype
    assert (i * 2.5).dtype == ember.float32 and (i + 2).dtype == ember.int64
    assert i.sum().dtype == ember.int64 and ember.tensor([True, False]).sum().dtype == ember.int64
    assert i.relu().dtype == ember.int64
    h = ember.ones(2, 2, dtype=ember.float16)
    assert (h * 2.0).dtype == ember.float16 and h.sum().dtype == ember.float16
    assert (h @ h).dtype == ember.float16


def test_sum_of_a_byte_swapped_array_comes_back_in_native_order():
    x = ember.Tensor._make(_A.astype(">f4"), False, None, 0)  # as a view of foreign data can be
    fast = x.sum()
    with _general_path():
        general = x.sum()
    assert fast._data.dtype == numpy.float32 and fast._data.dtype.isnative
    _same(fast, general)
    assert fast.item() == _A.sum()


def test_fast_path_outputs_are_fresh_leaves():
    x = ember.tensor(_A)
    for y in (x + x, x * 2.0, x @ ember.tensor(_M), x.exp(), x.relu(), x.sum()):
        assert y.is_leaf and not y.requires_grad and y._base is None and y._version_count == 0
        y.requires_grad_()  # a float result can start its own graph
