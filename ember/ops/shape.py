"""Shape and movement ops: reshape/view, broadcast, transpose/permute, cat/stack/split, pad...

View ops return tensors that share storage (and the version counter) with their input, as
PyTorch's do, so writes through a view show in the base. Ops that PyTorch documents as copies
(flip, roll, cat, pad, tril) return fresh arrays.

Few primitives carry a hand-written backward here (reshape, broadcast, permute, slicing and
its inverse embedding, gather/scatter along a dim, cat/split, stack/unbind, flip, roll, tril,
diagonal); everything else is composed from them, and every backward is written with these
same ops, so higher-order gradients work.
"""

from ember import dtypes, errors
from ember.autograd.function import Function
from ember.ops import _common
from ember.tensor import Tensor

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
    if out._data is base._data or _owner(out._data) is _owner(base._data):
        out._version = base._version
        out._base = base if base._base is None else base._base
    return out


def _shape_arg(shape, who):
    """``f(x, 2, 3)`` and ``f(x, (2, 3))`` both give (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
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
        return reshape(gy, ctx.in_shape)


def reshape(input, *shape):
    """The same values in a new shape; one dim may be -1. Shares memory when it can."""
    shape = _shape_arg(shape, "reshape")
    if tuple(input._data.shape) == shape:
        return input
    try:
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


# ---- slicing: narrow, split, chunk, unbind -------------------------------------------------


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


class _Split(Function):
    """Consecutive pieces of ``sizes`` along ``dim`` (views); the gradient is their cat."""

    @staticmethod
    def forward(ctx, x, dim, sizes):
        ctx.dim = dim
        lead = (slice(None),) * dim
        out = []
        start = 0
        for s in sizes:
            out.append(x[lead + (slice(start, start + s),)])
            start += s
        return tuple(out)

    @staticmethod
    def backward(ctx, *gys):
        return cat(gys, ctx.dim)


def _split_sizes(input, sizes, d, who):
    size = input.shape[d]
    if sum(sizes) != size or any(s < 0 for s in sizes):
        raise errors.ShapeError(
            f"{who}: split sizes {list(sizes)} must be non-negative and sum to {size}, the size "
            f"of dim {d} of a tensor of shape {_shape_str(input.shape)}"
        )
    outs = _Split.apply(input, d, tuple(sizes))
    return tuple(_as_view(o, input) for o in outs)


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the listed sizes."""
    d = _dim(dim, tensor.ndim, "split")
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
    else:
        step = int(split_size_or_sections)
        if step <= 0 and size:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, size - i) for i in range(0, size, step)] if size else [0]
    return _split_sizes(tensor, sizes, d, "split")


