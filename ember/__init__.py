"""ember: a define-by-run deep-learning framework over NumPy (CPU) and CuPy (GPU).

>>> import ember
>>> x = ember.tensor([1.0, 2.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4.])
"""

from ember import _env  # noqa: F401  (must run before NumPy is imported)
from ember import dtypes, errors
from ember.autograd import enable_grad, inference_mode, no_grad, set_grad_enabled
from ember.autograd.grad_mode import is_grad_enabled, is_inference_mode_enabled
from ember.backend.devices import Device, device
from ember.backend.threads import get_num_threads, set_num_threads
from ember.dtypes import (
    bool_, double, float, float16, float32, float64, get_default_dtype, half, int8, int16,
    int32, int64, long, set_default_dtype, short, uint8,
)
from ember.tensor import Size, Tensor
from ember import ops  # noqa: F401  (binds the Tensor methods)
from ember import autograd  # noqa: F401
from ember.creation import (
    arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace, logspace,
    ones, ones_like, tensor, zeros, zeros_like,
)
from ember.random import (
    Generator, bernoulli, get_rng_state, initial_seed, manual_seed, normal, rand, rand_like,
    randint, randint_like, randn, randn_like, randperm, seed, set_rng_state,
)
from ember.io import load, save  # noqa: E402
from ember._functions import *  # noqa: F401,F403  (ember.exp, ember.matmul, ...)

bool = bool_  # noqa: A001  (ember.bool like torch.bool)
int = dtypes.int32  # noqa: A001
__version__ = "0.1.0"


_LAZY = ("nn", "optim", "data", "metrics", "train", "callbacks", "onnx", "graph", "utils")


def __getattr__(name):
    # The subpackages load on first use (``ember.nn``, ``from ember import nn`` alike), so
    # `import ember` stays fast and ember.onnx does not pull in onnx/onnxruntime until asked.
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"ember.{name}")
    raise AttributeError(f"module 'ember' has no attribute {name!r}")
