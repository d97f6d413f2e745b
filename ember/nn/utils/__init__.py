"""Helpers around parameters: gradient clipping and flattening to one vector."""

from ember.nn.utils import rnn  # noqa: F401  (nn.utils.rnn: PackedSequence, pack_*, pad_*)
from ember.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_, get_total_norm
from ember.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters

__all__ = [
    "clip_grad_norm_", "clip_grad_value_", "get_total_norm", "parameters_to_vector",
    "vector_to_parameters",
]
