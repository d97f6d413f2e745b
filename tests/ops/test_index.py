"""Indexing ops (ember/ops/index.py) against PyTorch: x[...] read and write, gather/scatter,
index_* ops, masks, take, nonzero, sort/topk, unique/bincount/one_hot, and their errors."""

import numpy
import pytest
import torch

import ember
from ember import errors
from tests.oracle import check_double_backward, check_op


def both(make):
    """(ember_fn, torch_fn) from ``make(lib)``, for lambdas that build index tensors."""
    return make(ember), make(torch)


def check_both(make, specs, **kw):
    e_fn, t_fn = both(make)
    return check_op(e_fn, specs, torch_fn=t_fn, **kw)


# ---- getitem -------------------------------------------------------------------------------

BASIC = [
    ((4, 5), lambda lib: (lambda x: x[1])),
    ((4, 5), lambda lib: (lambda x: x[:, 1:4])),
    ((4, 5), lambda lib: (lambda x: x[::2, -1])),
    ((2, 3, 4), lambda lib: (lambda x: x[..., None, 0])),
    ((2, 3, 4), lambda lib: (lambda x: x[1, 2, 3])),
    ((), lambda lib: (lambda x: x[...])),
    ((), lambda lib: (lambda x: x[None])),
    ((0, 3), lambda lib: (lambda x: x[:, 1])),
    ((3, 4), lambda lib: (lambda x: x.mT[1:, ::2])),  # non-contiguous input
]

ADVANCED = [
    ((4, 5), lambda lib: (lambda x: x[[0, 0, 2]])),  # repeats accumulate in backward
    ((4, 5), lambda lib: (lambda x: x[lib.tensor([[1, 3], [3, 3]])])),
    ((4, 5), lambda lib: (lambda x: x[:, lib.tensor([4, -1, 0])])),
    ((2, 3, 4), lambda lib: (lambda x: x[0, :, [1, 2]])),  # ints go first, as in PyTorch
    ((2, 3, 4), lambda lib: (lambda x: x[[0, 1, 1], :, [3, 3, 0]])),  # non-adjacent: dims first
    ((2, 3, 4), lambda lib: (lambda x: x[..., [1, 1], 0])),
    ((2, 3, 4), lambda lib: (lambda x: x[lib.tensor([True, False])])),
    ((2, 3, 4), lambda lib: (lambda x: x[:, lib.tensor([[True, False, True, True]] * 3)])),
    ((2, 3, 4), lambda lib: (lambda x: x[lib.tensor([False, True]), 1:, [2, 2]])),
    ((2, 3, 4), lambda lib: (lambda x: x[lib.tensor(1), None, [0, 2]])),
    ((0, 3), lambda lib: (lambda x: x[[], 1])),
    ((3, 4), lambda lib: (lambda x: x.mT[[0, 0, 3]])),
]


@pytest.mark.parametrize("shape,make", BASIC + ADVANCED)
def test_getitem_matches_torch(shape, make):
    check_both(make, [shape])


@pytest.mark.parametrize("shape,make", [BASIC[1], ADVANCED[0], ADVANCED[3], ADVANCED[6]])
def test_getitem_float32(shape, make):
    check_both(make, [shape], dtype=numpy.float32)


@pytest.mark.parametrize("make", [
    lambda x: (x[1:, None, 0] * x[1:, None, 0]),
    lambda x: (x[[0, 0, 2], 1:] * x[[1, 1, 2], :-1]),
    lambda x: x[:, [2, 0]].exp()[..., [1, 1]],
])
def test_getitem_double_backward(make):
    check_double_backward(make, [(3, 4)])


def test_repeated_index_accumulates():
    x = ember.zeros(4, requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0, 0.0])


def test_basic_index_is_a_view_sharing_version():
    x = ember.zeros(3, 4)
    row = x[1]
    elem = x[2, 3]
    row[2] = 5.0
    elem[...] = 7.0
    assert x.numpy()[1, 2] == 5.0 and x.numpy()[2, 3] == 7.0
    assert row._version is x._version and x._version_count == 2
    picked = x[[1]]
    picked[0, 0] = 9.0  # advanced indexing copies
    assert x.numpy()[1, 0] == 0.0


