"""Racing one ember layer or step against its PyTorch twin (used by the micro-benchmarks).

Import after the script has set its thread environment: this module loads NumPy, PyTorch and
ember.
"""

import torch

import ember
from bench import _timing
from ember import nn


def twin(kind, *args, **kwargs):
    """The same layer in both frameworks, ember's weights copied from torch's."""
    t_layer = getattr(torch.nn, kind)(*args, **kwargs)
    e_layer = getattr(nn, kind)(*args, **kwargs)
    e_layer.load_state_dict({k: ember.tensor(v.detach().numpy())
                             for k, v in t_layer.state_dict().items()})
    return e_layer, t_layer


def race(name, e_fn, t_fn, options, width=46):
    """Time ``e_fn`` and ``t_fn`` interleaved (``options``: repeats, min_time, clock), print
    one line and return the ratio ember / torch."""
    times = _timing.interleaved({"ember": e_fn, "torch": t_fn}, options.repeats,
                                options.min_time, options.clock)
    e, t = times["ember"], times["torch"]
    print(f"{name:<{width}} ember {e * 1e3:7.2f} ms   torch {t * 1e3:7.2f} ms   ratio {e / t:5.2f}")
    return e / t
