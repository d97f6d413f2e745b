"""Shape and movement ops (ember/ops/shape.py) against PyTorch, finite differences, view
semantics and error messages."""

import numpy
import pytest
import torch
import torch.nn.functional as F

import ember
from ember import errors
from tests.oracle import check_double_backward, check_op


# ---- reshape family ------------------------------------------------------------------------


@pytest.mark.parametrize("shape, new", [
    ((2, 3), (3, 2)), ((2, 3), (-1,)), ((), (1, 1)), ((1,), ()), ((0, 3), (3, 0)),
    ((2, 3, 4), (4, -1)),
])
def test_reshape(shape, new):
    check_op(lambda x: x.reshape(new), [shape])
    check_op(lambda x: ember.reshape(x, new), [shape], torch_fn=lambda x: torch.reshape(x, new))


def test_reshape_noncontiguous_and_view():
    check_op(lambda x: x.mT.reshape(-1), [(3, 4)])
    check_op(lambda x: x.view(2, 2, 3) * 2.0, [(4, 3)])
    check_op(lambda x: x.mT.view(4, 3).view_as(x.mT), [(3, 4)], torch_fn=lambda x: x.mT)
    check_op(lambda x, y: x.reshape_as(y), [(6,), (2, 3)])


@pytest.mark.parametrize("args", [(0, -1), (1, -1), (0, 1), (1, 1), (-2, -1)])
def test_flatten(args):
    check_op(lambda x: x.flatten(*args), [(2, 3, 4)])
    check_op(lambda x: ember.flatten(x.mT, *args), [(2, 3, 4)],
             torch_fn=lambda x: torch.flatten(x.mT, *args))


def test_flatten_ravel_unflatten_edge_cases():
    check_op(lambda x: x.flatten(), [()])
    check_op(lambda x: x.flatten(1), [(2, 0, 3)])
    check_op(lambda x: ember.ravel(x.mT), [(2, 3)], torch_fn=lambda x: torch.ravel(x.mT))
    check_op(lambda x: x.unflatten(1, (2, -1)), [(3, 6)])
    check_op(lambda x: x.unflatten(-1, (2, 3)), [(6,)])
    with pytest.raises(errors.ShapeError, match=r"unflatten: sizes \(4, 2\) do not multiply to 6"):
        ember.ones(3, 6).unflatten(1, (4, 2))


@pytest.mark.parametrize("dim", [None, 0, 2, -1, (0, 2), (1,)])
def test_squeeze(dim):
    kw = {} if dim is None else {"dim": dim}
    check_op(lambda x: x.squeeze(**kw), [(1, 3, 1)])
    check_op(lambda x: ember.squeeze(x, **kw), [(1, 3, 1)],
             torch_fn=lambda x: torch.squeeze(x, **kw))


def test_squeeze_unsqueeze_edge_cases():
    check_op(lambda x: x.squeeze(), [()])
    check_op(lambda x: x.squeeze(0), [()])
    for d in (0, 1, 2, -1, -3):
        check_op(lambda x: x.unsqueeze(d), [(2, 3)])
    check_op(lambda x: x.unsqueeze(-1), [()])
    check_op(lambda x: x.mT.unsqueeze(1), [(2, 3)])
    with pytest.raises(IndexError, match="unsqueeze: dimension 3 is out of range"):
        ember.ones(2, 3).unsqueeze(3)


def test_atleast():
    for f in ("atleast_1d", "atleast_2d", "atleast_3d"):
        for shape in [(), (3,), (2, 3), (2, 3, 4)]:
            check_op(lambda x: getattr(ember, f)(x), [shape],
                     torch_fn=lambda x: getattr(torch, f)(x))
        check_op(lambda x, y: getattr(ember, f)(x, y), [(), (3,)],
                 torch_fn=lambda x, y: getattr(torch, f)(x, y))


# ---- broadcasting and repetition -----------------------------------------------------------


