"""Containers: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict."""

import collections
import operator

from ember.autograd.function import _Tracing
from ember.nn import module as _module
from ember.nn.layers import activation as _activation
from ember.nn.layers import linear as _linear
from ember.nn.parameter import Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]

Module = _module.Module


def run_chain(modules, input):
    """Call ``modules`` one after the other on ``input`` (Sequential's forward, and each
    segment of checkpoint_sequential). A Linear directly followed by a ReLU, neither with
    hooks, runs as one node: the product applies the ReLU in its last pass
    (functional._LinearReLU). NOTE: W1's step 2.54 -> 2.43 ms; no mask and no pre-ReLU array
    kept: a 24-layer 512-wide MLP's forward+backward at batch 2048 peaks at 132 MiB instead
    of 224 (bench/checkpoint_memory.py)."""
    linear = None  # a Linear whose output may go straight into a ReLU
    for module in modules:
        if linear is not None:
            if type(module) is _activation.ReLU and not _has_hooks(module):
                input = linear._forward_relu(input)
                linear = None
                continue
            input = linear(input)
            linear = None
        if type(module) is _linear.Linear and not _has_hooks(module):
            linear = module
            continue
        input = module(input)
    return input if linear is None else linear(input)


def _has_hooks(module):
    """Whether calling ``module`` does more than its forward (hooks, a lazy layer's
    initialization, a tracer that tags ops with their layer)."""
    return bool(module._forward_pre_hooks or module._forward_hooks) or \
        _Tracing.tracer is not None


def _index(container, idx):
    """A non-negative int index into ``container``, or an IndexError naming it."""
    idx = operator.index(idx)
    n = len(container)
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for {type(container).__name__} of "
                         f"length {n}")
    return idx % n


class Sequential(Module):
    """Run modules one after the other, each on the previous one's output.

    Build it from modules (named '0', '1', ...) or from an OrderedDict of named modules.
    Indexing (also negative), slicing (a new Sequential sharing the modules), ``len``,
    iteration, ``append``, ``insert``, ``extend`` and ``pop`` work like a list.

    Example::

        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Identity(), nn.Linear(8, 2))
        >>> model(ember.ones(3, 4)).shape
        ember.Size([3, 2])
        >>> model[-1]
        Linear(in_features=8, out_features=2, bias=True)
        >>> nn.Sequential(collections.OrderedDict([("fc", nn.Linear(4, 2))])).fc.out_features
        2
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], collections.OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def forward(self, input):
        return run_chain(self._modules.values(), input)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(collections.OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index(self, idx)]

    def __setitem__(self, idx, module):
        key = list(self._modules)[_index(self, idx)]
        setattr(self, key, module)

    def __delitem__(self, idx):
        if isinstance(idx, slice):
            for key in list(self._modules)[idx]:
                delattr(self, key)
        else:
            delattr(self, list(self._modules)[_index(self, idx)])
        self._renumber()

    def _renumber(self):
        # Keep the names 0..n-1 after removals, as PyTorch does.
        items = list(self._modules.values())
        self._modules.clear()
        for i, module in enumerate(items):
            self._modules[str(i)] = module

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __add__(self, other):
        if not isinstance(other, Sequential):
            raise TypeError(
                f"can only add a Sequential to a Sequential, got {type(other).__name__}"
            )
        return Sequential(*self, *other)

    def __dir__(self):
        return [k for k in super().__dir__() if not k.isdigit()]

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def insert(self, index, module):
        """Insert ``module`` before position ``index`` (negative counts from the end)."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.insert expects a Module, got {type(module).__name__}")
        n = len(self)
        if not -n <= index <= n:
            raise IndexError(f"Sequential.insert: index {index} is out of range for length {n}")
        if index < 0:
            index += n
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)
        return self

    def extend(self, modules):
        """Append each module of an iterable; returns self."""
        for module in modules:
            self.append(module)
        return self

    def pop(self, index=-1):
        """Remove and return the module at ``index``."""
        module = self[index]
        del self[index]
        return module


