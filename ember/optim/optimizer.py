"""Optimizer: the base every ember optimizer builds on.

An optimizer holds ``param_groups`` (a list of dicts: ``"params"`` plus the options of that
group, such as ``"lr"``), ``defaults`` (options a group does not set) and ``state`` (a dict per
parameter, filled on the first step). Subclasses write one method, ``_update``, the update rule
for one parameter; the base walks the groups, skips parameters without a gradient, and keeps the
bookkeeping (zero_grad, state_dict, closures, deferred binding) in one place. Elementwise
rules hand their math to ``_apply``, which runs it over cache-sized blocks of the flat arrays
with reusable temporaries, on the calling thread.

Deferred binding (the Keras-style API): ``opt = ember.optim.Adam(lr=1e-3)`` builds an optimizer
with no parameters yet; ``opt.bind(model.parameters())`` (what ``model.compile`` calls) attaches
them later. Stepping an unbound optimizer raises an error that says so.

    >>> w = ember.zeros(3, requires_grad=True)
    >>> opt = ember.optim.SGD([w], lr=0.1)
    >>> ((w - 1.0) * (w - 1.0)).sum().backward()
    >>> opt.step()
    >>> w
    tensor([0.2000, 0.2000, 0.2000], requires_grad=True)
"""

import copy

from ember import errors
from ember.autograd import grad_mode
from ember.backend import devices
from ember.tensor import Tensor

# NOTE: elementwise updates run over blocks of this many elements, so that all the passes of
# one block (Adam makes 13) hit the core's L2 cache instead of going back to L3/memory for
# every pass. Measured on 670k float32 (2 MB L2 per core): SGD momentum 883 us whole-array,
# 974 / 637 / 607 / 668 / 775 us with blocks of 16k / 32k / 64k / 128k / 256k; Adam 3044 us
# whole, 2818 / 2457 / 2362 / 2321 / 2601. Smaller blocks lose to the ~1 us cost of each
# NumPy call.
BLOCK = 65536
# NOTE (measured on a quiet machine, wall time, opt.step() on the workloads' parameter sets,
# one thread against two, interleaved): updates run on the calling thread only. Split between two
# threads they were slower, not faster: W1's SGD 0.80-0.89 ms against 0.57-0.61 ms on one
# thread, W5's AdamW 3.08-3.59 against 2.97-3.46 ms (min-median). Each block is ~13 NumPy
# calls of 20-40 us, and every call hands Python's GIL back and forth between the threads,
# a futex wake-up that costs tens of us on this VM; with blocks of 1M elements per part
# (fewer hand-offs, no L2 reuse) W5 gained ~15% and W1 nothing, for a memory-bound update
# that the second core barely speeds up (bench/optim_micro.py: torch.optim is 1.4-2.4x
# faster at two threads, on par at one).


class OptimizerError(errors.EmberError, ValueError):
    """A bad optimizer option, parameter list, or state dict."""


class UnboundOptimizerError(errors.EmberError, RuntimeError):
    """step() (or state loading) on an optimizer that has no parameters yet."""