@pytest.mark.parametrize("shape, target", [
    ((3,), (2, 3)), ((1, 3), (4, 3)), ((), (2, 2)), ((2, 1, 1), (2, 3, 4)), ((0, 1), (0, 5)),
])
def test_expand_and_broadcast_to(shape, target):
    check_op(lambda x: x.expand(*target), [shape])
    check_op(lambda x: ember.broadcast_to(x, target), [shape],
             torch_fn=lambda x: torch.broadcast_to(x, target))


def test_expand_keeps_dims_with_minus_one_and_expand_as():
    check_op(lambda x: x.expand(2, -1, 3), [(4, 1)])
    check_op(lambda x, y: x.expand_as(y), [(1, 3), (2, 3)])
    check_op(lambda x: x.mT.expand(2, 3, 2), [(2, 3)])


def test_broadcast_tensors_and_shapes():
    check_op(lambda a, b, c: ember.broadcast_tensors(a, b, c), [(3, 1), (4,), ()],
             torch_fn=lambda a, b, c: torch.broadcast_tensors(a, b, c))
    assert ember.broadcast_shapes((2, 1), (3,), ()) == torch.broadcast_shapes((2, 1), (3,), ())
    with pytest.raises(errors.ShapeError, match=r"shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        ember.broadcast_shapes((2, 3), (4,))


@pytest.mark.parametrize("shape, reps", [
    ((2, 3), (2, 1)), ((2, 3), (1, 2, 3)), ((), (3,)), ((3,), (0,)), ((2,), (2, 2)),
])
def test_repeat(shape, reps):
    check_op(lambda x: x.repeat(*reps), [shape])


def test_repeat_noncontiguous():
    check_op(lambda x: x.mT.repeat(2, 1, 3), [(2, 3)])


def test_tile():
    check_op(lambda x: x.tile((2,)), [(2, 3)])
    check_op(lambda x: ember.tile(x, (2, 1, 2)), [(2, 3)],
             torch_fn=lambda x: torch.tile(x, (2, 1, 2)))
    with pytest.raises(errors.ShapeError, match="repeat: got 1 repeat counts"):
        ember.ones(2, 3).repeat(2)


# ---- transposition -------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [(1, 0, 2), (2, 0, 1), (-1, 0, 1), (0, 1, 2)])
def test_permute(dims):
    check_op(lambda x: x.permute(*dims), [(2, 3, 4)])
    check_op(lambda x: ember.permute(x.mT, dims), [(2, 3, 4)],
             torch_fn=lambda x: torch.permute(x.mT, dims))


def test_transposes():
    check_op(lambda x: x.transpose(0, 2), [(2, 3, 4)])
    check_op(lambda x: x.transpose(-1, -1), [(2, 3)])
    check_op(lambda x: x.transpose(0, -1), [(3,)])
    check_op(lambda x: x.swapaxes(0, 1), [(2, 3)])
    check_op(lambda x: ember.swapdims(x, 1, 2), [(2, 3, 4)],
             torch_fn=lambda x: torch.swapdims(x, 1, 2))
    check_op(lambda x: x.T, [(2, 3)])
    check_op(lambda x: x.mT, [(4, 2, 3)])
    check_op(lambda x: x.mH, [(2, 3)])
    check_op(lambda x: x.t(), [(2, 3)])
    check_op(lambda x: x.t(), [(3,)])
    check_op(lambda x: x.adjoint(), [(2, 3, 4)])
    with pytest.raises(errors.ShapeError, match=r"mT: only supported on matrices .* 1-D tensor"):
        ember.ones(3).mT
    with pytest.raises(errors.ShapeError, match=r"t: expects a tensor with <= 2 dimensions"):
        ember.ones(2, 3, 4).t()


@pytest.mark.parametrize("src, dst", [(0, 2), (-1, 0), ((0, 1), (2, 0)), ((1,), (1,))])
def test_movedim(src, dst):
    check_op(lambda x: x.movedim(src, dst), [(2, 3, 4)])
    check_op(lambda x: ember.moveaxis(x, src, dst), [(2, 3, 4)],
             torch_fn=lambda x: torch.moveaxis(x, src, dst))


# ---- slicing and splitting -----------------------------------------------------------------


@pytest.mark.parametrize("args", [(0, 1, 2), (1, 0, 3), (-1, -2, 2), (1, 3, 0)])
def test_narrow(args):
    check_op(lambda x: x.narrow(*args), [(3, 3)])
    check_op(lambda x: ember.narrow(x.mT, *args), [(3, 3)],
             torch_fn=lambda x: torch.narrow(x.mT, *args))


@pytest.mark.parametrize("arg, dim", [(2, 0), (2, 1), ([1, 3], 1), ([0, 3, 1], -1), (5, 0)])
def test_split(arg, dim):
    check_op(lambda x: x.split(arg, dim), [(3, 4)])
    check_op(lambda x: ember.split(x.mT, arg, dim), [(4, 3)],
             torch_fn=lambda x: torch.split(x.mT, arg, dim))


def test_split_with_unused_pieces_and_empty():
    check_op(lambda x: x.split(2)[1] * 3.0, [(5, 2)])
    check_op(lambda x: x.split(2), [(0, 2)])
    with pytest.raises(errors.ShapeError, match=r"split: split sizes \[2, 2\] must be .* sum to 5"):
        ember.ones(5).split([2, 2])


@pytest.mark.parametrize("chunks, shape", [(3, (5, 2)), (4, (6,)), (2, (1, 3)), (3, (0,))])
def test_chunk(chunks, shape):
    check_op(lambda x: x.chunk(chunks), [shape])
    check_op(lambda x: ember.chunk(x, chunks, -1), [shape],
             torch_fn=lambda x: torch.chunk(x, chunks, -1))


@pytest.mark.parametrize("arg", [3, 4, [1, 4], [3, 1], [-2, 8], []])
def test_tensor_split(arg):
    check_op(lambda x: ember.tensor_split(x, arg), [(6, 2)],
             torch_fn=lambda x: torch.tensor_split(x, arg))
    check_op(lambda x: x.tensor_split(arg, 1), [(2, 6)])


def test_hsplit_vsplit():
    check_op(lambda x: ember.hsplit(x, 2), [(2, 4)], torch_fn=lambda x: torch.hsplit(x, 2))
    check_op(lambda x: ember.vsplit(x, [1]), [(3, 4)], torch_fn=lambda x: torch.vsplit(x, [1]))


@pytest.mark.parametrize("shape, dim", [((3, 2), 0), ((3, 2), -1), ((1,), 0), ((2, 0), 0)])
def test_unbind(shape, dim):
    check_op(lambda x: x.unbind(dim), [shape])
    if len(shape) == 2:
        check_op(lambda x: ember.unbind(x.mT, dim), [shape[::-1]],
                 torch_fn=lambda x: torch.unbind(x.mT, dim))


# ---- joining -------------------------------------------------------------------------------


@pytest.mark.parametrize("shapes, dim", [
    ([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 0)], 1), ([(2, 3), (2, 3)], -1),
    ([(3,)], 0), ([(0, 2), (1, 2)], 0), ([(2, 3), (0,)], 1),
])
def test_cat(shapes, dim):
    check_op(lambda *xs: ember.cat(xs, dim), shapes, torch_fn=lambda *xs: torch.cat(xs, dim))
    check_op(lambda *xs: ember.concat(list(xs), dim=dim), shapes,
             torch_fn=lambda *xs: torch.concat(list(xs), dim=dim))