def chunk(input, chunks, dim=0):
    """At most ``chunks`` pieces of equal size ceil(n / chunks) along ``dim``."""
    if int(chunks) <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    d = _dim(dim, input.ndim, "chunk")
    size = input.shape[d]
    if size == 0:
        return _split_sizes(input, [0] * int(chunks), d, "chunk")
    return split(input, -(-size // int(chunks)), d)


def tensor_split(input, indices_or_sections, dim=0):
    """``sections`` nearly equal pieces (the first n % sections one longer), or pieces cut at
    the listed indices (NumPy's array_split)."""
    d = _dim(dim, input.ndim, "tensor_split")
    size = input.shape[d]
    if isinstance(indices_or_sections, (list, tuple)):
        cuts = [min(max(int(i) if i >= 0 else int(i) + size, 0), size)
                for i in indices_or_sections]
        bounds = [0] + cuts + [size]
        sizes = [max(b - a, 0) for a, b in zip(bounds[:-1], bounds[1:])]
        starts = bounds[:-1]
        if any(b < a for a, b in zip(bounds[:-1], bounds[1:])):
            # Decreasing indices give empty pieces that start where they say.
            return tuple(narrow(input, d, min(s, size), n) for s, n in zip(starts, sizes))
        return _split_sizes(input, sizes, d, "tensor_split")
    sections = int(indices_or_sections)
    if sections <= 0:
        raise ValueError(f"tensor_split: sections must be positive, got {sections}")
    base, extra = divmod(size, sections)
    sizes = [base + 1] * extra + [base] * (sections - extra)
    return _split_sizes(input, sizes, d, "tensor_split")


def hsplit(input, indices_or_sections):
    return tensor_split(input, indices_or_sections, 1 if input.ndim > 1 else 0)


def vsplit(input, indices_or_sections):
    return tensor_split(input, indices_or_sections, 0)


class _Unbind(Function):
    """Every index along ``dim`` as its own tensor (views); the gradient is their stack."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        lead = (slice(None),) * dim
        return tuple(x[lead + (i,)] for i in range(x.shape[dim]))

    @staticmethod
    def backward(ctx, *gys):
        return stack(gys, ctx.dim)


def unbind(input, dim=0):
    """A tuple of the slices along ``dim``, with that dim removed."""
    d = _dim(dim, input.ndim, "unbind")
    if input.shape[d] == 0:
        return ()
    outs = _Unbind.apply(input, d)
    outs = outs if isinstance(outs, tuple) else (outs,)
    return tuple(_as_view(o, input) for o in outs)


# ---- joining -------------------------------------------------------------------------------


class _Cat(Function):
    @staticmethod
    def forward(ctx, *xs, dim):
        ctx.dim = dim
        ctx.sizes = tuple(x.shape[dim] for x in xs)
        return ctx.xp.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, gy):
        outs = _Split.apply(gy, ctx.dim, ctx.sizes)
        return outs if isinstance(outs, tuple) else (outs,)


def _tensor_list(tensors, who):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{who}: expected a list or tuple of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{who}: expected a non-empty list of tensors")
    tensors = [_common.as_operand(x) for x in tensors]
    rt = dtypes.result_type(*tensors)
    if any(x._data.dtype != rt for x in tensors):
        from ember.ops import elementwise  # noqa: PLC0415

        tensors = [elementwise.cast(x, rt) for x in tensors]
    return tensors


def cat(tensors, dim=0):
    """Join tensors along an existing dim; all other dims must match. As in PyTorch, 1-D
    empty tensors (shape (0,)) are skipped."""
    tensors = _tensor_list(tensors, "cat")
    kept = [(i, x) for i, x in enumerate(tensors) if not (x.ndim == 1 and x.shape[0] == 0)]
    if not kept:
        return _Cat.apply(*tensors, dim=0)
    i0, first = kept[0]
    if first.ndim == 0:
        raise errors.ShapeError(
            f"cat: zero-dimensional tensor at index {i0} cannot be concatenated; use stack, "
            "or unsqueeze the tensors first"
        )
    d = _dim(dim, first.ndim, "cat")
    for i, x in kept:
        if x.ndim != first.ndim or any(
            a != b for k, (a, b) in enumerate(zip(x.shape, first.shape)) if k != d
        ):
            raise errors.ShapeError(
                f"cat: tensors must have the same shape except in dim {dim}, got "
                f"{_shape_str(first.shape)} at index {i0} and {_shape_str(x.shape)} at index "
                f"{i}"
            )
    return _Cat.apply(*(x for _, x in kept), dim=d)


concat = cat
concatenate = cat


class _Stack(Function):
    @staticmethod
    def forward(ctx, *xs, dim):
        ctx.dim = dim
        return ctx.xp.stack(xs, axis=dim)

    @staticmethod
    def backward(ctx, gy):
        outs = _Unbind.apply(gy, ctx.dim)
        return outs if isinstance(outs, tuple) else (outs,)


def stack(tensors, dim=0):
    """Join equally shaped tensors along a new dim."""
    tensors = _tensor_list(tensors, "stack")
    first = tensors[0]
    for i, x in enumerate(tensors):
        if x.shape != first.shape:
            raise errors.ShapeError(
                f"stack: expects tensors of equal shape, got {_shape_str(first.shape)} at index "
                f"0 and {_shape_str(x.shape)} at index {i}"
            )
    d = _common.normalize_dim(int(dim), first.ndim + 1, "stack")
    return _Stack.apply(*tensors, dim=d)


def hstack(tensors):
    """Join column-wise: along dim 1, or dim 0 for 1-D tensors."""
    tensors = atleast_1d(*tensors)
    tensors = tensors if isinstance(tensors, tuple) else (tensors,)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """Join row-wise (1-D tensors become rows)."""
    tensors = atleast_2d(*tensors)
    return cat(tensors if isinstance(tensors, tuple) else (tensors,), 0)


row_stack = vstack


def dstack(tensors):
    """Join along the third dim (after making every tensor at least 3-D)."""
    tensors = atleast_3d(*tensors)
    return cat(tensors if isinstance(tensors, tuple) else (tensors,), 2)


def column_stack(tensors):
    """1-D and 0-d tensors become columns, then everything joins along dim 1."""
    cols = [reshape(x, (x.numel(), 1)) if x.ndim <= 1 else x for x in tensors]
    return cat(cols, 1)


# ---- reordering copies: flip, roll, rot90 --------------------------------------------------


class _Flip(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return ctx.xp.flip(x, dims).copy()  # PyTorch's flip is a copy, not a view

    @staticmethod
    def backward(ctx, gy):
        return _Flip.apply(gy, ctx.dims)


def flip(input, dims):
    """Reverse the order of elements along ``dims`` (a copy)."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    norm = tuple(_dim(d, input.ndim, "flip") for d in dims)
    if len(set(norm)) != len(norm):
        raise ValueError(f"flip: dim appears more than once in dims {dims}")
    if input.ndim == 0:
        return _Flip.apply(input, ())
    return _Flip.apply(input, norm)


def fliplr(input):
    if input.ndim < 2:
        raise errors.ShapeError(
            f"fliplr: input must be >= 2-D, got shape {_shape_str(input.shape)}"
        )
    return flip(input, (1,))


def flipud(input):
    if input.ndim < 1:
        raise errors.ShapeError("flipud: input must be >= 1-D, got a 0-d tensor")
    return flip(input, (0,))


class _Roll(Function):
    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts = shifts
        ctx.dims = dims
        return ctx.xp.roll(x, shifts, axis=dims)

    @staticmethod
    def backward(ctx, gy):
        return _Roll.apply(gy, tuple(-s for s in ctx.shifts), ctx.dims)


def roll(input, shifts, dims=None):
    """Shift elements cyclically along ``dims`` (of the flattened tensor when dims is None)."""
    shifts = (int(shifts),) if isinstance(shifts, int) else tuple(int(s) for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: with dims=None give one shift, got shifts {shifts}")
        return reshape(_Roll.apply(reshape(input, (-1,)), shifts, (0,)), tuple(input.shape))
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    dims = tuple(_dim(d, input.ndim, "roll") for d in dims)
    return _Roll.apply(input, shifts, dims)


def rot90(input, k=1, dims=(0, 1)):
    """Rotate by 90 degrees ``k`` times in the plane of ``dims`` (from the first toward the
    second)."""
    if len(dims) != 2:
        raise ValueError(f"rot90: dims must hold two dims, got {dims}")
    d0, d1 = (_dim(d, input.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise ValueError(f"rot90: dims must differ, got {dims}")
    k %= 4
    if k == 0:
        return flip(input, ())
    if k == 2:
        return flip(input, (d0, d1))
    if k == 1:
        return transpose(flip(input, (d1,)), d0, d1)
    return flip(transpose(input, d0, d1), (d1,))


# ---- triangles and diagonals ---------------------------------------------------------------


class _Tri(Function):
    @staticmethod
    def forward(ctx, x, k, lower):
        ctx.k = k
        ctx.lower = lower
        return ctx.xp.tril(x, k) if lower else ctx.xp.triu(x, k)

    @staticmethod
    def backward(ctx, gy):
        return _Tri.apply(gy, ctx.k, ctx.lower)


def _tri(input, diagonal, lower):
    who = "tril" if lower else "triu"
    if input.ndim < 2:
        raise errors.ShapeError(
            f"{who}: input must have at least 2 dimensions, got shape {_shape_str(input.shape)}"
        )
    return _Tri.apply(input, int(diagonal), lower)


def tril(input, diagonal=0):
    """The lower triangle of the last two dims (elements above ``diagonal`` set to 0)."""
    return _tri(input, diagonal, True)


def triu(input, diagonal=0):
    """The upper triangle of the last two dims (elements below ``diagonal`` set to 0)."""
    return _tri(input, diagonal, False)


def _diag_view(xp, x, offset, dim1, dim2):
    """A writable strided view of the diagonal of ``x`` over (dim1, dim2), put last."""
    m = xp.moveaxis(x, (dim1, dim2), (-2, -1))
    m = m[..., :, offset:] if offset >= 0 else m[..., -offset:, :]
    n = max(0, min(m.shape[-2], m.shape[-1]))
    strides = m.strides[:-2] + (m.strides[-2] + m.strides[-1],)
    return xp.lib.stride_tricks.as_strided(m, m.shape[:-2] + (n,), strides)


class _Diagonal(Function):
    @staticmethod
    def forward(ctx, x, offset, dim1, dim2):
        ctx.args = (x.shape, offset, dim1, dim2)
        return _diag_view(ctx.xp, x, offset, dim1, dim2)

    @staticmethod
    def backward(ctx, gy):
        return _DiagEmbed.apply(gy, *ctx.args)


class _DiagEmbed(Function):
    """Zeros of ``shape`` with ``g`` on the diagonal over (dim1, dim2)."""

    @staticmethod
    def forward(ctx, g, shape, offset, dim1, dim2):
        ctx.args = (offset, dim1, dim2)
        out = ctx.xp.zeros(shape, g.dtype)
        _diag_view(ctx.xp, out, offset, dim1, dim2)[...] = g
        return out

    @staticmethod
    def backward(ctx, gy):
        return _Diagonal.apply(gy, *ctx.args)


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal over dims (dim1, dim2), appended as the last dim (a view)."""
    n = input.ndim
    d1 = _dim(dim1, n, "diagonal")
    d2 = _dim(dim2, n, "diagonal")
    if d1 == d2:
        raise ValueError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}")
    return _as_view(_Diagonal.apply(input, int(offset), d1, d2), input)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices (over dims dim1, dim2 of the result) with the last dim of ``input`` on their
    ``offset`` diagonal."""
    n = input.ndim + 1
    d1 = _dim(dim1, n, "diag_embed")
    d2 = _dim(dim2, n, "diag_embed")
    if d1 == d2:
        raise ValueError(f"diag_embed: dim1 and dim2 must differ, got {dim1} and {dim2}")
    size = (input.shape[-1] if input.ndim else 1) + abs(int(offset))
    rest = iter(input.shape[:-1])
    shape = tuple(size if i in (d1, d2) else next(rest) for i in range(n))
    return _DiagEmbed.apply(input, shape, int(offset), d1, d2)


def diag(input, diagonal=0):
    """1-D input: a square matrix with it on the ``diagonal``; 2-D input: that diagonal (a
    copy)."""
    if input.ndim == 1:
        size = input.shape[0] + abs(int(diagonal))
        return _DiagEmbed.apply(input, (size, size), int(diagonal), 0, 1)
    if input.ndim == 2:
        return _Contiguous.apply(_Diagonal.apply(input, int(diagonal), 0, 1))
    raise errors.ShapeError(
        f"diag: expects a 1-D or 2-D tensor, got shape {_shape_str(input.shape)}; use "
        "diagonal() or diag_embed() for batches"
    )


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


# ---- padding -------------------------------------------------------------------------------


class _Gather(Function):
    """``x`` indexed by the integer array ``idx`` along ``dim`` (the non-constant paddings)."""

    @staticmethod
    def forward(ctx, x, dim, idx):
        ctx.args = (dim, idx, x.shape[dim])
        return ctx.xp.take(x, idx, axis=dim)

    @staticmethod
    def backward(ctx, gy):
        return _ScatterAdd.apply(gy, *ctx.args)


class _ScatterAdd(Function):
    """The gradient of _Gather: ``g`` summed into ``n`` slots along ``dim`` at ``idx``."""

    @staticmethod
    def forward(ctx, g, dim, idx, n):
        ctx.args = (dim, idx)
        xp = ctx.xp
        shape = g.shape[:dim] + (n,) + g.shape[dim + 1:]
        out = xp.zeros(shape, g.dtype)
        xp.add.at(xp.moveaxis(out, dim, 0), idx, xp.moveaxis(g, dim, 0))
        return out

    @staticmethod
    def backward(ctx, gy):
        return _Gather.apply(gy, *ctx.args)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    """Pad (or, with negative sizes, crop) the last ``len(pad) // 2`` dims.

    ``pad`` lists (before, after) pairs starting from the last dim, as in PyTorch:
    ``(left, right, top, bottom)`` pads the last two dims. Modes: ``'constant'`` (``value``,
    default 0), ``'reflect'`` (mirror without repeating the edge), ``'replicate'`` (repeat the
    edge), ``'circular'`` (wrap around). Non-constant modes pad the last 1, 2 or 3 dims of a
    tensor with one or two more dims (batch and channels), as in PyTorch.
    """
    pad = tuple(int(p) for p in pad)
    shape = tuple(input.shape)
    ndim = len(shape)
    if len(pad) % 2:
        raise ValueError(f"pad: the pad tuple {pad} must have an even length (before/after pairs)")
    k = len(pad) // 2
    if k > ndim:
        raise errors.ShapeError(
            f"pad: {len(pad)} pad sizes pad {k} dims, but the input of shape "
            f"{_shape_str(shape)} has only {ndim}"
        )
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    # pairs[i] is (before, after) for dim i, counting from the first dim.
    pairs = [(0, 0)] * (ndim - k) + [(pad[2 * j], pad[2 * j + 1]) for j in reversed(range(k))]
    out_shape = tuple(s + a + b for s, (a, b) in zip(shape, pairs))
    if any(s < 0 for s in out_shape):
        raise errors.ShapeError(
            f"pad: pad {pad} would give a negative size (resulting shape "
            f"{out_shape}) for an input of shape {_shape_str(shape)}"
        )
    if mode == "constant":
        return _pad_constant(input, pairs, out_shape, 0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"pad: value is only used with mode='constant', got mode={mode!r}")
    if not 1 <= k <= 3 or ndim not in (k + 1, k + 2):
        raise errors.ShapeError(
            f"pad: mode {mode!r} pads the last 1, 2 or 3 dims of a tensor with 1 or 2 more "
            f"leading dims (batch, channels); got {len(pad)} pad sizes for shape "
            f"{_shape_str(shape)}"
        )
    xp = input.device.xp
    out = input
    for d in range(ndim - k, ndim):
        before, after = pairs[d]
        if before == after == 0:
            continue
        n = shape[d]
        _check_pad_size(mode, n, before, after, d, shape)
        # Output position j reads input index j - before, mapped back into the input.
        idx = xp.arange(-before, n + after)
        if mode == "replicate":
            idx = xp.clip(idx, 0, n - 1)
        elif mode == "circular":
            # PyTorch crops negative pads first and wraps around what is left.
            lo, hi = max(-before, 0), max(-after, 0)
            idx = (idx - lo) % (n - lo - hi) + lo
        else:
            idx = xp.abs(idx)
            idx = xp.where(idx >= n, 2 * (n - 1) - idx, idx)
        out = _Gather.apply(out, d, idx)
    return out


def _check_pad_size(mode, n, before, after, d, shape):
    if n == 0:
        rule = "a non-empty padded dim"
    elif mode == "reflect" and (before >= n or after >= n):
        rule = "each pad size smaller than the padded dim"
    elif mode == "circular" and (max(before, after) > n - max(-before, 0) - max(-after, 0)):
        rule = "each pad size at most the padded dim (it wraps around once)"
    else:
        return
    raise errors.ShapeError(
        f"pad: mode {mode!r} needs {rule}, got pad ({before}, {after}) for dim {d} of size "
        f"{n} (input shape {_shape_str(shape)})"
    )


def _pad_constant(input, pairs, out_shape, value):
    shape = tuple(input.shape)
    x = input
    if any(a < 0 or b < 0 for a, b in pairs):
        crop = tuple(slice(max(-a, 0), s - max(-b, 0)) for s, (a, b) in zip(shape, pairs))
        x = _Slice.apply(x, crop)
    if any(a > 0 or b > 0 for a, b in pairs):
        where = tuple(slice(max(a, 0), max(a, 0) + s) for s, (a, _) in zip(x.shape, pairs))
        return _Embed.apply(x, out_shape, where, value)
    return _Contiguous.apply(x)  # PyTorch's pad always returns a new tensor


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
    "narrow": narrow, "split": split, "chunk": chunk, "tensor_split": tensor_split,
    "hsplit": hsplit, "vsplit": vsplit, "unbind": unbind,
    "flip": flip, "fliplr": fliplr, "flipud": flipud, "roll": roll, "rot90": rot90,
    "tril": tril, "triu": triu, "diagonal": diagonal, "diag": diag, "diag_embed": diag_embed,
    "contiguous": contiguous,
}
