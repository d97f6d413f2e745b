"""Views and shape changes: reshape/view/flatten/squeeze, broadcast/expand/repeat,
permute/transpose/movedim, narrow, contiguous, and moving a tensor between devices.

View ops return tensors that share storage (and the version counter) with their input, as
PyTorch's do, so writes through a view show in the base (``_as_view``, used by every family
that returns views). The primitives with a hand-written backward here are reshape, broadcast,
permute, and slicing with its inverse embedding; everything else is composed from them, and
every backward is written with these same ops, so higher-order gradients work.

The other movement ops live beside this file: ``join.py`` (cat/stack and split/chunk/unbind),
``reorder.py`` (flip/roll/rot90), ``diagonals.py`` (tril/triu, diagonal/diag/diag_embed) and
``pad.py``. Every name they define is also bound here (end of file), so ``shape.cat`` and
``shape.pad`` keep working.
"""

import numpy

from ember import errors
from ember.autograd.function import Function, _Tracing
from ember.ops import _common, diagonals, join, reorder
from ember.ops import pad as pad_ops
from ember.tensor import Tensor

_ndarray = numpy.ndarray
_make = Tensor._make

_shape_str = errors.shape_str


def _owner(array):
    """The array that owns ``array``'s memory (NumPy and CuPy both keep ``.base``)."""
    while True:
        base = getattr(array, "base", None)  # as_strided's results hold a DummyArray: go on
        if base is None:
            return array
        array = base


def _as_view(out, base):
    """Mark ``out`` as a view of ``base`` when it shares base's memory: same version counter,
    and ``_base`` pointing at the tensor that owns the storage."""
    data, base_data = out._data, base._data
    # data.base is base_data: the usual view of an array that owns its memory, found
    # without walking both chains.
    if data is base_data or data.base is base_data or _owner(data) is _owner(base_data):
        out._version = base._version
        out._base = base if base._base is None else base._base
    return out


def _shape_arg(shape, who):
    """``f(x, 2, 3)`` and ``f(x, (2, 3))`` both give (2, 3)."""
    if len(shape) == 1:
        first = shape[0]
        if type(first) is int:  # f(x, -1): NOTE (measured) 0.12 vs 0.22 us through the loop
            return shape
        if isinstance(first, (tuple, list)):
            shape = tuple(first)
    for s in shape:  # NOTE: Python ints need no int() pass (~0.5 us off x.reshape(-1))
        if type(s) is not int:
            break
    else:
        return shape
    try:
        return tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{who}: sizes must be integers, got {shape!r}") from None


def _dim(dim, ndim, who):
    return _common.normalize_dim(int(dim), ndim, who)


# ---- reshape and friends -------------------------------------------------------------------


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, gy):
        if not _common._State.enabled:  # no graph to record: reshape the array (~2.5 us less)
            return _common.constant(gy._data.reshape(ctx.in_shape))
        return reshape(gy, ctx.in_shape)


def reshape(input, *shape):
    """The same values in a new shape; one dim may be -1. Shares memory when it can."""
    shape = _shape_arg(shape, "reshape")
    data = input._data
    if data.shape == shape:
        return input
    # NOTE (measured, `python bench/overhead.py --repeats 9 --threads 1 --clock cpu`, HEAD vs this):
    # the no-graph fast path and the single-int shape check in _shape_arg took reshape fwd from
    # 2.5-3.2 us (1.55-1.60x PyTorch) to 1.6-2.5 us (0.71-0.90x).
    try:
        if type(data) is _ndarray and _Tracing.tracer is None \
                and not (input._rg and _common._State.enabled):  # no-graph fast path
            out = _make(data.reshape(shape), False, None, 0)  # (autograd/function.py)
        else:
            out = Reshape.apply(input, shape)
    except ValueError:
        raise errors.ShapeError(
            f"reshape: cannot reshape a tensor of shape {_shape_str(input.shape)} "
            f"({input.numel()} elements) into {_shape_str(shape)}; the number of elements "
            "must stay the same (use -1 for one dim to have it inferred)"
        ) from None
    return _as_view(out, input)


def view(input, *shape):
    """Like reshape, but never copies: raises when the input's strides do not allow the new
    shape (e.g. flattening a transposed matrix), like PyTorch."""
    out = reshape(input, *shape)
    if out is not input and out._base is None and input.numel() > 0:
        raise errors.ShapeError(
            f"view: a tensor of shape {_shape_str(input.shape)} and strides {input.stride()} "
            f"cannot be viewed as {_shape_str(_shape_arg(shape, 'view'))} without copying (it "
            "is not contiguous, e.g. after transpose); use .reshape(...) or call "
            ".contiguous() first"
        )
    return out


