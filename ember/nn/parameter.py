"""Parameter: a Tensor that a Module registers as learnable; and the placeholders of lazy layers.

``UninitializedParameter`` / ``UninitializedBuffer`` stand in for tensors whose shape a lazy
layer learns from its first input (``nn.Linear(out_features=10)``). They hold no data: any use
raises an ember error that says to build the model first. ``materialize(shape)`` gives them
storage and turns them, in place, into a real ``Parameter`` (or plain ``Tensor``), so
references taken earlier (an optimizer's parameter list) stay valid.
"""

import numpy

from ember import dtypes, errors
from ember.backend import devices as _device
from ember.tensor import Tensor

_DATA = Tensor.__dict__["_data"]  # the storage slot, reachable even where a subclass hides it


class Parameter(Tensor):
    """A Tensor that is a module parameter: assigning it to a Module attribute registers it, and
    it requires grad by default.

    Args:
        data (Tensor or array, optional): the initial value; it shares storage with a Tensor.
            Default: an empty tensor.
        requires_grad (bool): whether the parameter requires gradient. Default: True.

    Example::

        >>> w = nn.Parameter(ember.zeros(2, 3))
        >>> w.requires_grad
        True
    """

    __slots__ = ()

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            array = numpy.empty((0,), dtype=dtypes.get_default_dtype())
        elif isinstance(data, Tensor):
            array = data._data
        else:
            from ember import creation  # noqa: PLC0415

            array = creation.as_tensor(data)._data
        p = cls._make(array, False, None, 0)
        if isinstance(data, Tensor):
            p._version = data._version
        if requires_grad:
            p.requires_grad_(True)
        return p

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        p = Parameter(Tensor._make(self._data.copy(), False, None, 0), self._rg)
        if self._grad is not None:
            p._grad = Tensor._make(self._grad._data.copy(), False, None, 0)
        memo[id(self)] = p
        return p


class _Pending:
    """What an uninitialized tensor knows before it has data: where it will live and who owns it."""

    __slots__ = ("dtype", "device", "owner", "name")

    def __init__(self, dtype, device):
        self.dtype = dtypes.as_dtype(dtype) or dtypes.get_default_dtype()
        self.device = _device.device(device) if device is not None else _device.cpu
        self.owner = None  # weakref to the Module that registered it
        self.name = None


class _UninitializedMixin:
    """Shared by UninitializedParameter and UninitializedBuffer (no storage of their own: the
    Tensor ``_data`` slot holds a ``_Pending`` until ``materialize``)."""

    __slots__ = ()
    cls_to_become = Tensor

    @property
    def _data(self):
        raise self._not_built_error()

    @_data.setter
    def _data(self, value):
        _DATA.__set__(self, value)

    @property
    def _pending(self):
        return _DATA.__get__(self)

    def _not_built_error(self):
        pending = self._pending
        owner = pending.owner() if pending.owner is not None else None
        name = pending.name or "parameter"
        if owner is not None:
            layer = owner._one_line_repr()
            qual = owner._qualified_name()
            where = f"{layer} '{qual + '.' + name if qual else name}'"
        else:
            where = f"{type(self).__name__} '{name}'"
        return errors.ModuleError(
            f"{where} has not been built yet: run one forward pass (or "
            "model.build(example_input)) before using its parameters"
        )

    @property
    def dtype(self):
        return self._pending.dtype

    @property
    def device(self):
        return self._pending.device

    def is_materialized(self):
        return False

    def requires_grad_(self, requires_grad=True):
        self._rg = bool(requires_grad)
        return self

    def materialize(self, shape, device=None, dtype=None):
        """Give this placeholder storage of ``shape`` (uninitialized values) and turn it into a
        real ``Parameter`` (or Tensor for a buffer) in place."""
        pending = self._pending
        dtype = dtypes.as_dtype(dtype) or pending.dtype
        dev = _device.device(device) if device is not None else pending.device
        shape = tuple(int(s) for s in shape)
        array = dev.xp.zeros(shape, dtype=dtype)
        _DATA.__set__(self, array)
        self.__class__ = self.cls_to_become
        return self

    def _set_pending(self, dtype=None, device=None):
        if dtype is not None:
            self._pending.dtype = dtypes.as_dtype(dtype)
        if device is not None:
            self._pending.device = _device.device(device)

    def __repr__(self):
        return f"<{type(self).__name__}>"

    def __deepcopy__(self, memo):
        pending = self._pending
        copy = type(self)(requires_grad=self._rg, device=pending.device, dtype=pending.dtype)
        memo[id(self)] = copy
        return copy


class UninitializedParameter(_UninitializedMixin, Parameter):
    """A parameter of a lazy layer whose shape is not known yet (it has no data).

    It becomes a ``Parameter`` when the layer sees its first input (or ``model.build(x)``);
    until then, using it raises ``ember.errors.ModuleError``.

    Args:
        requires_grad (bool): Default: True.
        device, dtype: where and in which dtype it will be materialized.
    """

    __slots__ = ()
    cls_to_become = Parameter

    def __new__(cls, requires_grad=True, device=None, dtype=None):
        p = cls._make(None, bool(requires_grad), None, 0)
        _DATA.__set__(p, _Pending(dtype, device))
        return p

    def __init__(self, requires_grad=True, device=None, dtype=None):
        pass


class UninitializedBuffer(_UninitializedMixin, Tensor):
    """A buffer of a lazy layer (e.g. a running mean) whose shape is not known yet."""

    __slots__ = ()
    cls_to_become = Tensor

    def __new__(cls, requires_grad=False, device=None, dtype=None):
        t = cls._make(None, bool(requires_grad), None, 0)
        _DATA.__set__(t, _Pending(dtype, device))
        return t

    def __init__(self, requires_grad=False, device=None, dtype=None):
        pass


def is_lazy(tensor):
    """True for an UninitializedParameter/UninitializedBuffer that has no data yet."""
    return isinstance(tensor, _UninitializedMixin)