class ModuleList(Module):
    """A list of modules whose parameters belong to the parent (a plain list would hide them).

    Example::

        >>> layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        >>> len(list(layers.parameters()))
        6
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(_index(self, idx))]

    def __setitem__(self, idx, module):
        setattr(self, str(_index(self, idx)), module)

    def __delitem__(self, idx):
        if isinstance(idx, slice):
            for key in list(self._modules)[idx]:
                delattr(self, key)
        else:
            delattr(self, str(_index(self, idx)))
        items = list(self._modules.values())
        self._modules.clear()
        for i, module in enumerate(items):
            self._modules[str(i)] = module

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList(list(self) + list(other))

    def __dir__(self):
        return [k for k in super().__dir__() if not k.isdigit()]

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        """Append each module of an iterable; returns self."""
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError("ModuleList.extend expects an iterable of modules, got a single "
                            f"{type(modules).__name__}; use append")
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Insert ``module`` before position ``index``."""
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def pop(self, index=-1):
        module = self[index]
        del self[index]
        return module

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            "ModuleList has no forward: iterate over it in your module's forward, or use "
            "nn.Sequential to chain the modules"
        )


class ModuleDict(Module):
    """A dict of modules (insertion-ordered) whose parameters belong to the parent.

    Example::

        >>> heads = nn.ModuleDict({"cls": nn.Linear(8, 10), "box": nn.Linear(8, 4)})
        >>> heads["box"].out_features
        4
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def clear(self):
        self._modules.clear()

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def update(self, modules):
        """Add modules from a mapping or an iterable of (name, module) pairs."""
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self[key] = module

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward: pick a module by key and call it")


class ParameterList(Module):
    """A list of parameters registered on the module (named '0', '1', ...); tensors given to
    it become Parameters.

    Example::

        >>> ps = nn.ParameterList([nn.Parameter(ember.ones(2)) for _ in range(3)])
        >>> len(list(ps.parameters()))
        3
    """

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self)[idx])
        return getattr(self, str(_index(self, idx)))

    def __setitem__(self, idx, param):
        setattr(self, str(_index(self, idx)), _as_param(param))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __iadd__(self, params):
        return self.extend(params)

    def append(self, value):
        """Add a parameter (a Tensor is wrapped in a Parameter); returns self."""
        self.register_parameter(str(len(self)), _as_param(value))
        return self

    def extend(self, values):
        for value in values:
            self.append(value)
        return self

    def extra_repr(self):
        lines = []
        for name, p in self._parameters.items():
            lines.append(f"({name}): Parameter containing: [{p.dtype} of size "
                         f"{tuple(p.shape)}]")
        return "\n".join(lines)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList has no forward")


class ParameterDict(Module):
    """A dict of parameters registered on the module; tensors given to it become Parameters.

    Example::

        >>> pd = nn.ParameterDict({"scale": nn.Parameter(ember.ones(1))})
        >>> pd["scale"].shape
        ember.Size([1])
    """

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        return self._parameters[key]

    def __setitem__(self, key, value):
        param = _as_param(value)
        if key in self._parameters:
            setattr(self, key, param)
        else:
            self.register_parameter(key, param)

    def __delitem__(self, key):
        del self._parameters[key]

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key):
        return key in self._parameters

    def keys(self):
        return self._parameters.keys()

    def items(self):
        return self._parameters.items()

    def values(self):
        return self._parameters.values()

    def update(self, parameters):
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for key, value in items:
            self[key] = value

    def extra_repr(self):
        return "\n".join(f"({k}): Parameter containing: [{p.dtype} of size {tuple(p.shape)}]"
                         for k, p in self._parameters.items())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterDict has no forward")


def _as_param(value):
    if isinstance(value, Parameter) or value is None:
        return value
    from ember.tensor import Tensor  # noqa: PLC0415

    if isinstance(value, Tensor):
        return Parameter(value)
    raise TypeError(f"expected a Parameter or Tensor, got {type(value).__name__}")
