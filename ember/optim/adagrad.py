"""Adagrad: per-coordinate learning rates from the sum of squared gradients (Duchi et al.)."""

from ember.backend import devices
from ember.optim import optimizer


class Adagrad(optimizer.Optimizer):
    """Adagrad (PyTorch's ``torch.optim.Adagrad``).

    With ``g = grad + weight_decay * param`` (``-grad`` when ``maximize``), step ``t``::

        clr = lr / (1 + (t - 1) * lr_decay)
        s  += g * g                        (s starts at initial_accumulator_value)
        param -= clr * g / (sqrt(s) + eps)

    Args:
        params: tensors or param-group dicts; ``None`` to bind later with ``bind``.
        lr (float): learning rate (default 1e-2).
        lr_decay (float): learning-rate decay per step (default 0).
        weight_decay (float): L2 penalty added to the gradient (default 0).
        initial_accumulator_value (float): starting value of the sums (default 0).
        eps (float): added to the denominator (default 1e-10).
        maximize (bool): ascend the objective instead of descending it.
    """

    def __init__(self, params=None, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, *, maximize=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, o):
        super()._check_options(o)
        self._require(o, "lr_decay", o["lr_decay"] >= 0, ">= 0")
        self._require(o, "weight_decay", o["weight_decay"] >= 0, ">= 0")
        self._require(o, "initial_accumulator_value", o["initial_accumulator_value"] >= 0,
                      ">= 0")
        self._require(o, "eps", o["eps"] >= 0, ">= 0")

    def _update(self, param, grad, state, group):
        xp = devices.get_array_module(param._data)
        p = param._data
        if not state:
            state["step"] = 0.0
            state["sum"] = optimizer.new_state_tensor(param, group["initial_accumulator_value"])
        state["step"] += 1
        wd, maximize, eps = group["weight_decay"], group["maximize"], group["eps"]
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])

        def update(blocks, scratch):
            p, g, s = blocks
            g, _ = optimizer.working_grad(xp, p, g, wd, maximize, out=scratch[-1])
            std = xp.multiply(g, g, out=scratch[0])
            s += std
            xp.sqrt(s, out=std)
            std += eps
            xp.divide(g, std, out=std)
            std *= -clr
            p += std

        self._apply(update, (p, grad, state["sum"]._data), 2 if maximize or wd != 0 else 1)