def test_iteration_stops_at_the_end():
    rows = list(ember.arange(6).reshape(3, 2))
    assert [r.tolist() for r in rows] == [[0, 1], [2, 3], [4, 5]]


def test_getitem_numpy_and_bool_indices():
    x = ember.arange(12.0).reshape(3, 4)
    mask = numpy.array([True, False, True])
    numpy.testing.assert_array_equal(x[mask].numpy(), numpy.arange(12.0).reshape(3, 4)[mask])
    numpy.testing.assert_array_equal(x[numpy.array([2, 0]), 1].numpy(), [9.0, 1.0])
    assert x[True].shape == (1, 3, 4)


@pytest.mark.parametrize("index,err,words", [
    (slice(None, None, -1), errors.ShapeError, ["step must be greater than zero, got -1"]),
    (5, IndexError, ["getitem", "index 5", "dim 0 with size 3"]),
    ((0, -5), errors.ShapeError, ["index -5", "dim 1 with size 4"]),
    ((slice(None), [0, 4]), IndexError, ["index 4", "dim 1 with size 4"]),
    ((0, 0, 0), IndexError, ["too many indices", "(3, 4)"]),
    (1.5, errors.DTypeError, ["float", "1.5"]),
    ((Ellipsis, Ellipsis), errors.ShapeError, ["single ellipsis"]),
])
def test_getitem_errors(index, err, words):
    x = ember.zeros(3, 4)
    with pytest.raises(err) as info:
        x[index]
    for w in words:
        assert w in str(info.value)


def test_getitem_index_tensor_errors():
    x = ember.zeros(3, 4)
    with pytest.raises(errors.DTypeError, match=r"getitem: .*integer.*float32.*\.long\(\)"):
        x[ember.tensor([1.0])]
    with pytest.raises(IndexError, match=r"mask of shape \(2,\) does not match .* \(3,\) at dim 0"):
        x[ember.tensor([True, False])]
    with pytest.raises(errors.ShapeError, match=r"index 3 is out of bounds for dim 0 with size 3"):
        x[ember.tensor([[0], [3]])]


# ---- setitem -------------------------------------------------------------------------------


def test_setitem_without_grad_writes_in_place():
    data = numpy.arange(12.0, dtype=numpy.float32).reshape(3, 4)
    x = ember.tensor(data)
    ptr = x.data_ptr()
    mask = ember.tensor(data > 5)
    x[mask] = 0
    x[0, [1, 1, 3]] = ember.tensor([7.0, 7.0, 8.0], dtype=ember.float64)
    x[1:, :2] = ember.tensor([-1.0, -2.0])
    expect = data.copy()
    expect[data > 5] = 0
    expect[0, [1, 3]] = [7.0, 8.0]
    expect[1:, :2] = [-1.0, -2.0]
    numpy.testing.assert_array_equal(x.numpy(), expect)
    assert x.data_ptr() == ptr and x._version_count == 3 and x.dtype == ember.float32
    xi = ember.zeros(3, dtype=ember.int64)
    xi[0] = 2.7
    assert xi.tolist() == [2, 0, 0]


SETITEM = [
    # (x shape, value shape or None for a number, make(lib) -> index)
    ((4, 3), None, lambda lib: (slice(1, 3),)),
    ((4, 3), (3,), lambda lib: (slice(1, 3),)),
    ((4, 3), (1, 2, 1), lambda lib: (slice(1, 3), slice(None, 2))),
    ((4, 3), (2, 3), lambda lib: (lib.tensor([0, 3]),)),
    ((4, 3), (), lambda lib: (lib.tensor([[True, False, True]] * 4),)),
    ((2, 3, 4), (2,), lambda lib: (0, slice(None), [1, 2])),
    ((2, 3, 4), (2, 1), lambda lib: (Ellipsis, [2, 0, 1], 0)),
    ((), (), lambda lib: (Ellipsis,)),
    ((0, 3), (3,), lambda lib: (slice(None),)),
]


