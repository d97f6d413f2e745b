"""The op library. Each family module lists ``TENSOR_METHODS``; this file binds them (and the
Python operators) onto Tensor, so an op's forward, backward and method live in one file."""

from ember.ops import activation, conv, elementwise, index, linalg, pool, reduce, shape
from ember.ops import compare, inplace, piecewise, unary
from ember.ops import diagonals, join, reorder, sort
from ember.ops import pad as pad_ops
from ember.ops import loss, loss_margin
from ember.ops import attention, dropout, embedding, norm
from ember.tensor import Tensor

# A family split over several files lists its files together, the original first, so that
# names bound by two families resolve as they always have (later families win).
FAMILIES = (
    elementwise, unary, piecewise, compare, inplace,
    activation, reduce, linalg,
    shape, join, reorder, diagonals, pad_ops,
    index, sort,
    conv, pool, norm, dropout, embedding,
    loss, loss_margin, attention,
)


def _bind_methods():
    """Every family's TENSOR_METHODS (operators such as "__mod__" included) onto Tensor."""
    for family in FAMILIES:
        for name, fn in family.TENSOR_METHODS.items():
            setattr(Tensor, name, fn)


def _reflected(fn):
    def method(self, other):
        return fn(other, self)

    return method


def _bind_operators():
    e = elementwise
    T = Tensor
    T.__add__ = e.add
    T.__radd__ = _reflected(e.add)
    T.__sub__ = e.sub
    T.__rsub__ = _reflected(e.sub)
    T.__mul__ = e.mul
    T.__rmul__ = _reflected(e.mul)
    T.__truediv__ = e.div
    T.__rtruediv__ = _reflected(e.div)
    T.__floordiv__ = e.floor_divide
    T.__rfloordiv__ = _reflected(e.floor_divide)
    T.__pow__ = e.pow
    T.__rpow__ = _reflected(e.pow)
    T.__neg__ = e.neg
    T.__pos__ = lambda self: self
    T.__matmul__ = linalg.matmul
    T.__rmatmul__ = _reflected(linalg.matmul)
    T.__getitem__ = index.getitem
    T.__eq__ = e.eq


_bind_methods()
_bind_operators()
