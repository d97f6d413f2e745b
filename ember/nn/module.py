"""Module: the base class of every layer and model.

A Module owns parameters (``nn.Parameter``), buffers (tensors saved in the state_dict but not
trained, like a running mean) and submodules, all registered by assigning attributes::

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 128)      # a submodule
            self.scale = nn.Parameter(ember.ones(1))
            self.register_buffer("steps", ember.zeros((), dtype=ember.int64))

        def forward(self, x):
            return self.fc1(x).relu() * self.scale

Calling the module runs ``forward`` between the forward pre-hooks and hooks. With no hooks,
``__call__`` is a single flag test before ``forward`` (it is on the hot path of every layer).

Lazy sizes (Keras's ``build``)
------------------------------
A layer may leave an input size as ``None`` (``nn.Linear(out_features=10)``) and learn it from
its first input. The mechanism, for authors of lazy layers (Linear, Conv, BatchNorm, ...):

1. In ``__init__``, create the unknown tensors as ``nn.UninitializedParameter()`` (or
   ``nn.UninitializedBuffer()``) with the layer's ``device``/``dtype``, then call
   ``self._make_lazy()`` (from ``LazyMixin``, which the layer inherits).
2. Implement ``initialize_parameters(self, *inputs)``: read the sizes from the inputs, store them
   (``self.in_features = ...``), call ``param.materialize(shape)`` on each placeholder, and
   ``self.reset_parameters()`` for the default initialization (it draws from ember.random's
   default generator, so ``ember.manual_seed`` makes it repeatable).
3. Optionally implement ``_sizes_from_parameters(self)``: after a state_dict materialized the
   placeholders (load_state_dict does that from the stored shapes), set the size attributes from
   the parameter shapes.

The first call (or ``model.build(example_input)``, which runs one forward under ``no_grad``)
runs ``initialize_parameters`` from a forward pre-hook that then removes itself, so a built
layer pays nothing. Using a placeholder before that raises ``ember.errors.ModuleError``.
"""

import collections
import collections.abc
import weakref

from ember import errors
from ember.autograd import grad_mode
from ember.autograd.function import _Tracing
from ember.backend import devices as _device
from ember.nn import parameter as _parameter
from ember.tensor import Tensor
from ember.train import mixin as _training

Parameter = _parameter.Parameter

_IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """Returned by ``register_*_hook``: ``handle.remove()`` (or leaving a ``with`` block) takes
    the hook out again."""

    _next_id = 0

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