def _setitem_fn(lib, make_index, with_value, x_grad, shape=None):
    """``y[index] = v`` on a non-leaf y (x_grad) or on a constant y (only v requires grad)."""
    if x_grad:
        def fn(x, v=None):
            y = x * 2.0
            y[make_index(lib)] = v if with_value else 1.5
            return y * y
    else:
        base = numpy.linspace(-1.0, 1.0, int(numpy.prod(shape))).reshape(shape)

        def fn(v):
            y = lib.tensor(base)
            y[make_index(lib)] = v
            return y * y

    return fn


@pytest.mark.parametrize("x_grad", [True, False])
@pytest.mark.parametrize("shape,vshape,make", SETITEM)
def test_setitem_gradients_match_torch(shape, vshape, make, x_grad):
    with_value = vshape is not None
    if not x_grad and not with_value:
        return  # nothing requires grad
    specs = ([shape] if x_grad else []) + ([vshape] if with_value else [])
    check_both(lambda lib: _setitem_fn(lib, make, with_value, x_grad, shape), specs)


def test_setitem_double_backward():
    fn = _setitem_fn(ember, lambda lib: (slice(None), [2, 0]), True, True)
    check_double_backward(fn, [(3, 4), (3, 1)])


def test_setitem_float32_value_requires_grad():
    check_both(lambda lib: _setitem_fn(lib, lambda _: (1,), True, True), [(3, 4), (4,)],
               dtype=numpy.float32)


def test_setitem_into_leaf_that_requires_grad():
    x = ember.zeros(3, requires_grad=True)
    with pytest.raises(errors.AutogradError, match="setitem: a leaf tensor that requires grad"):
        x[0] = 1.0
    with ember.no_grad():
        x[0] = 1.0
    assert x.tolist() == [1.0, 0.0, 0.0] and x.is_leaf and x.requires_grad


def test_setitem_after_save_raises_version_error():
    a = ember.ones(3, requires_grad=True)
    b = ember.ones(3, requires_grad=True)
    y = a * 1.0
    z = y * b  # saves y
    y[0] = 5.0
    with pytest.raises(errors.AutogradError, match="modified by an in-place operation"):
        z.sum().backward()
    y2 = a * 1.0
    z2 = y2 * b
    with ember.no_grad():
        y2[1:] = 0.0  # the fast path bumps the version too
    with pytest.raises(errors.AutogradError, match="modified by an in-place operation"):
        z2.sum().backward()


def test_setitem_errors():
    x = ember.zeros(3, 4)
    with pytest.raises(errors.ShapeError, match=r"setitem: shape mismatch: .* \(3,\) .* \(2, 4\)"):
        x[:2] = ember.ones(3)
    with pytest.raises(errors.ShapeError, match=r"value of shape \(3,\) .* result of shape \(2,\)"):
        x[[0, 1], 0] = ember.ones(3)
    with pytest.raises(errors.DTypeError, match="setitem"):
        x[ember.tensor([0.0])] = 1.0


# ---- gather / scatter ----------------------------------------------------------------------

IDX = numpy.array([[0, 2, 2], [1, 0, 1]])


@pytest.mark.parametrize("shape,dim,idx", [
    ((3, 4), 0, IDX),
    ((3, 4), 1, IDX),
    ((2, 3, 4), -1, numpy.zeros((2, 2, 3), dtype=numpy.int64)),
    ((), 0, numpy.array(0)),
    ((3, 0), 0, numpy.zeros((2, 0), dtype=numpy.int64)),
])
def test_gather(shape, dim, idx):
    check_both(lambda lib: (lambda x: lib.gather(x, dim, lib.tensor(idx))), [shape])


def test_gather_noncontiguous_float32_and_double_backward():
    check_both(lambda lib: (lambda x: lib.gather(x.mT, 0, lib.tensor(IDX))), [(4, 3)],
               dtype=numpy.float32)
    check_double_backward(lambda x: ember.gather(x * x, 1, ember.tensor(IDX)), [(2, 4)])


@pytest.mark.parametrize("shape,sshape,dim,idx", [
    ((3, 4), (2, 3), 0, IDX),
    ((), (), 0, numpy.array(0)),
    ((2, 0), (2, 0), 1, numpy.zeros((2, 0), dtype=numpy.int64)),
])
def test_scatter_add(shape, sshape, dim, idx):
    check_both(lambda lib: (lambda x, s: lib.scatter_add(x, dim, lib.tensor(idx), s)),
               [shape, sshape])


