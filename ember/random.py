"""Random numbers: one seeded generator per process, so ``manual_seed(s)`` makes runs repeat.

Values are drawn with NumPy's PCG64 on the host and moved to the tensor's device, so a seed
gives the same numbers on CPU and GPU.
"""

import builtins

import numpy

from ember import creation, dtypes, errors
from ember.tensor import Tensor


class Generator:
    """A source of random numbers with its own state (``manual_seed``, ``get_state``)."""

    def __init__(self, seed=None):
        self.manual_seed(seed if seed is not None else numpy.random.SeedSequence().entropy % (2**63))

    def manual_seed(self, seed):
        self._seed = builtins.int(seed)
        self._rng = numpy.random.Generator(numpy.random.PCG64(self._seed))
        return self

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """The generator state as plain data (JSON-safe), for checkpoints."""
        state = self._rng.bit_generator.state
        return {"seed": self._seed, "state": state["state"]["state"], "inc": state["state"]["inc"],
                "has_uint32": state["has_uint32"], "uinteger": state["uinteger"]}

    def set_state(self, state):
        self._seed = state["seed"]
        self._rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": builtins.int(state["state"]), "inc": builtins.int(state["inc"])},
            "has_uint32": builtins.int(state["has_uint32"]),
            "uinteger": builtins.int(state["uinteger"]),
        }

    @property
    def numpy(self):
        """The underlying numpy.random.Generator."""
        return self._rng


default_generator = Generator(0)


def manual_seed(seed):
    """Seed the default generator; returns it."""
    return default_generator.manual_seed(seed)


def seed():
    s = numpy.random.SeedSequence().entropy % (2**63)
    default_generator.manual_seed(s)
    return s


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state):
    default_generator.set_state(state)


def _gen(generator):
    return (generator or default_generator)._rng


def _float_dtype(dtype):
    dtype = dtypes.as_dtype(dtype) or dtypes.get_default_dtype()
    if dtype.kind != "f":
        raise errors.DTypeError(f"expected a floating dtype for random floats, got {dtypes.name(dtype)}")
    return dtype


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1)."""
    dtype = _float_dtype(dtype)
    arr = _gen(generator).random(creation._size(size, "rand")).astype(dtype)
    return creation._finish(arr, dtype, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples."""
    dtype = _float_dtype(dtype)
    arr = _gen(generator).standard_normal(creation._size(size, "randn")).astype(dtype)
    return creation._finish(arr, dtype, device, requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=None, device=None):
    """Integers uniform in [low, high); ``randint(high, size)`` starts at 0."""
    if size is None:
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint() needs a size, e.g. randint(0, 10, (3,))")
    dtype = dtypes.as_dtype(dtype) or dtypes.int64
    arr = _gen(generator).integers(low, high, size=creation._size((tuple(size),), "randint"))
    return creation._finish(arr.astype(dtype), dtype, device, False)


def normal(mean=0.0, std=1.0, size=None, generator=None, dtype=None, device=None):
    """Normal samples; mean and std may be numbers or tensors (broadcast together)."""
    m = mean._data if isinstance(mean, Tensor) else mean
    s = std._data if isinstance(std, Tensor) else std
    if size is None:
        size = numpy.broadcast_shapes(numpy.shape(m), numpy.shape(s))
    dtype = _float_dtype(dtype or getattr(mean, "dtype", None) or getattr(std, "dtype", None))
    arr = (_gen(generator).standard_normal(tuple(size)) * s + m).astype(dtype)
    return creation._finish(arr, dtype, device, False)


def uniform(low=0.0, high=1.0, size=(), generator=None, dtype=None, device=None):
    dtype = _float_dtype(dtype)
    arr = _gen(generator).uniform(low, high, size=tuple(size)).astype(dtype)
    return creation._finish(arr, dtype, device, False)


def randperm(n, generator=None, dtype=None, device=None):
    """A random permutation of 0..n-1."""
    dtype = dtypes.as_dtype(dtype) or dtypes.int64
    arr = _gen(generator).permutation(builtins.int(n)).astype(dtype)
    return creation._finish(arr, dtype, device, False)


def bernoulli(input, p=None, generator=None):
    """0/1 samples with probability ``input`` (or the scalar ``p``), same shape and dtype."""
    probs = input._data if p is None else p
    arr = (_gen(generator).random(input.shape) < probs).astype(input.dtype)
    return creation._finish(arr, input.dtype, input.device, False)


def rand_like(input, dtype=None, device=None, generator=None):
    return rand(tuple(input.shape), dtype=dtype or input.dtype, device=device or input.device,
                generator=generator)


def randn_like(input, dtype=None, device=None, generator=None):
    return randn(tuple(input.shape), dtype=dtype or input.dtype, device=device or input.device,
                 generator=generator)


def randint_like(input, low, high=None, dtype=None, device=None, generator=None):
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype,
                   device=device or input.device, generator=generator)
