"""Define-by-run automatic differentiation: Function, backward, grad, grad modes, gradcheck."""

from ember.autograd.engine import backward, grad
from ember.autograd.function import Function
from ember.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from ember.autograd.gradcheck import gradcheck, gradgradcheck

__all__ = [
    "Function", "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
    "inference_mode", "is_grad_enabled", "is_inference_mode_enabled", "gradcheck",
    "gradgradcheck",
]