def test_scatter_add_src_larger_than_index():
    # Only src's leading block is read. PyTorch computes the forward but its backward rejects
    # this case, so the gradient is checked against finite differences alone.
    i = ember.tensor(IDX)
    check_both(lambda lib: (lambda x, s: lib.scatter_add(x, 1, lib.tensor(IDX), s)),
               [(3, 4), (3, 4)], grad=False)
    x, s = (ember.randn(3, 4, dtype=ember.float64, requires_grad=True) for _ in range(2))
    assert ember.autograd.gradcheck(lambda a, b: ember.scatter_add(a, 1, i, b), [x, s])
    ember.scatter_add(x, 1, i, s).sum().backward()
    assert s.grad.numpy()[2].sum() == 0.0 and s.grad.numpy()[:2, :3].sum() == 6.0


def test_scatter_add_double_backward_and_method():
    i = ember.tensor(IDX)
    check_double_backward(lambda x, s: ember.scatter_add(x * x, 1, i, s * s), [(2, 4), (2, 3)])
    x = ember.zeros(2, 4)
    x.scatter_add_(1, i, ember.ones(2, 3))
    numpy.testing.assert_array_equal(x.numpy(), [[1, 0, 2, 0], [1, 2, 0, 0]])


UNIQUE_IDX = numpy.array([[0, 2, 1], [1, 0, 2]])


def test_scatter_src_and_value():
    i = UNIQUE_IDX
    check_both(lambda lib: (lambda x, s: lib.scatter(x, 1, lib.tensor(i), s)), [(2, 4), (2, 3)])
    check_both(lambda lib: (lambda x, s: lib.scatter(x.mT, 0, lib.tensor(i.T), s)),
               [(2, 4), (3, 2)])
    check_both(lambda lib: (lambda x: lib.scatter(x, 0, lib.tensor(i[:1]), value=-2.0)), [(3, 3)])
    check_both(lambda lib: (lambda x: x.scatter(1, lib.tensor(i), 0.5)), [(2, 3)])
    x = ember.zeros(2, 3)
    x.scatter_(1, ember.tensor(i), 1.0)
    assert x.numpy().sum() == 6.0


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce(reduce, include_self):
    idx = numpy.array([[0, 0, 2], [1, 1, 1]])
    check_both(lambda lib: (lambda x, s: lib.scatter_reduce(x, 1, lib.tensor(idx), s, reduce,
                                                            include_self=include_self)),
               [(2, 4), (2, 3)])


def test_scatter_reduce_ties_and_prod():
    x = numpy.array([[1.0, 3.0, 0.0]])
    s = numpy.array([[3.0, 3.0, 2.0, 5.0]])
    idx = numpy.array([[1, 1, 0, 2]])
    for reduce in ("amax", "amin"):
        check_both(lambda lib: (lambda a, b: lib.scatter_reduce(a, 1, lib.tensor(idx), b, reduce)),
                   None, inputs=[x, s], gradcheck=False)
    e_fn, t_fn = both(
        lambda lib: (lambda a, b: lib.scatter_reduce(a, 1, lib.tensor(idx), b, "prod"))
    )
    check_op(e_fn, None, torch_fn=t_fn, inputs=[x, s], grad=False)
    with pytest.raises(errors.AutogradError, match="reduce='prod' has no gradient"):
        ember.scatter_reduce(ember.tensor(x, requires_grad=True), 1, ember.tensor(idx),
                             ember.tensor(s), "prod")
    ints = ember.tensor([[1, 2, 3]])
    out = ember.scatter(ints, 1, ember.tensor([[0, 0]]), ember.tensor([[5, 4]]), reduce="multiply")
    assert out.tolist() == [[20, 2, 3]]


