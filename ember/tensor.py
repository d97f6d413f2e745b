"""Tensor: an array, its gradient, and the graph node that made it.

Math methods and operators (``x.exp()``, ``x + y``) are attached by ``ember/ops/__init__.py``
from the op families, so each op's code lives in one place; this file holds only what is about
the Tensor itself: storage, autograd bookkeeping, conversions and printing.
"""

import weakref

import numpy

from ember import dtypes, errors
from ember.autograd import engine as _engine
from ember.autograd import grad_mode
from ember.autograd.function import AccumulateGrad, _HookHandle
from ember.backend import devices as _device

_State = grad_mode._State
_new = object.__new__


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    Create tensors with ``ember.tensor(data)``, ``ember.zeros(...)`` and friends rather than
    calling this class. ``requires_grad=True`` makes ember record every op applied to it so
    that ``backward()`` can compute ``.grad``.
    """

    # NOTE: what every tensor sets lives in slots; what few tensors ever set (a gradient, a
    # view's base, a leaf's AccumulateGrad, hooks) defaults to the class attributes below and
    # goes into the instance __dict__ when set, so making a tensor (every op's output) stores
    # five fields instead of ten: 0.27 vs 0.48 us per Tensor._make.
    __slots__ = ("_data", "_rg", "_grad_fn", "_output_nr", "_version", "__dict__", "__weakref__")
    _grad = None
    _base = None  # the tensor owning the storage this view shares
    _acc = None  # weakref to the leaf's AccumulateGrad node
    _hooks = None
    _retains_grad = False
    __array_priority__ = 1000  # numpy scalars/arrays defer to our reflected operators

    def __init__(self, data, requires_grad=False, dtype=None):
        from ember import creation  # noqa: PLC0415

        t = creation.tensor(data, dtype=dtype)
        Tensor._init_from(self, t._data, requires_grad)

    @staticmethod
    def _init_from(self, data, requires_grad):
        self._data = data
        self._rg = False
        self._grad_fn = None
        self._output_nr = 0
        self._version = [0]
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, requires_grad, grad_fn, output_nr):
        """Wrap an array without checks (the hot path of every op)."""
        t = _new(cls)
        t._data = data
        t._rg = requires_grad
        t._grad_fn = grad_fn
        t._output_nr = output_nr
        t._version = [0]
        return t

    # ---- autograd ------------------------------------------------------------------------

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad=True):
        """Start (or stop) recording ops on this leaf tensor; returns self."""
        requires_grad = bool(requires_grad)
        if self._grad_fn is not None and not requires_grad:
            raise errors.AutogradError(
                "requires_grad_(False) on a non-leaf tensor; use .detach() to get a tensor "
                "outside the graph"
            )
        if requires_grad and self._data.dtype.kind != "f":
            raise errors.DTypeError(
                f"only floating-point tensors can require gradients, got {dtypes.name(self.dtype)}; "
                "convert first, e.g. x.float().requires_grad_()"
            )
        self._rg = requires_grad
        return self

    @property
    def is_leaf(self):
        return self._grad_fn is None or type(self._grad_fn) is AccumulateGrad

    @property
    def grad_fn(self):
        fn = self._grad_fn
        return None if fn is None or type(fn) is AccumulateGrad else fn

    @property
    def grad(self):
        """The gradient accumulated by backward() (leaves, or tensors that retain_grad())."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise errors.DTypeError(f"assigned grad must be a Tensor or None, got {type(value).__name__}")
            if value.shape != self.shape:
                raise errors.ShapeError(
                    f"assigned grad has shape {errors.shape_str(value.shape)}, tensor has "
                    f"{errors.shape_str(self.shape)}"
                )
        self._grad = value

    def _edge(self):
        """(node, output_nr) that gradients for this tensor flow into."""
        fn = self._grad_fn
        if fn is not None:
            return (fn, self._output_nr)
        acc = self._acc() if self._acc is not None else None
        if acc is None:
            acc = AccumulateGrad(self)
            self._acc = weakref.ref(acc)
        return (acc, 0)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute the gradient of this tensor w.r.t. graph leaves, adding into their .grad."""
        _engine.backward(self, gradient, retain_graph, create_graph, inputs)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient. Returns a handle with ``remove()``."""
        if not self._rg:
            raise errors.AutogradError(
                "cannot register a hook on a tensor that does not require grad"
            )
        if self._grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            return _HookHandle(self._hooks, hook)
        return self._grad_fn.register_prehook(self._output_nr, hook)

    def retain_grad(self):
        """Keep .grad for this non-leaf tensor after backward (leaves always keep theirs)."""
        if self._grad_fn is None or self._retains_grad:
            return
        if not self._rg:
            raise errors.AutogradError("can't retain_grad on a tensor that does not require grad")
        ref = weakref.ref(self)

        def keep(g):
            t = ref()
            if t is not None:
                g = g if _State.enabled else g.detach()
                t._grad = g if t._grad is None else t._grad + g

        self._grad_fn.register_prehook(self._output_nr, keep)
        self._retains_grad = True

    @property
    def retains_grad(self):
        return self._retains_grad

    def detach(self):
        """A tensor sharing this one's data, outside the graph."""
        t = Tensor._make(self._data, False, None, 0)
        t._version = self._version
        t._base = self
        return t

    def detach_(self):
        self._grad_fn = None
        self._rg = False
        return self

    @property
    def data(self):
        """The same storage as a tensor that does not require grad (PyTorch's ``.data``)."""
        return self.detach()

    @data.setter
    def data(self, value):
        value = value._data if isinstance(value, Tensor) else numpy.asarray(value)
        self._data = value

    @property
    def _version_count(self):
        return self._version[0]

    def _bump_version(self):
        self._version[0] += 1

    # ---- attributes ----------------------------------------------------------------------

    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim, "size")]

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    ndimension = dim

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self):
        data = self._data
        return _device.cpu if isinstance(data, numpy.ndarray) else _device.device_of(data)

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    def numel(self):
        return int(self._data.size)

    nelement = numel

    def element_size(self):
        return self._data.itemsize

    def is_floating_point(self):
        return self._data.dtype.kind == "f"

    def is_contiguous(self):
        return bool(self._data.flags.c_contiguous)

    def stride(self, dim=None):
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[_wrap_dim(dim, self._data.ndim, "stride")]

    def data_ptr(self):
        return self._data.__array_interface__["data"][0] if isinstance(self._data, numpy.ndarray) else self._data.data.ptr

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    # ---- conversions ---------------------------------------------------------------------

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise errors.ShapeError(
                f"item(): only one-element tensors can be converted to Python scalars, got "
                f"shape {errors.shape_str(self.shape)}"
            )
        return self._data.reshape(()).item()

    def tolist(self):
        return _to_host(self._data).tolist()

    def numpy(self, force=False):
        """The NumPy array behind this tensor (shared memory on CPU)."""
        if self._rg and not force:
            raise errors.AutogradError(
                "can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()"
            )
        return _to_host(self._data)

    def __array__(self, dtype=None, copy=None):
        arr = _to_host(self._data)
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        return arr

    def __bool__(self):
        if self._data.size != 1:
            raise errors.ShapeError(
                f"the truth value of a tensor with {self._data.size} elements is ambiguous; use "
                ".any() or .all()"
            )
        return bool(self._data.reshape(()))

    def __int__(self):
        return int(self.item())

    def __float__(self):
        return float(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __hash__(self):
        return id(self)

    def to(self, *args, dtype=None, device=None, copy=False, non_blocking=False):
        """Convert dtype and/or device: ``t.to(ember.float64)``, ``t.to('cpu')``, ``t.to(other)``."""
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, (str, _device.Device)) and not (isinstance(a, str) and a in dtypes._NAMES):
                device = a
            else:
                dtype = a
        from ember.ops import elementwise  # noqa: PLC0415

        out = self
        if dtype is not None:
            dtype = dtypes.as_dtype(dtype)
            if dtype != self._data.dtype:
                out = elementwise.cast(out, dtype)
        if device is not None:
            dev = _device.device(device)
            if dev != out.device:
                from ember.ops import shape as shape_ops  # noqa: PLC0415

                out = shape_ops.to_device(out, dev)
        if copy and out is self:
            out = out.clone()
        return out

    def type(self, dtype=None):
        if dtype is None:
            return dtypes.name(self.dtype)
        return self.to(dtype)

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def half(self):
        return self.to(dtypes.float16)

    def int(self):
        return self.to(dtypes.int32)

    def long(self):
        return self.to(dtypes.int64)

    def short(self):
        return self.to(dtypes.int16)

    def bool(self):
        return self.to(dtypes.bool_)

    def byte(self):
        return self.to(dtypes.uint8)

    def char(self):
        return self.to(dtypes.int8)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    # ---- printing ------------------------------------------------------------------------

    def __repr__(self):
        from ember import _printing  # noqa: PLC0415

        return _printing.tensor_repr(self)

    def __str__(self):
        return self.__repr__()

    def __format__(self, spec):
        if self._data.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)

    def __reduce_ex__(self, protocol):
        raise TypeError(
            "ember tensors cannot be pickled (pickle can run code on load); use ember.save()"
        )

    def __deepcopy__(self, memo):
        t = Tensor._make(self._data.copy(), False, None, 0)
        t._rg = self._rg if self.is_leaf else False
        if self._grad is not None:
            t._grad = Tensor._make(self._grad._data.copy(), False, None, 0)
        memo[id(self)] = t
        return t


class Size(tuple):
    """A tensor's shape: a tuple that prints as ``ember.Size([2, 3])``."""

    def __repr__(self):
        return f"ember.Size({list(self)})"

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n


def _wrap_dim(dim, ndim, who):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{who}: dimension {dim} out of range for a {ndim}-d tensor")
    return dim % n


def _to_host(array):
    if isinstance(array, numpy.ndarray):
        return array
    return array.get()