def view_as(input, other):
    return view(input, tuple(other.shape))


def reshape_as(input, other):
    return reshape(input, tuple(other.shape))


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dims ``start_dim..end_dim`` into one (a 0-d tensor becomes shape (1,))."""
    n = input.ndim
    if n == 0:
        return reshape(input, (1,))
    s = _dim(start_dim, n, "flatten")
    e = _dim(end_dim, n, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = input.shape
    return reshape(input, shape[:s] + (_prod(shape[s:e + 1]),) + shape[e + 1:])


def ravel(input):
    """A 1-D tensor of the elements (a view when the input is contiguous)."""
    return reshape(input, (-1,))


def unflatten(input, dim, sizes):
    """Split dim ``dim`` into ``sizes`` (one of which may be -1)."""
    d = _dim(dim, input.ndim, "unflatten")
    sizes = _shape_arg((sizes,), "unflatten")
    if not sizes:
        raise ValueError("unflatten: sizes must be non-empty")
    known = _prod(s for s in sizes if s != -1)
    have = input.shape[d]
    if (-1 not in sizes and known != have) or (-1 in sizes and (known == 0 or have % known)):
        raise errors.ShapeError(
            f"unflatten: sizes {sizes} do not multiply to {have}, the size of dim {dim} of a "
            f"tensor of shape {_shape_str(input.shape)}"
        )
    return reshape(input, input.shape[:d] + sizes + input.shape[d + 1:])


def squeeze(input, dim=None):
    """Drop dims of size 1 (all of them, or those among ``dim``, an int or a tuple)."""
    shape = input.shape
    dims = _common.normalize_dims(dim, input.ndim, "squeeze")
    keep = tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))
    return reshape(input, keep)


def unsqueeze(input, dim):
    """Insert a dim of size 1 at ``dim`` (in [-ndim-1, ndim])."""
    d = _common.normalize_dim(int(dim), input.ndim + 1, "unsqueeze")
    shape = input.shape
    return reshape(input, shape[:d] + (1,) + shape[d:])


def atleast_1d(*tensors):
    return _atleast(tensors, 1)


def atleast_2d(*tensors):
    return _atleast(tensors, 2)


def atleast_3d(*tensors):
    return _atleast(tensors, 3)


def _atleast(tensors, n):
    single = len(tensors) == 1 and isinstance(tensors[0], Tensor)
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    out = []
    for t in tensors:
        if t.ndim < n:
            # PyTorch's rules: 1-D (k,) -> (1, k) -> (1, k, 1); 2-D (a, b) -> (a, b, 1).
            shape = tuple(t.shape)
            if n == 3 and t.ndim == 2:
                shape = shape + (1,)
            elif n == 3:
                shape = (1,) + (shape or (1,)) + (1,)
            else:
                shape = (1,) * (n - t.ndim) + shape
            t = reshape(t, shape)
        out.append(t)
    return out[0] if single else tuple(out)


# ---- broadcasting --------------------------------------------------------------------------


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return ctx.xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, gy):
        from ember.ops import reduce  # noqa: PLC0415

        return reduce.sum_to(gy, ctx.in_shape)


def broadcast_shapes(*shapes):
    """The shape that tensors of ``shapes`` broadcast to (sizes equal or 1, right-aligned)."""
    shapes = [(int(s),) if isinstance(s, int) else tuple(s) for s in shapes]
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, size in enumerate(s, ndim - len(s)):
            if size != out[i] and out[i] != 1 and size != 1:
                raise errors.ShapeError(
                    "broadcast_shapes: shapes "
                    + " and ".join(_shape_str(x) for x in shapes)
                    + " cannot be broadcast together (sizes must match or be 1, aligned from "
                    "the right)"
                )
            if out[i] == 1:
                out[i] = size
    return tuple(out)


def broadcast_to(input, *shape):
    """A read-only broadcast view of ``input`` with ``shape``."""
    shape = _shape_arg(shape, "broadcast_to")
    if tuple(input._data.shape) == shape:
        return input
    try:
        out = BroadcastTo.apply(input, shape)
    except ValueError:
        raise errors.ShapeError(
            f"broadcast_to: cannot broadcast shape {_shape_str(input.shape)} to "
            f"{_shape_str(shape)}; each dim must match or be 1 (aligned from the right)"
        ) from None
    return _as_view(out, input)


def expand(input, *sizes):
    """Broadcast to ``sizes`` (a view); -1 keeps a dimension's size."""
    sizes = _shape_arg(sizes, "expand")
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise errors.ShapeError(
            f"expand: got {len(sizes)} sizes {sizes} for a tensor with {input.ndim} "
            f"dimensions (shape {_shape_str(input.shape)}); give at least one size per dim"
        )
    shape = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise errors.ShapeError(
                    f"expand: size {s} is not allowed for the new leading dim {i} (sizes "
                    f"{sizes}); -1 only keeps an existing dim's size"
                )
            shape.append(s)
            continue
        have = input.shape[i - lead]
        if s == -1:
            s = have
        elif have != 1 and s != have:
            raise errors.ShapeError(
                f"expand: the expanded size {s} must match the existing size {have} at "
                f"non-singleton dim {i}; target sizes {sizes}, tensor shape "
                f"{_shape_str(input.shape)}"
            )
        shape.append(s)
    return broadcast_to(input, tuple(shape))