def test_gather_scatter_errors():
    x = ember.zeros(3, 4)
    with pytest.raises(errors.DTypeError, match=r"gather: index must be an integer .*float32"):
        ember.gather(x, 0, ember.tensor([[0.0]]))
    with pytest.raises(IndexError, match=r"gather: index 3 is out of bounds for dim 0 with size 3"):
        ember.gather(x, 0, ember.tensor([[0, 3]]))
    with pytest.raises(errors.ShapeError, match=r"gather: index -1 is out of bounds .*\[0, 4\)"):
        ember.gather(x, 1, ember.tensor([[0, -1]]))
    with pytest.raises(errors.ShapeError, match=r"as many dims as the input"):
        ember.gather(x, 0, ember.tensor([0]))
    with pytest.raises(errors.ShapeError, match=r"larger than the input .* at dim 1"):
        ember.gather(x, 0, ember.zeros(1, 5, dtype=ember.int64))
    with pytest.raises(errors.DTypeError, match=r"scatter_add: src has dtype .*float64 .*float32"):
        ember.scatter_add(x, 0, ember.tensor([[0]]), ember.zeros(1, 1, dtype=ember.float64))
    with pytest.raises(IndexError, match=r"dimension 2 is out of range"):
        ember.gather(x, 2, ember.tensor([[0]]))


# ---- index_* -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,dim,idx", [
    ((4, 3), 0, [3, 0, 3]),
    ((2, 3, 4), 1, [2]),
    ((2, 3, 4), -1, []),
    ((), 0, [0]),
])
def test_index_select(shape, dim, idx):
    check_both(lambda lib: (lambda x: lib.index_select(x, dim, lib.tensor(idx, dtype=lib.int64))),
               [shape])


def test_index_select_noncontiguous_and_double_backward():
    check_both(lambda lib: (lambda x: x.mT.index_select(0, lib.tensor([1, 1]))), [(3, 4)])
    check_double_backward(lambda x: ember.index_select(x * x, 1, ember.tensor([0, 0, 2])), [(2, 3)])


def test_index_add_copy_fill():
    i = [2, 0, 2]
    check_both(lambda lib: (lambda x, s: lib.index_add(x, 0, lib.tensor(i), s, alpha=2.5)),
               [(4, 3), (3, 3)])
    check_both(lambda lib: (lambda x, s: x.mT.index_add(1, lib.tensor([1]), s)), [(2, 3), (3, 1)])
    check_both(lambda lib: (lambda x, s: lib.index_copy(x, 1, lib.tensor([2, 0]), s)),
               [(3, 4), (3, 2)])
    check_both(lambda lib: (lambda x, v: lib.index_fill(x, 1, lib.tensor([2, 0]), v)),
               [(3, 4), ()])
    check_both(lambda lib: (lambda x: x.index_fill(0, lib.tensor([1]), -1.0)), [(3, 4)])
    x = ember.zeros(3)
    x.index_add_(0, ember.tensor([0, 0]), ember.ones(2))
    x.index_fill_(0, ember.tensor([2]), 4.0)
    assert x.tolist() == [2.0, 0.0, 4.0]


def test_index_errors():
    x = ember.zeros(3, 4)
    with pytest.raises(errors.DTypeError, match=r"index_select: index must be an integer"):
        ember.index_select(x, 0, ember.tensor([1.0]))
    with pytest.raises(IndexError, match=r"index_select: index 3 is out of bounds for dim 0"):
        ember.index_select(x, 0, ember.tensor([3]))
    with pytest.raises(errors.ShapeError, match=r"index must be 0-d or 1-d"):
        ember.index_select(x, 0, ember.tensor([[1]]))
    with pytest.raises(errors.ShapeError, match=r"index_add: source of shape \(2, 3\) .* \(2, 4\)"):
        ember.index_add(x, 0, ember.tensor([0, 1]), ember.zeros(2, 3))


# ---- masks, take, nonzero ------------------------------------------------------------------

MASK = numpy.array([[True, False, True], [False, False, True]])


@pytest.mark.parametrize("shape,mask", [
    ((2, 3), MASK),
    ((3,), MASK),  # mask broadcasts the result up to (2, 3)
    ((2, 1), MASK),
    ((), numpy.array(True)),
    ((0, 3), numpy.zeros((0, 3), dtype=bool)),
])
def test_masked_fill_and_select(shape, mask):
    check_both(lambda lib: (lambda x: lib.masked_fill(x, lib.tensor(mask), -3.0)), [shape])
    check_both(lambda lib: (lambda x, v: x.masked_fill(lib.tensor(mask), v)), [shape, ()])
    check_both(lambda lib: (lambda x: lib.masked_select(x, lib.tensor(mask))), [shape])