class Module(_training.TrainingMixin):
    """Base class of all layers and models; subclasses define ``forward``.

    Every Module can also be trained the Keras way (``compile``, ``fit``, ``evaluate``,
    ``predict``, ``summary``): those methods come from ``ember.train.mixin.TrainingMixin``.

    Example::

        >>> class TwoLayer(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = nn.Linear(4, 8)
        ...         self.out = nn.Linear(8, 2)
        ...     def forward(self, x):
        ...         return self.out(self.hidden(x).relu())
        >>> TwoLayer()(ember.randn(3, 4)).shape
        ember.Size([3, 2])
    """

    training: bool
    _version = 1

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments; Module.__init__ "
                "takes none (call super().__init__() without arguments)"
            )
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = {}
        d["_forward_pre_hooks"] = {}
        d["_forward_hooks"] = {}
        d["_owner"] = None  # (weakref to the parent, name in it): for names in error messages

    def forward(self, *args, **kwargs):
        """The computation of this module; every subclass defines it."""
        raise NotImplementedError(
            f'{type(self).__name__} has no "forward" method; define forward(self, ...) in it'
        )

    # ---- calling -----------------------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        if _Tracing.tracer is not None:
            return self._call_traced(args, kwargs)
        if self._forward_pre_hooks or self._forward_hooks:
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_traced(self, args, kwargs):
        """A call while a graph tracer runs: the ops inside are tagged with this layer."""
        tracer = _Tracing.tracer
        enter = getattr(tracer, "enter_module", None)
        if enter is None:
            return self._call_with_hooks(args, kwargs)
        enter(self)
        try:
            return self._call_with_hooks(args, kwargs)
        finally:
            tracer.exit_module()

    def _call_with_hooks(self, args, kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_pre_hook(self, hook, *, prepend=False):
        """Call ``hook(module, args)`` before each forward; a non-None result replaces the
        positional inputs (a tuple, or a single value that is wrapped in one).

        Returns a handle whose ``remove()`` takes the hook out.
        """
        return self._add_hook(self._forward_pre_hooks, hook, prepend)

    def register_forward_hook(self, hook, *, prepend=False):
        """Call ``hook(module, args, output)`` after each forward; a non-None result replaces the
        output. Returns a handle whose ``remove()`` takes the hook out."""
        return self._add_hook(self._forward_hooks, hook, prepend)

    def _add_hook(self, hooks, hook, prepend):
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            items = [(handle.id, hook)] + [(k, v) for k, v in hooks.items() if k != handle.id]
            hooks.clear()
            hooks.update(items)
        return handle

    def build(self, *example_inputs, **kwargs):
        """Run one forward on example inputs under ``no_grad`` so that lazy layers learn their
        sizes and create their parameters (Keras's ``build``). Training flags are restored and
        the forward runs in eval mode, so running statistics are not updated. Returns self.

        Example::

            >>> model = nn.Sequential(nn.Linear(out_features=32), nn.Linear(out_features=10))
            >>> model.build(ember.zeros(1, 784))[0].in_features
            784
        """
        flags = [(m, m.training) for m in self.modules()]
        self.eval()
        try:
            with grad_mode.no_grad():
                self(*example_inputs, **kwargs)
        finally:
            for m, flag in flags:
                m.__dict__["training"] = flag
        return self

    # ---- registration ------------------------------------------------------------------------

    def _check_name(self, name, kind, allow_existing):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot register a {kind} on {type(self).__name__} before Module.__init__(); "
                "call super().__init__() first in your __init__"
            )
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain '.', got {name!r}")
        if not allow_existing and hasattr(self, name) and not self._is_registered(name):
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")

    def _is_registered(self, name):
        return name in self._parameters or name in self._buffers or name in self._modules

    def register_parameter(self, name, param):
        """Add a parameter (a ``nn.Parameter`` or None) under ``name``."""
        self._check_name(name, "parameter", allow_existing=False)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign {type(param).__name__} as parameter {name!r} of "
                f"{type(self).__name__} (nn.Parameter or None expected); wrap it: "
                "nn.Parameter(tensor)"
            )
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"cannot assign a non-leaf tensor as parameter {name!r}: it was computed from "
                "other tensors. Make it a leaf first: nn.Parameter(tensor.detach())"
            )
        self._drop_name(name)
        self._parameters[name] = param
        if _parameter.is_lazy(param):
            pending = param._pending
            if pending.owner is None:
                pending.owner = weakref.ref(self)
                pending.name = name

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer: a tensor that is part of the module's state (saved in the state_dict
        when ``persistent``) but not a parameter, like BatchNorm's running mean."""
        self._check_name(name, "buffer", allow_existing=False)
        if name in self._parameters:
            raise KeyError(f"attribute {name!r} is a parameter of {type(self).__name__} already")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign {type(tensor).__name__} as buffer {name!r} (ember Tensor or None "
                "expected)"
            )
        self._drop_name(name)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)
        if _parameter.is_lazy(tensor) and tensor._pending.owner is None:
            tensor._pending.owner = weakref.ref(self)
            tensor._pending.name = name

    def add_module(self, name, module):
        """Add a child module (or None) under ``name``; it is then reachable as an attribute."""
        self._check_name(name, "module", allow_existing=False)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._drop_name(name)
        self._modules[name] = module
        if module is not None and module._owner is None:
            module.__dict__["_owner"] = (weakref.ref(self), name)

    register_module = add_module

    def _drop_name(self, name):
        d = self.__dict__
        d.pop(name, None)
        for table in (d["_parameters"], d["_buffers"], d["_modules"]):
            table.pop(name, None)
        d["_non_persistent_buffers_set"].discard(name)

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                self._check_name(name, "parameter", True)
            self._drop_name(name)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} of "
                    f"{type(self).__name__} (nn.Parameter or None expected); wrap it: "
                    "nn.Parameter(tensor)"
                )
            params[name] = None
        elif isinstance(value, Module):
            if params is None:
                self._check_name(name, "module", True)
            self._drop_name(name)
            self.add_module(name, value)
        elif params is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as child module {name!r} of "
                    f"{type(self).__name__} (Module or None expected)"
                )
            d["_modules"][name] = None
        elif params is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} as buffer {name!r} of "
                    f"{type(self).__name__} (ember Tensor or None expected)"
                )
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(
                f"{type(self).__name__} has no attribute {name!r} (did its __init__ call "
                "super().__init__() first?)"
            )
        for table in (d["_parameters"], d["_buffers"], d["_modules"]):
            if name in table:
                return table[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if self._is_registered(name):
            self._drop_name(name)
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        keys = set(super().__dir__())
        keys.update(self._parameters, self._buffers, self._modules)
        return sorted(k for k in keys if not k[:1].isdigit())

    # ---- names (for error messages) ----------------------------------------------------------

    def _qualified_name(self):
        """This module's dotted name from the outermost parent ('encoder.fc1'), or '' for a
        module that was never registered in another."""
        parts = []
        module = self
        seen = set()
        while module is not None and module._owner is not None and id(module) not in seen:
            seen.add(id(module))
            parent_ref, name = module._owner
            parent = parent_ref()
            if parent is None or parent._modules.get(name) is not module:
                break
            parts.append(name)
            module = parent
        return ".".join(reversed(parts))

    def _one_line_repr(self):
        return f"{self._get_name()}({self.extra_repr()})"

    def _layer_label(self):
        """'Linear(in_features=784, out_features=10) 'fc1'' for error messages."""
        name = self._qualified_name()
        return self._one_line_repr() + (f" '{name}'" if name else "")

    # ---- traversal ---------------------------------------------------------------------------

    def _named_members(self, get_members, prefix="", recurse=True, remove_duplicate=True):
        memo = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in get_members(module):
                if value is None or (remove_duplicate and id(value) in memo):
                    continue
                if remove_duplicate:
                    memo.add(id(value))
                yield (module_prefix + ("." if module_prefix else "") + name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, parameter) pairs, dotted names, each shared parameter once."""
        return self._named_members(
            lambda m: m._parameters.items(), prefix, recurse, remove_duplicate
        )

    def parameters(self, recurse=True):
        """The parameters of this module (and its submodules when ``recurse``), each once."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_children(self):
        """(name, module) pairs of the direct children, each module once."""
        memo = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in memo:
                memo.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for this module and every descendant, depth first; '' is self."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def get_submodule(self, target):
        """The submodule at a dotted path such as 'encoder.layers.0'."""
        module = self
        if target == "":
            return module
        for part in target.split("."):
            if part not in module._modules or module._modules[part] is None:
                raise AttributeError(
                    f"{module._get_name()} has no submodule {part!r} (looking up {target!r})"
                )
            module = module._modules[part]
        return module

    def get_parameter(self, target):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters:
            raise AttributeError(f"{module._get_name()} has no parameter {name!r}")
        return module._parameters[name]

    def get_buffer(self, target):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._buffers:
            raise AttributeError(f"{module._get_name()} has no buffer {name!r}")
        return module._buffers[name]

    # ---- modes and bulk changes --------------------------------------------------------------

    def train(self, mode=True):
        """Set training mode (dropout active, batch statistics) on this module and every
        descendant; ``train(False)`` is ``eval()``. Returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be a bool, got {mode!r}")
        for module in self.modules():
            module.__dict__["training"] = mode
        return self

    def eval(self):
        """Evaluation mode: same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` on every parameter (freeze with False). Returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters: to None (default), or zero in place."""
        for p in self.parameters():
            if p._grad is None:
                continue
            if set_to_none:
                p._grad = None
            else:
                p._grad._data[...] = 0
                p._grad._bump_version()

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant (children first) and on self; returns self.

        Example::

            >>> def init(m):
            ...     if isinstance(m, nn.Linear):
            ...         nn.init.zeros_(m.bias)
            >>> model.apply(init)
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def _apply_to_tensors(self, convert, pending_dtype=None, pending_device=None):
        """Replace every parameter's, buffer's and gradient's storage by ``convert(tensor)``
        (the same objects stay registered, so optimizers keep working)."""
        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for t in table.values():
                    if t is None:
                        continue
                    if _parameter.is_lazy(t):
                        if pending_dtype is not None and t.dtype.kind == "f":
                            t._set_pending(dtype=pending_dtype)
                        t._set_pending(device=pending_device)
                        continue
                    t._data = convert(t)
                    if t._grad is not None:
                        t._grad = Tensor._make(convert(t._grad), False, None, 0)
        return self

    def to(self, *args, **kwargs):
        """Move and/or cast parameters and buffers in place: ``to(device)``, ``to(dtype)``,
        ``to(device, dtype)`` or ``to(tensor)``. Only floating tensors change dtype. Returns
        self."""
        from ember import dtypes  # noqa: PLC0415

        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, _device.Device) or (isinstance(a, str) and a not in dtypes._NAMES):
                device = a
            else:
                dtype = a
        dtype = dtypes.as_dtype(dtype)
        if dtype is not None and dtype.kind != "f":
            raise errors.DTypeError(
                f"Module.to only accepts floating dtypes, got {dtypes.name(dtype)}"
            )
        device = _device.device(device) if device is not None else None

        def convert(t):
            out = Tensor._make(t._data, False, None, 0)
            if dtype is not None and t._data.dtype.kind == "f":
                out = out.to(dtype=dtype)
            if device is not None:
                out = out.to(device=device)
            return out._data

        with grad_mode.no_grad():
            return self._apply_to_tensors(convert, dtype, device)

    def float(self):
        """Cast floating parameters and buffers to float32."""
        return self.to(dtype="float32")

    def double(self):
        """Cast floating parameters and buffers to float64."""
        return self.to(dtype="float64")

    def half(self):
        return self.to(dtype="float16")

    def cpu(self):
        return self.to(device="cpu")

    def cuda(self, device=None):
        return self.to(device="cuda" if device is None else f"cuda:{int(device)}")

    # ---- state_dict --------------------------------------------------------------------------

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """Put this module's own parameters and persistent buffers into ``destination``;
        override to save extra state."""
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        skip = self._non_persistent_buffers_set
        for name, b in self._buffers.items():
            if b is not None and name not in skip:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """An ordered dict from dotted names to this module's parameters and persistent buffers
        (detached tensors sharing storage, unless ``keep_vars``): its own first, then each
        child's under ``child_name.``.

        Example::

            >>> list(nn.Linear(2, 3).state_dict())
            ['weight', 'bias']
        """
        if args:
            raise TypeError("state_dict() takes keyword arguments only (destination, prefix, "
                            "keep_vars)")
        if destination is None:
            destination = collections.OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)
        return destination

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """Copy this module's own entries from ``state_dict``; record missing keys, unexpected
        keys under this module's prefix, and shape problems (as text) in the lists given.
        Override to load extra state or convert old formats."""
        assign = local_metadata.get("assign_to_params_buffers", False)
        persistent = {k: v for k, v in self._buffers.items()
                      if k not in self._non_persistent_buffers_set}
        local = {**{k: v for k, v in self._parameters.items() if v is not None},
                 **{k: v for k, v in persistent.items() if v is not None}}
        for name, target in local.items():
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            value = _as_array(state_dict[key], key)
            if _parameter.is_lazy(target):
                target.materialize(value.shape)
            elif tuple(value.shape) != tuple(target._data.shape):
                error_msgs.append(
                    f"'{key}': checkpoint has {errors.shape_str(value.shape)}, model has "
                    f"{errors.shape_str(target._data.shape)}"
                )
                continue
            _copy_into(self, name, target, value, assign)
        if self._lazy_state() and not _has_lazy(self):
            self._finish_lazy()
        for key in state_dict:
            if not key.startswith(prefix) or key == prefix:
                continue
            first = key[len(prefix):].split(".", 1)[0]
            if first not in self._modules and first not in local:
                unexpected_keys.append(key)

    def _lazy_state(self):
        return self.__dict__.get("_lazy_hook") is not None

    def _finish_lazy(self):
        pass

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy parameters and buffers from ``state_dict`` (values: ember Tensors or NumPy
        arrays, so a PyTorch state_dict converted with ``.numpy()`` loads).

        With ``strict`` (default) the keys must match exactly; every missing key, unexpected
        key and shape mismatch is reported at once in one ``ember.errors.ModuleError``. With
        ``strict=False`` missing and unexpected keys are allowed (shape mismatches still raise).
        Lazy placeholders take the stored shapes. Returns ``(missing_keys, unexpected_keys)``.

        Example::

            >>> sd = {k: v.numpy() for k, v in torch_model.state_dict().items()}
            >>> model.load_state_dict(sd)
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(
                f"expected a mapping from names to tensors/arrays, got {type(state_dict).__name__}"
            )
        missing, unexpected, error_msgs = [], [], []
        metadata = {"assign_to_params_buffers": bool(assign)}
        with grad_mode.no_grad():
            for prefix, module in self.named_modules(remove_duplicate=False):
                module._load_from_state_dict(
                    state_dict, prefix + "." if prefix else "", metadata, True, missing,
                    unexpected, error_msgs,
                )
        unexpected = list(dict.fromkeys(unexpected))
        missing = list(dict.fromkeys(missing))
        problems = []
        if strict and missing:
            problems.append(f"  missing keys ({len(missing)}): " + _key_list(missing))
        if strict and unexpected:
            problems.append(f"  unexpected keys ({len(unexpected)}): " + _key_list(unexpected))
        if error_msgs:
            problems.append(f"  shape mismatches ({len(error_msgs)}): " + "; ".join(error_msgs))
        if problems:
            hint = ("Check that the model is built with the same sizes as the checkpoint; "
                    "pass strict=False to skip missing and unexpected keys.")
            raise errors.ModuleError(
                f"load_state_dict: the state_dict does not fit {self._get_name()}:\n"
                + "\n".join(problems) + "\n" + hint
            )
        return _IncompatibleKeys(missing, unexpected)

    # ---- printing ----------------------------------------------------------------------------

    def _get_name(self):
        return type(self).__name__

    def extra_repr(self):
        """The text inside this module's parentheses in ``repr``; layers override it."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = []
        for name, module in self._modules.items():
            text = _indent(repr(module), 2)
            child_lines.append(f"({name}): {text}")
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_owner"] = None  # a weak reference; __setstate__ of the parent links it again
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        for name, module in self._modules.items():
            if module is not None and module._owner is None:
                module.__dict__["_owner"] = (weakref.ref(self), name)


class LazyMixin:
    """Mixin for layers that learn input sizes from their first call (see the module docstring).

    A lazy layer calls ``self._make_lazy()`` at the end of ``__init__`` when some of its tensors
    are placeholders, and implements ``initialize_parameters(*inputs)``.
    """

    def _make_lazy(self):
        if self.__dict__.get("_lazy_hook") is None:
            self.__dict__["_lazy_hook"] = self.register_forward_pre_hook(_infer_parameters)

    def has_uninitialized_params(self):
        """True while some parameter or buffer of this layer is still a placeholder."""
        return _has_lazy(self)

    def initialize_parameters(self, *args, **kwargs):
        """Read the sizes from the first inputs and materialize the placeholders."""
        raise NotImplementedError(
            f"{type(self).__name__} is lazy but defines no initialize_parameters(*inputs)"
        )

    def _sizes_from_parameters(self):
        """After a state_dict gave the placeholders their shapes: set the size attributes."""

    def _finish_lazy(self):
        handle = self.__dict__.pop("_lazy_hook", None)
        if handle is not None:
            handle.remove()
        self._sizes_from_parameters()


def _infer_parameters(module, args):
    with grad_mode.no_grad():
        module.initialize_parameters(*args)
    if _has_lazy(module):
        raise errors.ModuleError(
            f"{module._layer_label()}: initialize_parameters left some parameters unbuilt"
        )
    module._finish_lazy()


def _has_lazy(module):
    return any(_parameter.is_lazy(t) for t in module._parameters.values()) or any(
        _parameter.is_lazy(t) for t in module._buffers.values()
    )


def _key_list(keys, limit=20):
    shown = ", ".join(f"'{k}'" for k in keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _as_array(value, key):
    """A state_dict value as an array: ember Tensor, NumPy array, or anything array-like."""
    if isinstance(value, Tensor):
        return value._data
    import numpy  # noqa: PLC0415

    if isinstance(value, numpy.ndarray):
        return value
    try:
        return numpy.asarray(value)
    except Exception:  # noqa: BLE001 - report what we were given
        raise TypeError(
            f"load_state_dict: value for '{key}' is a {type(value).__name__}; expected an ember "
            "Tensor or a NumPy array (convert PyTorch tensors with .numpy())"
        ) from None


def _copy_into(module, name, target, value, assign):
    xp = target.device.xp
    if assign:
        target._data = xp.asarray(value)
    else:
        target._data[...] = xp.asarray(value)
    target._bump_version()


def _indent(text, spaces):
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    pad = " " * spaces
    return lines[0] + "\n" + "\n".join(pad + line for line in lines[1:])