def test_cat_noncontiguous_promotes_and_float32():
    check_op(lambda a, b: ember.cat([a.mT, b], 0), [(3, 2), (1, 3)],
             torch_fn=lambda a, b: torch.cat([a.mT, b], 0))
    check_op(lambda a, b: ember.cat([a, b], 1), [(2, 2), (2, 3)], dtype=numpy.float32,
             torch_fn=lambda a, b: torch.cat([a, b], 1))
    x = ember.cat([ember.ones(2, dtype=ember.float32), ember.ones(1, dtype=ember.int64)])
    assert x.dtype == ember.float32


@pytest.mark.parametrize("shape, dim", [
    ((2, 3), 0), ((2, 3), 2), ((2, 3), -1), ((), 0), ((0, 2), 1),
])
def test_stack(shape, dim):
    check_op(lambda a, b: ember.stack([a, b], dim), [shape, shape],
             torch_fn=lambda a, b: torch.stack([a, b], dim))


def test_stack_noncontiguous_float32():
    check_op(lambda a, b: ember.stack((a.mT, b), 1), [(3, 2), (2, 3)], dtype=numpy.float32,
             torch_fn=lambda a, b: torch.stack((a.mT, b), 1))


@pytest.mark.parametrize("name", ["hstack", "vstack", "dstack", "column_stack"])
@pytest.mark.parametrize("shapes", [
    [(3,), (3,)], [(2, 3), (2, 3)], [(), ()], [(2, 1, 2), (2, 1, 2)],
])
def test_hstack_vstack_dstack(name, shapes):
    if name == "column_stack" and len(shapes[0]) == 3:
        return
    check_op(lambda a, b: getattr(ember, name)([a, b]), shapes,
             torch_fn=lambda a, b: getattr(torch, name)([a, b]))


