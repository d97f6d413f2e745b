"""Neural-network building blocks, PyTorch's ``torch.nn``: Module, Parameter, layers,
``functional`` (as F), ``init`` and ``utils``.

>>> from ember import nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
>>> model(ember.ones(3, 4)).shape
ember.Size([3, 2])
"""

from ember.nn import functional, init  # noqa: F401
from ember.nn.layers import *  # noqa: F401,F403  (Linear, Sequential, ... every layer family)
from ember.nn.layers import __all__ as _layer_names
from ember.nn.losses import *  # noqa: F401,F403  (MSELoss, CrossEntropyLoss, ...)
from ember.nn.losses import __all__ as _loss_names
from ember.nn.module import LazyMixin, Module, RemovableHandle
from ember.nn.parameter import (
    Parameter, UninitializedBuffer, UninitializedParameter, is_lazy,
)
from ember.nn import utils  # noqa: F401,E402

__all__ = [
    "Module", "Parameter", "UninitializedParameter", "UninitializedBuffer", "LazyMixin",
    "RemovableHandle", "is_lazy", "functional", "init", "utils", *_layer_names,
    *_loss_names,
]