def test_masked_ops_noncontiguous_double_backward_and_errors():
    check_both(lambda lib: (lambda x: x.mT.masked_select(lib.tensor(MASK))), [(3, 2)])
    m = ember.tensor(MASK)
    check_double_backward(lambda x, v: ember.masked_fill(x * x, m, v * v), [(2, 3), ()])
    xi = ember.tensor([1, 2, 3])
    assert xi.masked_fill(ember.tensor([True, False, False]), 7.9).tolist() == [7, 2, 3]
    x = ember.zeros(2, 3)
    with pytest.raises(errors.DTypeError, match=r"masked_fill: mask must be a bool.*int64"):
        x.masked_fill(ember.tensor([1, 0, 1]), 0.0)
    with pytest.raises(errors.ShapeError, match=r"masked_fill: value must be a number or a 0-d"):
        x.masked_fill(m, ember.zeros(3))
    with pytest.raises(errors.ShapeError, match=r"mask of shape \(2,\) cannot be broadcast"):
        ember.masked_select(x, ember.tensor([True, False]))
    x.masked_fill_(m, 1.0)
    assert x.numpy().sum() == 3.0


def test_take_and_take_along_dim():
    check_both(lambda lib: (lambda x: lib.take(x, lib.tensor([[0, -1], [5, 5]]))), [(2, 3)])
    check_both(lambda lib: (lambda x: x.mT.take(lib.tensor([1, 4]))), [(2, 3)])
    check_both(lambda lib: (lambda x: lib.take(x, lib.tensor(0))), [()])
    check_both(lambda lib: (lambda x: lib.take_along_dim(x, lib.tensor([[2], [0]]), 1)), [(2, 3)])
    check_both(lambda lib: (lambda x: lib.take_along_dim(x, lib.tensor([[0, 1]]), dim=0)),
               [(2, 2)])
    check_both(lambda lib: (lambda x: lib.take_along_dim(x, lib.tensor([5, 0]))), [(2, 3)])
    with pytest.raises(IndexError, match=r"take: index 6 is out of bounds for dim 0 with size 6"):
        ember.take(ember.zeros(2, 3), ember.tensor([6]))


@pytest.mark.parametrize("data", [
    numpy.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]]),
    numpy.array(3.0),
    numpy.array(0.0),
    numpy.zeros((0, 2)),
    numpy.array([True, False, True]),
])
def test_nonzero(data):
    e, t = ember.tensor(data), torch.tensor(data)
    numpy.testing.assert_array_equal(ember.nonzero(e).numpy(), torch.nonzero(t).numpy())
    assert ember.nonzero(e).dtype == ember.int64
    for a, b in zip(e.nonzero(as_tuple=True), t.nonzero(as_tuple=True), strict=True):
        numpy.testing.assert_array_equal(a.numpy(), b.numpy())
    numpy.testing.assert_array_equal(ember.argwhere(e).numpy(), torch.argwhere(t).numpy())


# ---- sort / topk ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 4), 0), ((2, 3, 4), -1), ((), 0),
                                       ((0, 3), 1)])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_and_argsort(shape, dim, descending):
    check_both(lambda lib: (lambda x: lib.sort(x, dim, descending)), [shape])
    check_both(lambda lib: (lambda x: lib.argsort(x, dim, descending)), [shape], grad=False)


def test_sort_stable_ties_nan_and_double_backward():
    data = numpy.array([[2.0, 1.0, 2.0, numpy.nan, 1.0, 2.0], [0.0, 0.0, 0.0, 1.0, 0.0, -1.0]])
    for descending in (False, True):
        e = ember.sort(ember.tensor(data), descending=descending, stable=True)
        t = torch.sort(torch.tensor(data), descending=descending, stable=True)
        numpy.testing.assert_array_equal(e.indices.numpy(), t.indices.numpy())
        numpy.testing.assert_array_equal(e.values.numpy(), t.values.numpy())
    check_double_backward(lambda x: ember.sort(x * x, 1, True).values, [(2, 4)])
    check_double_backward(lambda x: ember.topk(x * x, 2).values, [(3, 4)])