# ---- flip, roll, rot90 ---------------------------------------------------------------------


@pytest.mark.parametrize("shape, dims", [
    ((2, 3), (0,)), ((2, 3, 4), (0, 2)), ((), ()), ((0, 2), (1,)), ((2, 3), (-1, 0)),
])
def test_flip(shape, dims):
    check_op(lambda x: x.flip(dims), [shape])
    if len(shape) >= 2:
        check_op(lambda x: ember.flip(x.mT, dims), [shape],
                 torch_fn=lambda x: torch.flip(x.mT, dims))


def test_fliplr_flipud_rot90():
    check_op(lambda x: x.fliplr(), [(2, 3)])
    check_op(lambda x: ember.flipud(x), [(2, 3)], torch_fn=torch.flipud)
    for k in (0, 1, 2, 3, -1, 5):
        check_op(lambda x: x.rot90(k), [(2, 3)])
        check_op(lambda x: ember.rot90(x, k, (2, 0)), [(2, 3, 4)],
                 torch_fn=lambda x: torch.rot90(x, k, (2, 0)))


@pytest.mark.parametrize("shifts, dims", [(1, 0), (-1, 1), ((1, 2), (0, 1)), (4, None), (7, -1),
                                          (2, (1,))])
def test_roll(shifts, dims):
    check_op(lambda x: x.roll(shifts, dims), [(3, 4)])
    check_op(lambda x: ember.roll(x.mT, shifts, dims), [(4, 3)],
             torch_fn=lambda x: torch.roll(x.mT, shifts, dims))
    check_op(lambda x: x.roll(shifts, dims), [(0, 4)])


def test_flip_and_roll_copy():
    x = ember.arange(6.0).reshape(2, 3)
    y = x.flip(0)
    assert y._base is None and not numpy.shares_memory(x.numpy(), y.numpy())
    assert not numpy.shares_memory(x.numpy(), x.roll(1).numpy())


# ---- triangles and diagonals ---------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, -1, 5, -5])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 3), (0, 2)])
def test_tril_triu(k, shape):
    check_op(lambda x: x.tril(k), [shape])
    check_op(lambda x: ember.triu(x, k), [shape], torch_fn=lambda x: torch.triu(x, k))
    check_op(lambda x: x.mT.triu(diagonal=k), [shape])


@pytest.mark.parametrize("args", [(), (1,), (-1,), (0, 0, 2), (1, 2, 0), (-1, -1, 0), (5,)])
def test_diagonal(args):
    check_op(lambda x: x.diagonal(*args), [(3, 4, 3)])
    check_op(lambda x: ember.diagonal(x.mT, *args), [(3, 4, 3)],
             torch_fn=lambda x: torch.diagonal(x.mT, *args))