def expand_as(input, other):
    return expand(input, tuple(other.shape))


def broadcast_tensors(*tensors):
    """Views of ``tensors`` broadcast to one common shape."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(broadcast_to(t, shape) for t in tensors)


def _repeat(input, *sizes):
    """Tile the tensor ``sizes[i]`` times along dim i (``Tensor.repeat``; a copy)."""
    sizes = _shape_arg(sizes, "repeat")
    if len(sizes) < input.ndim:
        raise errors.ShapeError(
            f"repeat: got {len(sizes)} repeat counts {sizes} for a tensor with {input.ndim} "
            "dims; give at least one per dim"
        )
    if any(s < 0 for s in sizes):
        raise ValueError(f"repeat: repeat counts must be non-negative, got {sizes}")
    shape = (1,) * (len(sizes) - input.ndim) + tuple(input.shape)
    # Interleave a broadcast axis before each dim: (r0, s0, r1, s1, ...) then merge pairs.
    paired = tuple(v for s in shape for v in (1, s))
    target = tuple(v for r, s in zip(sizes, shape) for v in (r, s))
    x = broadcast_to(reshape(input, paired), target)
    return reshape(x, tuple(r * s for r, s in zip(sizes, shape)))


def tile(input, dims):
    """Like ``Tensor.repeat``, but fewer ``dims`` than tensor dims are padded with 1s."""
    dims = _shape_arg((dims,), "tile")
    dims = (1,) * (input.ndim - len(dims)) + dims
    return _repeat(input, dims)


# ---- transposition -------------------------------------------------------------------------


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, gy):
        inverse = [0] * len(ctx.axes)
        for i, a in enumerate(ctx.axes):
            inverse[a] = i
        return permute(gy, tuple(inverse))


def permute(input, *dims):
    """Reorder dimensions (a view): ``permute(x, (2, 0, 1))``."""
    dims = _shape_arg(dims, "permute")
    n = input.ndim
    if len(dims) != n:
        raise errors.ShapeError(
            f"permute: got {len(dims)} dims {dims} for a tensor with {n} dimensions "
            f"(shape {_shape_str(input.shape)}); give each dim exactly once"
        )
    dims = tuple(_common.normalize_dim(d, n, "permute") for d in dims)
    if sorted(dims) != list(range(n)):
        raise ValueError(f"permute: dims {dims} are not a permutation of 0..{n - 1}")
    if dims == tuple(range(n)):
        return input
    return _as_view(Permute.apply(input, dims), input)


def transpose(input, dim0, dim1):
    """Swap two dimensions (a view)."""
    n = input.ndim
    d0 = _common.normalize_dim(int(dim0), n, "transpose")
    d1 = _common.normalize_dim(int(dim1), n, "transpose")
    if d0 == d1:
        return input
    axes = list(range(n))
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return permute(input, tuple(axes))


swapaxes = transpose
swapdims = transpose


def t(input):
    """Transpose a tensor of at most 2 dims (0-d and 1-d come back as they are)."""
    if input.ndim > 2:
        raise errors.ShapeError(
            f"t: expects a tensor with <= 2 dimensions, got shape {_shape_str(input.shape)}; "
            "use transpose(dim0, dim1) or .mT for batches of matrices"
        )
    return transpose(input, 0, -1) if input.ndim == 2 else input


def adjoint(input):
    """The conjugate transpose of the last two dims (for real tensors, ``.mT``)."""
    return _matrix_transpose(input, "adjoint")


def _matrix_transpose(input, who="mT"):
    if input.ndim < 2:
        raise errors.ShapeError(
            f"{who}: only supported on matrices or batches of matrices, got a {input.ndim}-D "
            f"tensor of shape {_shape_str(input.shape)}"
        )
    return transpose(input, -2, -1)


def _reverse_dims(input):
    """``Tensor.T``: all dims reversed."""
    return permute(input, tuple(reversed(range(input.ndim))))


def movedim(input, source, destination):
    """Move dims ``source`` to positions ``destination`` (ints or sequences); others keep order."""
    n = input.ndim
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError(
            f"movedim: source {src} and destination {dst} must have the same number of dims"
        )
    src = [_dim(d, n, "movedim") for d in src]
    dst = [_dim(d, n, "movedim") for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"movedim: repeated dim in source {src} or destination {dst}")
    rest = iter(d for d in range(n) if d not in src)
    placed = dict(zip(dst, src))
    return permute(input, tuple(placed[i] if i in placed else next(rest) for i in range(n)))


moveaxis = movedim


# ---- slicing -------------------------------------------------------------------------------


class _Slice(Function):
    """``x[index]`` for a tuple of ints and slices (a view); the gradient is embedded back."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.in_shape = x.shape
        ctx.index = index
        return x[index]

    @staticmethod
    def backward(ctx, gy):
        return _Embed.apply(gy, ctx.in_shape, ctx.index, 0)