@pytest.mark.parametrize("shape,k,dim,largest", [
    ((6,), 3, -1, True), ((3, 5), 2, 0, False), ((2, 3, 4), 4, 2, True), ((), 1, 0, True),
    ((3, 4), 0, 1, True), ((0, 4), 2, 1, False),
])
def test_topk(shape, k, dim, largest):
    check_both(lambda lib: (lambda x: lib.topk(x, k, dim, largest)), [shape])


def test_topk_kthvalue_noncontiguous_float32_and_errors():
    check_both(lambda lib: (lambda x: x.mT.topk(2)), [(4, 3)], dtype=numpy.float32)
    check_both(lambda lib: (lambda x: lib.kthvalue(x, 2, 0)), [(3, 4)])
    check_both(lambda lib: (lambda x: lib.kthvalue(x, 3, keepdim=True)), [(2, 5)])
    with pytest.raises(IndexError, match=r"topk: k=4 is out of range for dim 0 of size 3"):
        ember.topk(ember.zeros(3), 4)
    with pytest.raises(errors.ShapeError, match=r"kthvalue: k=0 is out of range"):
        ember.kthvalue(ember.zeros(3), 0)


# ---- unique / bincount / one_hot -----------------------------------------------------------


def test_unique_and_bincount():
    data = numpy.array([[3, 1, 3], [0, 1, 1]])
    e = ember.unique(ember.tensor(data), return_inverse=True, return_counts=True)
    t = torch.unique(torch.tensor(data), return_inverse=True, return_counts=True)
    for a, b in zip(e, t, strict=True):
        numpy.testing.assert_array_equal(a.numpy(), b.numpy())
    e = ember.unique(ember.tensor(data), dim=1, return_inverse=True)
    t = torch.unique(torch.tensor(data), dim=1, return_inverse=True)
    for a, b in zip(e, t, strict=True):
        numpy.testing.assert_array_equal(a.numpy(), b.numpy())
    v = numpy.array([4, 0, 1, 1])
    w = numpy.array([0.5, 1.0, 2.0, -1.0], dtype=numpy.float32)
    for kw in ({}, {"minlength": 7}):
        e, t = ember.bincount(ember.tensor(v), **kw), torch.bincount(torch.tensor(v), **kw)
        numpy.testing.assert_array_equal(e.numpy(), t.numpy())
        assert e.dtype == ember.int64
    e = ember.tensor(v).bincount(ember.tensor(w))
    t = torch.tensor(v).bincount(torch.tensor(w))
    numpy.testing.assert_allclose(e.numpy(), t.numpy())
    assert str(e.dtype) == str(t.dtype).replace("torch.", "")
    with pytest.raises(ValueError, match=r"bincount: input must be non-negative, got the value -1"):
        ember.bincount(ember.tensor([1, -1]))


def test_one_hot():
    for data, n in [([0, 2, 1], -1), ([[1], [0]], 4), ([], 3), (2, 5)]:
        e = ember.one_hot(ember.tensor(data, dtype=ember.int64), n)
        t = torch.nn.functional.one_hot(torch.tensor(data, dtype=torch.int64), n)
        numpy.testing.assert_array_equal(e.numpy(), t.numpy())
        assert e.dtype == ember.int64 and e.shape == t.shape
    with pytest.raises(errors.DTypeError, match=r"one_hot: index must be an integer .*float32"):
        ember.one_hot(ember.tensor([1.0]))
    with pytest.raises(ValueError, match=r"class values must be non-negative, got -1"):
        ember.one_hot(ember.tensor([-1, 0]), 3)
    with pytest.raises(IndexError, match=r"class value 3 is not smaller than num_classes=3"):
        ember.one_hot(ember.tensor([3]), 3)
    with pytest.raises(errors.ShapeError, match=r"cannot infer num_classes from an empty"):
        ember.one_hot(ember.tensor([], dtype=ember.int64))
