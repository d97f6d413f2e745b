"""RAdam: Adam with a rectified adaptive learning rate (Liu et al., 2020)."""

import math

from ember.backend import devices
from ember.optim import adam, optimizer


class RAdam(optimizer.Optimizer):
    """RAdam (PyTorch's ``torch.optim.RAdam``).

    Adam's moments ``m``, ``v``; while the variance estimate is unreliable (``rho_t <= 5``) it
    takes a plain momentum step, afterwards an Adam step scaled by the rectification ``r_t``::

        rho_inf = 2 / (1 - beta2) - 1
        rho_t   = rho_inf - 2 t beta2**t / (1 - beta2**t)
        r_t     = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        param  -= lr * m / (1 - beta1**t) * [sqrt(1 - beta2**t) / (sqrt(v) + eps) * r_t]

    Args:
        params: tensors or param-group dicts; ``None`` to bind later with ``bind``.
        lr (float): learning rate (default 1e-3).
        betas (tuple): decay rates of the moment averages (default (0.9, 0.999)).
        eps (float): added to the denominator (default 1e-8).
        weight_decay (float): weight decay (default 0).
        decoupled_weight_decay (bool): decay weights directly, as AdamW does (default False).
        maximize (bool): ascend the objective instead of descending it.
    """

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, o):
        super()._check_options(o)
        self._require(o, "eps", o["eps"] >= 0, ">= 0")
        self._require(o, "weight_decay", o["weight_decay"] >= 0, ">= 0")
        self._check_betas(o)

    def _update(self, param, grad, state, group):
        xp = devices.get_array_module(param._data)
        p = param._data
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = optimizer.new_state_tensor(param)
            state["exp_avg_sq"] = optimizer.new_state_tensor(param)
        state["step"] += 1
        step = state["step"]

        decoupled = group["decoupled_weight_decay"]
        shrink = 1 - lr * wd if wd != 0 and decoupled else None
        l2, maximize, eps = 0 if decoupled else wd, group["maximize"], group["eps"]

        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2

        rect = None
        if rho_t > 5.0:
            rect = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )

        def update(blocks, scratch):
            p, g, m, v = blocks
            g = adam._decayed_grad(xp, p, g, shrink, l2, maximize, scratch[-1])
            tmp, step_ = scratch[0], scratch[1]
            adam._adam_moments(xp, m, v, g, beta1, beta2, tmp)
            xp.divide(m, bias_correction1, out=step_)
            step_ *= lr
            if rect is not None:
                adaptive = xp.sqrt(v, out=tmp)
                adaptive += eps
                xp.divide(bias_correction2**0.5, adaptive, out=adaptive)
                step_ *= adaptive
                step_ *= rect
            p -= step_

        arrays = (p, grad, state["exp_avg"]._data, state["exp_avg_sq"]._data)
        self._apply(update, arrays, 3 if maximize or l2 != 0 else 2)