@pytest.mark.parametrize("shape, k", [((3,), 0), ((3,), 1), ((3,), -2), ((3, 4), 0), ((3, 4), 2),
                                      ((3, 4), -1), ((0,), 0)])
def test_diag(shape, k):
    check_op(lambda x: x.diag(k), [shape])


@pytest.mark.parametrize("args", [(), (1,), (-1, 0, 2), (0, 2, 0)])
def test_diag_embed(args):
    check_op(lambda x: x.diag_embed(*args), [(2, 3)])


def test_contiguous():
    x = ember.randn(2, 3)
    assert x.contiguous() is x
    y = x.mT.contiguous()
    assert y.is_contiguous() and y.shape == (3, 2)
    check_op(lambda x: x.mT.contiguous(), [(2, 3)])


# ---- pad -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, pad", [
    ((3,), (1, 2)), ((2, 3), (0, 1, 2, 0)), ((2, 3), (-1, 1)), ((2, 3), (1, -2, -1, 0)),
    ((), ()), ((0, 2), (1, 1, 1, 0)), ((2, 3), (0, 0)), ((1, 2, 3), (1, 1, 1, 1, 1, 1)),
])
def test_pad_constant(shape, pad):
    check_op(lambda x: ember.pad(x, pad), [shape], torch_fn=lambda x: F.pad(x, pad))
    check_op(lambda x: ember.pad(x, pad, value=1.5), [shape],
             torch_fn=lambda x: F.pad(x, pad, value=1.5))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", [
    ((2, 4), (2, 1)), ((1, 2, 4), (1, 3)), ((1, 3, 4), (1, 2, 2, 0)), ((2, 3, 4), (0, 1, 1, 1)),
    ((1, 1, 2, 3, 3), (1, 1, 0, 2, 1, 1)), ((1, 2, 4), (-1, 2)),
])
def test_pad_modes(mode, shape, pad):
    check_op(lambda x: ember.pad(x, pad, mode=mode), [shape],
             torch_fn=lambda x: F.pad(x, pad, mode=mode))
    check_op(lambda x: ember.pad(x.mT, pad, mode=mode), [shape[:-2] + shape[:-3:-1]],
             torch_fn=lambda x: F.pad(x.mT, pad, mode=mode))


def test_pad_float32_and_int():
    check_op(lambda x: ember.pad(x, (1, 2), mode="reflect"), [(2, 5)], dtype=numpy.float32,
             torch_fn=lambda x: F.pad(x, (1, 2), mode="reflect"))
    x = ember.arange(6).reshape(2, 3)
    numpy.testing.assert_array_equal(ember.pad(x, (1, 1), value=7).numpy(),
                                     F.pad(torch.arange(6).reshape(2, 3), (1, 1), value=7).numpy())


def test_pad_errors():
    x = ember.ones(2, 3)
    with pytest.raises(ValueError, match="pad: the pad tuple \\(1,\\) must have an even length"):
        ember.pad(x, (1,))
    with pytest.raises(errors.ShapeError, match=r"pad: 6 pad sizes pad 3 dims, but the input of "
                       r"shape \(2, 3\) has only 2"):
        ember.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(errors.ShapeError, match=r"mode 'reflect' needs each pad size smaller than "
                       r"the padded dim, got pad \(3, 1\) for dim 1 of size 3"):
        ember.pad(x, (3, 1), mode="reflect")
    with pytest.raises(errors.ShapeError, match=r"circular.*at most the padded dim"):
        ember.pad(x, (4, 1), mode="circular")
    with pytest.raises(errors.ShapeError, match=r"mode 'replicate' pads the last 1, 2 or 3 dims"):
        ember.pad(ember.ones(3), (1, 1), mode="replicate")
    with pytest.raises(ValueError, match="pad: mode must be one of"):
        ember.pad(x, (1, 1), mode="wrap")
    with pytest.raises(errors.ShapeError, match="negative size"):
        ember.pad(x, (-3, -1))