class _Embed(Function):
    """An array of ``shape`` filled with ``value``, with ``g`` written at ``index``: the
    gradient of slicing, and constant padding. Its own gradient is slicing again."""

    @staticmethod
    def forward(ctx, g, shape, index, value):
        ctx.index = index
        xp = ctx.xp
        out = xp.zeros(shape, g.dtype) if value == 0 else xp.full(shape, value, g.dtype)
        out[index] = g
        return out

    @staticmethod
    def backward(ctx, gy):
        return _Slice.apply(gy, ctx.index)


def _slice(input, index):
    return _as_view(_Slice.apply(input, index), input)


def narrow(input, dim, start, length):
    """The view ``input[..., start:start+length, ...]`` along ``dim``; ``start`` may be < 0."""
    d = _dim(dim, input.ndim, "narrow")
    size = input.shape[d]
    start, length = int(start), int(length)
    if not -size <= start <= size:
        raise IndexError(
            f"narrow: start {start} is out of range for dim {dim} of size {size} (shape "
            f"{_shape_str(input.shape)})"
        )
    start %= max(size, 1) if start < 0 else size + 1
    if length < 0 or start + length > size:
        raise IndexError(
            f"narrow: start ({start}) + length ({length}) exceeds dim {dim} of size {size} "
            f"(shape {_shape_str(input.shape)})"
        )
    return _slice(input, (slice(None),) * d + (slice(start, start + length),))


# ---- copies ---------------------------------------------------------------------------------


class _Contiguous(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, gy):
        return gy


def contiguous(input, memory_format=None):
    """``input`` itself when its memory is C-contiguous, else a C-contiguous copy."""
    if input._data.flags.c_contiguous:
        return input
    return _Contiguous.apply(input)


# ---- devices -------------------------------------------------------------------------------


class ToDevice(Function):
    @staticmethod
    def forward(ctx, x, device):
        ctx.src = "cpu" if type(x).__module__ == "numpy" else "cuda"
        if device.type == "cpu":
            return x.get() if hasattr(x, "get") else x
        return device.xp.asarray(x)

    @staticmethod
    def backward(ctx, gy):
        return gy.to(ctx.src)


def to_device(input, device):
    return ToDevice.apply(input, device)


def _prod(values):
    n = 1
    for v in values:
        n *= v
    return n


TENSOR_METHODS = {
    "reshape": reshape, "view": view, "view_as": view_as, "reshape_as": reshape_as,
    "flatten": flatten, "unflatten": unflatten, "ravel": ravel,
    "squeeze": squeeze, "unsqueeze": unsqueeze,
    "broadcast_to": broadcast_to, "expand": expand, "expand_as": expand_as,
    "repeat": _repeat, "tile": tile,
    "permute": permute, "transpose": transpose, "swapaxes": swapaxes, "swapdims": swapdims,
    "t": t, "adjoint": adjoint, "movedim": movedim, "moveaxis": moveaxis,
    "T": property(_reverse_dims), "mT": property(_matrix_transpose),
    "mH": property(_matrix_transpose),
    "narrow": narrow, "contiguous": contiguous,
}


# ---- names defined in the sibling modules ----------------------------------------------------
# Every public name of join.py, reorder.py, diagonals.py and pad.py is bound here too: they
# were defined in this file before it was split, and code across ember reads them as
# ``shape.NAME`` / ``shape_ops.NAME``.

_common.reexport(globals(), join, reorder, diagonals, pad_ops)
