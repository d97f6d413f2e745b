"""Linear algebra: matmul in all its broadcasting forms, mm, bmm, mv, dot, inner, outer, addmm,
baddbmm, tensordot and einsum.

Two primitives carry a hand-written backward: MatMul and _Einsum. Everything else is composed
from them and from shape ops, so its gradient (and higher ones) comes for free.
"""

import string

import numpy

from ember import dtypes, errors
from ember.autograd import grad_mode
from ember.autograd.function import Function, _Tracing
from ember.backend import gemm
from ember.ops import _common
from ember.ops import shape as shape_ops
from ember.tensor import Tensor

_State = grad_mode._State
_ndarray = numpy.ndarray
_make = Tensor._make
_shape_str = errors.shape_str


class MatMul(Function):
    """matmul for inputs of at least 2 dims with broadcast batch dims (1-D cases are reshaped
    around it). The gradients come back in the broadcast batch shape; the engine sums them to
    each input's shape."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return gemm.matmul(a, b)

    @staticmethod
    def backward(ctx, gy):
        edges = ctx._next  # a node that runs backward was recorded: one edge per input
        need_a, need_b = edges[0] is not None, edges[1] is not None
        if not _State.enabled:
            # NOTE: without create_graph the gradients are plain array products on transposed
            # views (no copies); this skips two Function dispatches per product on the MLP hot
            # path, and the saved arrays are used as they are (no Tensor wrapping: 4x4 matmul
            # fwd+bwd 39.8 -> 38.8 us). The composed branch below is the one double backward
            # goes through.
            a, b = ctx.saved_arrays
            g = gy._data
            if type(g) is _ndarray and g.ndim == 2 and a.ndim == 2 and b.ndim == 2 and \
                    2.0 * g.size * a.shape[1] < gemm.SPLIT_FLOPS:
                # small 2-D products: ndarray.dot on the transposed views, 0.55 us against
                # 1.7 us through gemm.matmul (4x4; its checks, swapaxes)
                ga = _const(g.dot(b.T)) if need_a else None
                gb = _const(a.T.dot(g)) if need_b else None
                return ga, gb
            ga = _const(gemm.matmul(g, b.swapaxes(-1, -2))) if need_a else None
            gb = _const(gemm.matmul(a.swapaxes(-1, -2), g)) if need_b else None
            return ga, gb
        a, b = ctx.saved_tensors
        ga = matmul(gy, b.mT) if need_a else None
        gb = matmul(a.mT, gy) if need_b else None
        return ga, gb


def _const(array):
    return Tensor._make(array, False, None, 0)


def _operands(who, *xs):
    """Tensors of one dtype (PyTorch's matrix products do not promote)."""
    xs = [_common.as_operand(x) for x in xs]
    for x in xs:
        if not isinstance(x, Tensor):
            raise errors.DTypeError(
                f"{who}: expected tensors, got a {type(x).__name__}; use mul for scaling"
            )
    kinds = {x._data.dtype for x in xs}
    if len(kinds) > 1:
        names = " and ".join(dtypes.name(x.dtype) for x in xs)
        raise errors.DTypeError(
            f"{who}: expected operands of one dtype, got {names}; convert one with "
            ".to(other.dtype) first"
        )
    return xs


def _matmul_error(who, a, b):
    cols = a.shape[-1]
    rows = b.shape[-2] if b.ndim > 1 else b.shape[0]
    return errors.ShapeError(
        f"{who}: shapes {_shape_str(a.shape)} and {_shape_str(b.shape)} cannot be multiplied "
        f"({cols} columns vs {rows} rows); the last dim of the first must equal the "
        "second-to-last dim of the second"
    )


def matmul(input, other):
    """Matrix product with PyTorch's rules: 1-D x 1-D is a dot product, a 1-D first (second)
    operand is a row (column) vector that is dropped again from the result, and batch dims of
    N-D operands broadcast, e.g. (2, 1, 3, 4) @ (5, 4, 2) -> (2, 5, 3, 2)."""
    if type(input) is Tensor and type(other) is Tensor:
        # NOTE: fast path for the common 2-D x 2-D product of one dtype (skips the operand
        # checks below: ~40% of a 4x4 matmul's forward time, bench/overhead.py).
        a, b = input._data, other._data
        if a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype and a.shape[1] == b.shape[0]:
            if type(a) is _ndarray and type(b) is _ndarray and _Tracing.tracer is None and \
                    not ((input._rg or other._rg) and _State.enabled):
                if a.size * b.shape[1] >= gemm.SPLIT_FLOPS / 2:
                    return _make(gemm.matmul(a, b), False, None, 0)
                # No-graph fast path (autograd/function.py). NOTE (measured): for C-contiguous
                # float32/float64 operands ndarray.dot makes the same BLAS call as the matmul
                # ufunc (bit-identical: tests/autograd/test_no_graph_paths.py) without the
                # ufunc dispatch: 0.38 vs 0.84 us on 4x4 float32 (min of 40 interleaved
                # rounds). Other strides or dtypes can differ in rounding: those keep a @ b.
                # With both: matmul fwd 4.1-5.8 us (1.34-1.38x PyTorch) -> 3.1 us (0.79-0.81x),
                # `python bench/overhead.py --repeats 9 --threads 1 --clock cpu`, HEAD vs this.
                if a.dtype.char in "fd" and a.flags.c_contiguous and b.flags.c_contiguous:
                    return _make(a.dot(b), False, None, 0)
                return _make(a @ b, False, None, 0)
            return MatMul.apply(input, other)
    input, other = _operands("matmul", input, other)
    if input.ndim == 0 or other.ndim == 0:
        raise errors.ShapeError(
            f"matmul: both arguments need at least 1 dimension, got shapes "
            f"{_shape_str(input.shape)} and {_shape_str(other.shape)}; use mul for scalars"
        )
    a, b = input, other
    if a.ndim == 1:
        a = shape_ops.reshape(a, (1, a.shape[0]))
    if b.ndim == 1:
        b = shape_ops.reshape(b, (b.shape[0], 1))
    if a.shape[-1] != b.shape[-2]:
        raise _matmul_error("matmul", input, other)
    if a.ndim > 2 and b.ndim == 2 and a._data.flags.c_contiguous:
        # (..., n, k) @ (k, m): one GEMM over all rows instead of one per batch entry, in the
        # forward and in both gradients (the weight gradient needs no batch sum).
        lead = a.shape[:-1]
        out = MatMul.apply(shape_ops.reshape(a, (-1, a.shape[-1])), b)
        out = shape_ops.reshape(out, lead + (b.shape[-1],))
    else:
        try:
            out = MatMul.apply(a, b)
        except ValueError:
            raise errors.ShapeError(
                f"matmul: the batch dims of shapes {_shape_str(input.shape)} and "
                f"{_shape_str(other.shape)} cannot be broadcast together (sizes must match or "
                "be 1, aligned from the right)"
            ) from None
    if input.ndim == 1 and other.ndim == 1:
        return shape_ops.reshape(out, ())
    if input.ndim == 1:
        return shape_ops.reshape(out, out.shape[:-2] + (out.shape[-1],))
    if other.ndim == 1:
        return shape_ops.reshape(out, out.shape[:-1])
    return out


def _require_ndim(who, x, ndim, what, argname):
    if x.ndim != ndim:
        raise errors.ShapeError(
            f"{who}: expected {argname} to be {what} ({ndim}-D), got shape "
            f"{_shape_str(x.shape)}; use matmul for other shapes"
        )


def mm(input, mat2):
    """The product of two matrices (strictly 2-D; no broadcasting)."""
    input, mat2 = _operands("mm", input, mat2)
    _require_ndim("mm", input, 2, "a matrix", "input")
    _require_ndim("mm", mat2, 2, "a matrix", "mat2")
    if input.shape[1] != mat2.shape[0]:
        raise _matmul_error("mm", input, mat2)
    return MatMul.apply(input, mat2)


def bmm(input, mat2):
    """Batched product of (b, n, m) and (b, m, p) tensors (strictly 3-D, equal batch sizes)."""
    input, mat2 = _operands("bmm", input, mat2)
    _require_ndim("bmm", input, 3, "a batch of matrices", "input")
    _require_ndim("bmm", mat2, 3, "a batch of matrices", "mat2")
    if input.shape[0] != mat2.shape[0]:
        raise errors.ShapeError(
            f"bmm: batch sizes differ: shapes {_shape_str(input.shape)} and "
            f"{_shape_str(mat2.shape)}; both need the same first dim (use matmul to broadcast)"
        )
    if input.shape[2] != mat2.shape[1]:
        raise _matmul_error("bmm", input, mat2)
    return MatMul.apply(input, mat2)


def mv(input, vec):
    """Matrix (n, m) times vector (m,)."""
    input, vec = _operands("mv", input, vec)
    _require_ndim("mv", input, 2, "a matrix", "input")
    _require_ndim("mv", vec, 1, "a vector", "vec")
    return matmul(input, vec)


def dot(input, tensor):
    """The dot product of two 1-D tensors with the same number of elements."""
    input, tensor = _operands("dot", input, tensor)
    if input.ndim != 1 or tensor.ndim != 1:
        raise errors.ShapeError(
            f"dot: expects two 1-D tensors, got shapes {_shape_str(input.shape)} and "
            f"{_shape_str(tensor.shape)}; use matmul or tensordot for higher dims"
        )
    if input.shape[0] != tensor.shape[0]:
        raise errors.ShapeError(
            f"dot: the tensors have {input.shape[0]} and {tensor.shape[0]} elements; they must "
            "have the same number"
        )
    return matmul(input, tensor)


def inner(input, other):
    """Sum of products over the last dims (a plain product when either is 0-d)."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    return tensordot(input, other, ([-1], [-1]))


def outer(input, vec2):
    """The outer product of two 1-D tensors: out[i, j] = input[i] * vec2[j]."""
    if input.ndim != 1 or vec2.ndim != 1:
        raise errors.ShapeError(
            f"outer: expects two 1-D tensors, got shapes {_shape_str(input.shape)} and "
            f"{_shape_str(vec2.shape)}"
        )
    return shape_ops.reshape(input, (-1, 1)) * vec2


ger = outer


def _add_scaled(who, input, product, beta, alpha):
    """beta * input + alpha * product; input must broadcast to the product's shape, and with
    beta == 0 it is ignored (its NaNs do not propagate), as in PyTorch."""
    if tuple(shape_ops.broadcast_shapes(input.shape, product.shape)) != tuple(product.shape):
        raise errors.ShapeError(
            f"{who}: input of shape {_shape_str(input.shape)} cannot be broadcast to the "
            f"product's shape {_shape_str(product.shape)}"
        )
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product
    return (input if beta == 1 else input * beta) + product


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2), with mat1 and mat2 matrices."""
    return _add_scaled("addmm", input, mm(mat1, mat2), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * bmm(batch1, batch2)."""
    return _add_scaled("baddbmm", input, bmm(batch1, batch2), beta, alpha)


# ---- tensordot -----------------------------------------------------------------------------


def tensordot(a, b, dims=2):
    """Contract dims of ``a`` with dims of ``b``: ``dims=k`` pairs the last k of ``a`` with the
    first k of ``b``; ``dims=([1, 0], [0, 1])`` lists them. The result has a's free dims, then
    b's. Computed as one matrix product of reshaped operands."""
    a, b = _operands("tensordot", a, b)
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0 or dims > min(a.ndim, b.ndim):
            raise ValueError(
                f"tensordot: dims={dims} must be between 0 and the smaller number of dims "
                f"({min(a.ndim, b.ndim)}) of shapes {_shape_str(a.shape)} and "
                f"{_shape_str(b.shape)}"
            )
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
    if len(da) != len(db):
        raise ValueError(f"tensordot: dims lists {da} and {db} must have the same length")
    da = [_common.normalize_dim(int(d), a.ndim, "tensordot") for d in da]
    db = [_common.normalize_dim(int(d), b.ndim, "tensordot") for d in db]
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise errors.ShapeError(
                f"tensordot: contracted dims must match, but dim {i} of shape "
                f"{_shape_str(a.shape)} has size {a.shape[i]} and dim {j} of shape "
                f"{_shape_str(b.shape)} has size {b.shape[j]}"
            )
    free_a = [d for d in range(a.ndim) if d not in da]
    free_b = [d for d in range(b.ndim) if d not in db]
    shape_a = tuple(a.shape[d] for d in free_a)
    shape_b = tuple(b.shape[d] for d in free_b)
    k = shape_ops._prod(a.shape[d] for d in da)
    a2 = shape_ops.permute(a, tuple(free_a + da))
    b2 = shape_ops.permute(b, tuple(db + free_b))
    a2 = shape_ops.reshape(a2, (shape_ops._prod(shape_a), k))
    b2 = shape_ops.reshape(b2, (k, shape_ops._prod(shape_b)))
    return shape_ops.reshape(MatMul.apply(a2, b2), shape_a + shape_b)


# ---- einsum --------------------------------------------------------------------------------

# Labels in PyTorch's order for the implicit output (upper case sorts before lower case).
_LABELS = string.ascii_uppercase + string.ascii_lowercase


class _Einsum(Function):
    """einsum over operands whose subscripts are explicit letters (no ellipsis, no implicit
    output) and whose sizes agree per letter (size-1 broadcasting is done before).

    The gradient for operand i is again an einsum: the output gradient contracted with the
    other operands onto operand i's letters. Letters that only operand i has are broadcast
    back, and a letter repeated in operand i (a diagonal) is put back on the diagonal by
    multiplying with an identity matrix."""

    @staticmethod
    def forward(ctx, *arrays, labels, out):
        ctx.labels = labels
        ctx.out = out
        ctx.save_for_backward(*arrays)
        equation = ",".join(labels) + "->" + out
        # The contraction-order search costs tens of microseconds but lets NumPy use BLAS
        # (8x faster on a batched 64x64 product); not worth it for tiny operands.
        optimize = len(arrays) > 1 and sum(a.size for a in arrays) >= 4096
        return ctx.xp.einsum(equation, *arrays, optimize=optimize)

    @staticmethod
    def backward(ctx, gy):
        operands = ctx.saved_tensors
        labels = ctx.labels
        grads = []
        for i, need in enumerate(ctx.needs_input_grad):
            grads.append(_einsum_grad(gy, operands, labels, ctx.out, i) if need else None)
        return tuple(grads)


def _einsum_grad(gy, operands, labels, out, i):
    mine = labels[i]
    sizes = dict(zip(mine, operands[i].shape))
    unique = "".join(dict.fromkeys(mine))
    others = [j for j in range(len(operands)) if j != i]
    available = set(out).union(*(labels[j] for j in others))
    kept = "".join(c for c in unique if c in available)
    terms = [out] + [labels[j] for j in others]
    g = _einsum_apply(terms, kept, [gy] + [operands[j] for j in others])
    if kept != unique:
        # Letters summed away by operand i alone: the gradient is the same along them.
        g = shape_ops.reshape(g, tuple(sizes[c] if c in kept else 1 for c in unique))
        g = shape_ops.broadcast_to(g, tuple(sizes[c] for c in unique))
    if unique != mine:
        # A repeated letter read a diagonal; write the gradient back onto it via identities.
        free = iter(c for c in _LABELS if c not in set(mine) | available)
        target = []
        seen = set()
        deltas = []
        for c in mine:
            if c in seen:
                fresh = next(free)
                deltas.append((c, fresh))
                target.append(fresh)
            else:
                seen.add(c)
                target.append(c)
        xp = gy.device.xp
        eyes = [_const(xp.eye(sizes[c], dtype=gy._data.dtype)) for c, _ in deltas]
        g = _einsum_apply([unique] + [c + f for c, f in deltas], "".join(target), [g] + eyes)
    return g


def _einsum_apply(terms, out, operands):
    if len(operands) == 1 and terms[0] == out:
        return operands[0]
    result = _Einsum.apply(*operands, labels=tuple(terms), out=out)
    if len(operands) == 1:
        shape_ops._as_view(result, operands[0])
    return result


def einsum(*args):
    """Sum of products over the subscripts of an Einstein-notation equation.

    ``einsum('ij,jk->ik', a, b)`` is a matrix product; ``'bij,bjk->bik'`` batches it,
    ``'ii->i'`` takes a diagonal, ``'ii'`` a trace, ``'i,j->ij'`` an outer product and
    ``'...ij->...ji'`` transposes any batch. Without ``->`` the output holds the subscripts
    that appear once, in alphabetical order (upper case first), after the ellipsis dims.
    Dims of size 1 broadcast. The sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` works
    too, and operands may be given as one list.
    """
    if not args:
        raise TypeError("einsum: expected an equation and at least one operand")
    if isinstance(args[0], str):
        equation = args[0]
        operands = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) \
            else list(args[1:])
    else:
        equation, operands = _sublist_equation(args)
    if not operands:
        raise ValueError(f"einsum: equation {equation!r} needs at least one operand")
    operands = _operands("einsum", *operands)
    terms, out = _parse_einsum(equation, operands)
    operands = _broadcast_einsum(equation, terms, operands)
    return _einsum_apply(terms, out, operands)


def _sublist_equation(args):
    """(op, [0, 1], op, [1, 2], [0, 2]) -> ('ab,bc->ac', [op, op])."""
    def letters(sub):
        parts = []
        for s in sub:
            if s is Ellipsis:
                parts.append("...")
            elif not 0 <= int(s) < len(_LABELS):
                raise ValueError(f"einsum: sublist subscripts must be in [0, 52), got {s}")
            else:
                parts.append(_LABELS[int(s)])
        return "".join(parts)

    operands = list(args[0::2])
    subs = list(args[1::2])
    out = None
    if len(args) % 2:
        out = args[-1]
        operands = operands[:-1]
    equation = ",".join(letters(s) for s in subs)
    if out is not None:
        equation += "->" + letters(out)
    return equation, operands


def _parse_einsum(equation, operands):
    """Explicit letters for every operand and for the output (ellipsis dims get letters of
    their own, right-aligned across operands)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(
            f"einsum: equation {equation!r} has {len(terms)} operand subscripts but "
            f"{len(operands)} operands were given"
        )
    used = set(c for c in eq if c.isalpha())
    for c in eq:
        if not (c in _LABELS or c in ",.->"):
            raise ValueError(f"einsum: invalid subscript {c!r} in {equation!r}; use letters")
    spare = [c for c in _LABELS if c not in used]
    ell_ndims = []
    for k, (term, x) in enumerate(zip(terms, operands)):
        named = len(term.replace("...", ""))
        if term.count("...") > 1 or term.replace("...", "").count(".") or (
            "..." not in term and named != x.ndim) or named > x.ndim:
            raise errors.ShapeError(
                f"einsum: subscripts {term!r} of operand {k} do not fit its shape "
                f"{_shape_str(x.shape)} ({named} letters for {x.ndim} dims"
                + (", and no ellipsis" if "..." not in term else "") + f") in {equation!r}"
            )
        ell_ndims.append(x.ndim - named if "..." in term else 0)
    n_ell = max(ell_ndims, default=0)
    if n_ell > len(spare):
        raise ValueError(f"einsum: {equation!r} needs more than 52 subscripts")
    ell = "".join(spare[:n_ell])
    terms = [t.replace("...", ell[n_ell - k:] if k else "") for t, k in zip(terms, ell_ndims)]
    if arrow:
        if rhs.count("...") > 1 or rhs.replace("...", "").count("."):
            raise ValueError(f"einsum: invalid output subscripts {rhs!r} in {equation!r}")
        out = rhs.replace("...", ell)
        seen = set()
        for c in out:
            if c in seen:
                raise ValueError(f"einsum: output subscript {c!r} appears more than once in "
                                 f"{equation!r}")
            if not any(c in t for t in terms):
                raise ValueError(f"einsum: output subscript {c!r} does not appear in any "
                                 f"operand's subscripts in {equation!r}")
            seen.add(c)
    else:
        counts = {}
        for t in terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(c for c in _LABELS if counts.get(c) == 1 and c not in ell)
    return terms, out


def _broadcast_einsum(equation, terms, operands):
    """Check that each letter has one size (or 1) and expand the size-1 dims to it."""
    sizes = {}
    for k, (t, x) in enumerate(zip(terms, operands)):
        seen = {}
        for c, s in zip(t, x.shape):
            name = f"subscript {c!r}" if c in equation else "an ellipsis dim"
            if seen.setdefault(c, s) != s:
                raise errors.ShapeError(
                    f"einsum: {name} is repeated in operand {k} (shape {_shape_str(x.shape)}) "
                    f"over dims of different sizes {seen[c]} and {s} in {equation!r}"
                )
            have = sizes.get(c, 1)
            if s != have and s != 1 and have != 1:
                raise errors.ShapeError(
                    f"einsum: {name} has size {s} in operand {k} (shape {_shape_str(x.shape)}), "
                    f"which does not match its size {have} in an earlier operand of {equation!r}"
                )
            if s != 1:
                sizes[c] = s
    out = []
    for t, x in zip(terms, operands):
        want = tuple(sizes.get(c, 1) for c in t)
        out.append(x if tuple(x.shape) == want else shape_ops.broadcast_to(x, want))
    return out


TENSOR_METHODS = {
    "matmul": matmul, "mm": mm, "bmm": bmm, "mv": mv, "dot": dot, "inner": inner,
    "outer": outer, "ger": ger, "addmm": addmm, "baddbmm": baddbmm,
}