# ---- views share storage and version -------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda x: x.reshape(3, 4), lambda x: x.view(-1), lambda x: x.mT, lambda x: x.T,
    lambda x: x.permute(1, 0), lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(1).squeeze(1),
    lambda x: x.flatten(), lambda x: x.narrow(1, 1, 2), lambda x: x.split(2, 1)[1],
    lambda x: x.chunk(2)[1], lambda x: x.unbind(1)[2], lambda x: x.diagonal(),
    lambda x: x.movedim(0, 1), lambda x: x.transpose(0, 1).reshape(4, 3),
    lambda x: x.unflatten(1, (2, 2)), lambda x: x.tensor_split(2, 1)[0],
])
def test_views_share_storage_and_version(make):
    x = ember.arange(12.0).reshape(4, 3).contiguous().reshape(3, 4)
    v = make(x)
    assert v._version is x._version
    before = x.numpy().copy()
    v.numpy()[...] = -1.0
    changed = x.numpy() != before
    assert changed.sum() == v.numel()
    x._bump_version()
    assert v._version_count == x._version_count


def test_reshape_copy_is_not_a_view():
    x = ember.randn(3, 4)
    y = x.mT.reshape(-1)
    assert y._base is None and y._version is not x._version
    for y in (x.flip(0), x.roll(1, 0), ember.cat([x, x]), ember.stack([x]), ember.pad(x, (1, 1)),
              x.tril(), x.repeat(2, 1), x.mT.contiguous(), x.diag()):
        assert y._base is None and not numpy.shares_memory(y.numpy(), x.numpy())


def test_view_of_view_points_at_storage_owner():
    x = ember.randn(2, 3)
    v = x.mT.reshape(3, 2).unsqueeze(0)
    assert v._base is x


def test_saved_view_modified_in_place_is_detected():
    x = ember.randn(2, 3, requires_grad=True)
    y = x * 1.0
    v = y.reshape(6)
    z = v * v
    with ember.no_grad():
        y.numpy(force=True)[...] = 0.0
        y._bump_version()
    with pytest.raises(errors.AutogradError, match="modified by an in-place operation"):
        z.sum().backward()


# ---- double backward -----------------------------------------------------------------------


@pytest.mark.parametrize("fn, shapes", [
    (lambda x: (x.reshape(3, 2) ** 2).exp(), [(2, 3)]),
    (lambda x: (x.permute(2, 0, 1) ** 2).exp(), [(2, 1, 3)]),
    (lambda x: (x.expand(3, 2) ** 2), [(1, 2)]),
    (lambda x: x.flip(0) * x, [(2, 3)]),
    (lambda x: x.roll((1, 1), (0, 1)) * x, [(2, 3)]),
    (lambda x: x.tril(-1) * x, [(3, 3)]),
    (lambda x: x.triu(1) * x, [(2, 3, 3)]),
    (lambda a, b: ember.cat([a, b], 1) ** 2, [(2, 1), (2, 2)]),
    (lambda a, b: ember.stack([a, b], 1) ** 2, [(2, 2), (2, 2)]),
    (lambda x: ember.stack(x.split(1, 1)[::-1]) ** 2, [(2, 3)]),
    (lambda x: ember.stack(x.unbind(0), 1) ** 2, [(2, 3)]),
    (lambda x: x.narrow(1, 1, 2) ** 2, [(2, 3)]),
    (lambda x: x.diagonal() ** 2 + x.diag_embed().sum(0), [(3, 3)]),
    (lambda x: x.repeat(2, 1) ** 2, [(1, 3)]),
    (lambda x: ember.pad(x, (1, 2, -1, 1), value=0.5) ** 2, [(2, 3)]),
    (lambda x: ember.pad(x, (2, 1), mode="reflect") ** 2, [(1, 3)]),
    (lambda x: ember.pad(x, (2, 1, 1, 1), mode="replicate") ** 2, [(1, 2, 2)]),
    (lambda x: ember.pad(x, (2, 1), mode="circular") ** 2, [(1, 3)]),
])
def test_double_backward(fn, shapes):
    check_double_backward(fn, shapes)