class Optimizer:
    """Base class of optimizers: ``Optimizer(params, defaults)``.

    Args:
        params: an iterable of tensors, or of dicts ``{"params": [...], "lr": ..., ...}`` for
            per-group options; ``None`` for an unbound optimizer (see ``bind``).
        defaults: the options used by groups that do not set them.
    """

    # State entries that are plain Python numbers (loading turns 0-d tensors back into numbers).
    _number_state = ("step",)

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self._check_options(self.defaults)
        self.state = {}
        self.param_groups = []
        self._scratch = {}  # (part, dtype) -> block-sized temporaries; never in state_dict
        self._scratch_views = {}  # (shape, dtype, count) -> views of part 0's temporaries
        if params is not None:
            self.bind(params)

    # ---- parameters ----------------------------------------------------------------------

    @property
    def is_bound(self):
        """True once the optimizer has parameters to update."""
        return bool(self.param_groups)

    def bind(self, params):
        """Attach parameters to an optimizer created without them; returns self.

        ``params`` is what the constructor takes: tensors, or dicts with per-group options.
        """
        if self.param_groups:
            raise OptimizerError(
                f"{self._name}: already bound to {self._count_params()} parameters; "
                "create a new optimizer to optimize other parameters, or use add_param_group"
            )
        if isinstance(params, Tensor):
            raise OptimizerError(
                f"{self._name}: params must be an iterable of tensors or of dicts, got a single "
                "Tensor; wrap it in a list: [tensor]"
            )
        if isinstance(params, dict):
            params = [params]
        try:
            groups = list(params)
        except TypeError:
            raise OptimizerError(
                f"{self._name}: params must be an iterable of tensors or of dicts, got "
                f"{type(params).__name__}"
            ) from None
        if not groups:
            raise OptimizerError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        return self

    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (others come from ``defaults``)."""
        if not isinstance(param_group, dict):
            raise OptimizerError(
                f"{self._name}: a param group must be a dict, got {type(param_group).__name__}"
            )
        group = dict(param_group)
        if "params" not in group:
            raise OptimizerError(f"{self._name}: a param group needs a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        first = self._count_params()
        seen = set()
        for i, p in enumerate(params):
            where = f"{self._name}: parameter {first + i}"
            if not isinstance(p, Tensor):
                raise OptimizerError(f"{where} is a {type(p).__name__}, not an ember Tensor")
            if not p.is_floating_point():
                raise errors.DTypeError(
                    f"{where} is not a floating-point tensor (got {p.dtype}); optimizers "
                    "update float tensors only"
                )
            if not p.is_leaf:
                raise OptimizerError(
                    f"{where} is not a leaf tensor (it was computed from others); optimize the "
                    "tensors you created, or .detach().requires_grad_() a copy"
                )
            if id(p) in seen:
                raise OptimizerError(f"{where} appears twice in the same group")
            seen.add(id(p))
        for other in self.param_groups:
            if any(id(q) in seen for q in other["params"]):
                raise OptimizerError(
                    f"{self._name}: some parameters appear in more than one parameter group"
                )
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_options(group)
        self.param_groups.append(group)

    def _count_params(self):
        return sum(len(g["params"]) for g in self.param_groups)

    @property
    def _name(self):
        return type(self).__name__

    def _check_bound(self, what):
        if not self.param_groups:
            raise UnboundOptimizerError(
                f"{self._name}.{what}: the optimizer has no parameters yet; bind it first with "
                f"opt.bind(model.parameters()) (or pass it to model.compile(optimizer=opt))"
            )

    # ---- option checks -------------------------------------------------------------------

    def _check_options(self, options):
        """Validate a group's (or the defaults') options; subclasses extend."""
        if "lr" in options:
            self._require(options, "lr", options["lr"] >= 0, ">= 0")

    def _require(self, options, key, ok, rule):
        """Raise ``"<Opt>: <key> must be <rule>, got <value>"`` unless ``ok``."""
        if not ok:
            raise OptimizerError(f"{self._name}: {key} must be {rule}, got {options[key]!r}")

    def _check_betas(self, options):
        betas = options["betas"]
        if len(betas) != 2:
            raise OptimizerError(f"{self._name}: betas must be a pair, got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise OptimizerError(f"{self._name}: betas[{i}] must be in [0, 1), got {beta!r}")

    # ---- the step ------------------------------------------------------------------------

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of all parameters: drop them (default) or fill them with 0."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p._grad
                if g is None:
                    continue
                if set_to_none:
                    p._grad = None
                    continue
                if g._grad_fn is not None:
                    g = p._grad = g.detach()
                g._data.fill(0)
                g._version[0] += 1

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()`` if given.

        ``closure`` re-evaluates the model (zero_grad, forward, backward) and returns the loss;
        it runs with gradient recording on.
        """
        self._check_bound("step")
        loss = None
        if closure is not None:
            with grad_mode.enable_grad():
                loss = closure()
        with grad_mode.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p._grad is None:
                        continue
                    state = self.state.get(p)
                    if state is None:
                        state = self.state[p] = {}
                    self._update(p, p._grad._data, state, group)
                    p._version[0] += 1
        return loss

    def _update(self, param, grad, state, group):
        """Apply the update rule to ``param._data`` in place; ``grad`` is an array."""
        raise NotImplementedError(f"{self._name} does not implement _update")

    def _apply(self, update, arrays, n_scratch=1):
        """Run ``update(blocks, scratch)`` over cache-sized blocks of ``arrays``, in place.

        ``arrays`` (parameter, gradient, state...) have one shape; ``update`` gets views of
        them of one shape and ``n_scratch`` temporaries of that shape to write into. A NumPy
        job larger than a block walks the flat arrays block by block when all are
        C-contiguous; otherwise (CuPy, strided views) ``update`` runs once on the whole
        arrays with fresh temporaries. All on the calling thread (NOTE at BLOCK).
        """
        first = arrays[0]
        xp = devices.get_array_module(first)
        if xp.__name__ != "numpy":
            update(arrays, [xp.empty_like(first) for _ in range(n_scratch)])
            return
        n = first.size
        if n <= BLOCK:  # one block: the arrays as they are, any layout
            update(arrays, self._shaped_scratch(xp, first, n_scratch))
            return
        flat = _flat_views(arrays)
        if flat is None:
            update(arrays, [xp.empty_like(first) for _ in range(n_scratch)])
            return
        self._run_blocks(xp, update, flat, 0, n, 0, n_scratch)

    def _run_blocks(self, xp, update, flat, start, stop, part, n_scratch):
        """``update`` over ``[start, stop)`` of the flat arrays in near-equal blocks."""
        count = -(-(stop - start) // BLOCK)
        size = -(-(stop - start) // count)
        scratch = self._scratch_for(xp, part, flat[0].dtype, size, n_scratch)
        for i in range(start, stop, size):
            j = min(i + size, stop)
            update([a[i:j] for a in flat], [s[:j - i] for s in scratch])

    def _shaped_scratch(self, xp, like, n_scratch):
        """``n_scratch`` temporaries shaped like ``like``: views of part 0's pool, kept by
        shape, since building them costs more than the math on a bias."""
        views = getattr(self, "_scratch_views", None)
        if views is None:
            views = self._scratch_views = {}
        key = (like.shape, like.dtype, n_scratch)
        scratch = views.get(key)
        if scratch is None:
            flat = self._scratch_for(xp, 0, like.dtype, like.size, n_scratch)  # may reset views
            scratch = [s[:like.size].reshape(like.shape) for s in flat]
            self._scratch_views[key] = scratch
        return scratch

    def _scratch_for(self, xp, part, dtype, size, n_scratch):
        """``n_scratch`` reusable 1-d temporaries of at least ``size`` elements for ``part``
        (one thread's share of a job), so a step allocates nothing of a parameter's size."""
        pool = getattr(self, "_scratch", None)
        if pool is None:  # an optimizer unpickled from before the pool existed
            pool = self._scratch = {}
        key = (part, dtype)
        scratch = pool.get(key)
        if scratch is None or len(scratch) < n_scratch or scratch[0].size < size:
            have = scratch or []
            size = max([size] + [s.size for s in have])
            scratch = pool[key] = [xp.empty(size, dtype)
                                   for _ in range(max(n_scratch, len(have)))]
            self._scratch_views = {}  # views of the old buffers would keep them alive
        return scratch[:n_scratch]

    # ---- state dict ----------------------------------------------------------------------

    def state_dict(self):
        """The optimizer state in PyTorch's layout, with parameters referred to by index.

        ``{"state": {index: {name: Tensor or number}}, "param_groups": [{options...,
        "params": [indices]}]}``. Indices count parameters across groups in order. Tensors
        are copies, so the dict is a snapshot that later steps do not change.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = _copy_state(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a dict made by ``state_dict()`` (from an optimizer over same-shaped params)."""
        self._check_bound("load_state_dict")
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise OptimizerError(
                f"{self._name}.load_state_dict: expected a dict with keys 'state' and "
                f"'param_groups', got {type(state_dict).__name__}"
                + (f" with keys {sorted(state_dict)}" if isinstance(state_dict, dict) else "")
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise OptimizerError(
                f"{self._name}.load_state_dict: the state dict has {len(saved_groups)} "
                f"parameter groups, this optimizer has {len(self.param_groups)}"
            )
        by_index = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise OptimizerError(
                    f"{self._name}.load_state_dict: parameter group {i} has "
                    f"{len(saved['params'])} parameters in the state dict and "
                    f"{len(group['params'])} in this optimizer"
                )
            for idx, p in zip(saved["params"], group["params"]):
                by_index[int(idx)] = p
        new_state = {}
        for idx, entry in state_dict["state"].items():
            p = by_index.get(int(idx))
            if p is None:
                raise OptimizerError(
                    f"{self._name}.load_state_dict: state for parameter {idx}, which no group "
                    "lists"
                )
            new_state[p] = {k: self._load_value(k, v, p) for k, v in entry.items()}
        for saved, group in zip(saved_groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = tuple(value) if key == "betas" else value
        self.state = new_state

    def _load_value(self, key, value, param):
        """A copy of a saved state value, moved to the parameter's device (floats: its dtype)."""
        if isinstance(value, Tensor):
            if key in self._number_state and value.ndim == 0:
                return value.item()
            data = value._data
            if data.dtype.kind == "f" and data.dtype != param.dtype:
                data = data.astype(param.dtype)
            xp = devices.get_array_module(param._data)
            if devices.get_array_module(data) is not xp:
                data = xp.asarray(data.get() if hasattr(data, "get") else data)
            data = data.copy()
            return Tensor._make(data, False, None, 0)
        if isinstance(value, list):
            return [self._load_value(key, v, param) for v in value]
        return copy.deepcopy(value)

    def __repr__(self):
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        if not self.param_groups:
            lines.append("unbound: " + ", ".join(f"{k}={v}" for k, v in self.defaults.items()))
        lines.append(")")
        return "\n".join(lines)


def _flat_views(arrays):
    """1-d views of ``arrays`` when all are C-contiguous and of one size, else None."""
    size = arrays[0].size
    for a in arrays:
        if not a.flags.c_contiguous or a.size != size:
            return None
    return [a.reshape(-1) for a in arrays]


def _copy_state(entry):
    out = {}
    for key, value in entry.items():
        if isinstance(value, Tensor):
            value = Tensor._make(value._data.copy(), False, None, 0)
        elif isinstance(value, list):
            value = [_copy_state({0: v})[0] for v in value]
        out[key] = value
    return out


def new_state_tensor(param, fill=0.0):
    """A tensor of the parameter's shape, dtype and device filled with ``fill`` (for state)."""
    xp = devices.get_array_module(param._data)
    data = xp.full_like(param._data, fill)
    return Tensor._make(data, False, None, 0)


def lerp_(xp, target, end, weight, scratch):
    """``target += weight * (end - target)`` in place; ``scratch`` is the one temporary.

    For weight >= 0.5 it computes ``end - (1 - weight) * (end - target)`` instead, the form
    PyTorch's lerp uses there, so the two round alike.
    """
    xp.subtract(end, target, out=scratch)
    if weight < 0.5:
        scratch *= weight
        target += scratch
    else:
        scratch *= 1 - weight
        xp.subtract(end, scratch, out=target)


def add_square_(xp, target, g, value, scratch):
    """``target += value * g * g`` in place (PyTorch's ``addcmul_(g, g, value=value)``)."""
    xp.multiply(g, value, out=scratch)
    scratch *= g
    target += scratch


def working_grad(xp, param, grad, weight_decay, maximize, out=None):
    """The gradient an update uses: ``-grad`` if maximizing, plus ``weight_decay * param``.

    Returns ``(g, owned)``: ``owned`` is False when ``g`` is the parameter's own gradient
    array, which the update must not write into, and True for a temporary (``out`` if given,
    else a fresh array).
    """
    if weight_decay != 0:
        g = xp.multiply(param, weight_decay, out=out)
        if maximize:
            g -= grad
        else:
            g += grad
        return g, True
    if maximize:
        return xp.negative(grad, out=out), True
    return grad, False