# ---- error messages ------------------------------------------------------------------------


def test_reshape_error_names_both_shapes():
    with pytest.raises(errors.ShapeError, match=r"reshape: cannot reshape a tensor of shape "
                       r"\(2, 3\) \(6 elements\) into \(4, 2\)"):
        ember.ones(2, 3).reshape(4, 2)


def test_view_error_on_incompatible_strides():
    with pytest.raises(errors.ShapeError, match=r"view: .*shape \(3, 2\).*cannot be viewed as "
                       r"\(6,\) without copying.*\.reshape"):
        ember.ones(2, 3).mT.view(6)
    assert ember.ones(2, 3).mT.view(3, 2).shape == (3, 2)


def test_cat_and_stack_errors():
    with pytest.raises(errors.ShapeError, match=r"cat: tensors must have the same shape except in "
                       r"dim 1, got \(2, 3\) at index 0 and \(3, 3\) at index 1"):
        ember.cat([ember.ones(2, 3), ember.ones(3, 3)], 1)
    with pytest.raises(errors.ShapeError, match=r"got \(2, 3\) at index 0 and \(3,\) at index 1"):
        ember.cat([ember.ones(2, 3), ember.ones(3)])
    with pytest.raises(errors.ShapeError, match="cat: zero-dimensional tensor at index 0"):
        ember.cat([ember.ones(()), ember.ones(())])
    with pytest.raises(ValueError, match="cat: expected a non-empty list"):
        ember.cat([])
    with pytest.raises(TypeError, match="cat: expected a list or tuple of tensors"):
        ember.cat(ember.ones(2))
    with pytest.raises(errors.ShapeError, match=r"stack: expects tensors of equal shape, got "
                       r"\(2, 3\) at index 0 and \(3, 2\) at index 1"):
        ember.stack([ember.ones(2, 3), ember.ones(3, 2)])


def test_expand_and_permute_errors():
    with pytest.raises(errors.ShapeError, match=r"expand: the expanded size 4 must match the "
                       r"existing size 3 at non-singleton dim 1"):
        ember.ones(2, 3).expand(2, 4)
    with pytest.raises(errors.ShapeError, match=r"expand: size -1 is not allowed for the new "
                       r"leading dim 0"):
        ember.ones(2, 3).expand(-1, 2, 3)
    with pytest.raises(errors.ShapeError, match=r"broadcast_to: cannot broadcast shape \(2, 3\) to "
                       r"\(4,\)"):
        ember.ones(2, 3).broadcast_to((4,))
    with pytest.raises(errors.ShapeError, match="permute: got 2 dims"):
        ember.ones(2, 3, 4).permute(0, 1)
    with pytest.raises(ValueError, match="not a permutation"):
        ember.ones(2, 3).permute(0, 0)
    with pytest.raises(IndexError, match="transpose: dimension 2 is out of range"):
        ember.ones(2, 3).transpose(0, 2)


def test_split_narrow_flip_roll_tril_errors():
    with pytest.raises(IndexError, match=r"narrow: start \(2\) \+ length \(2\) exceeds dim 1 of "
                       r"size 3"):
        ember.ones(2, 3).narrow(1, 2, 2)
    with pytest.raises(ValueError, match="flip: dim appears more than once"):
        ember.ones(2, 3).flip((0, 0))
    with pytest.raises(ValueError, match="roll: shifts .* and dims .* must have the same length"):
        ember.ones(2, 3).roll((1, 2), 0)
    with pytest.raises(errors.ShapeError, match=r"tril: input must have at least 2 dimensions, got "
                       r"shape \(3,\)"):
        ember.ones(3).tril()
    with pytest.raises(errors.ShapeError, match=r"diag: expects a 1-D or 2-D tensor"):
        ember.ones(2, 2, 2).diag()
    with pytest.raises(ValueError, match="split: split_size must be positive"):
        ember.ones(3).split(0)
