"""Adam: adaptive moment estimation (Kingma & Ba, 2015), with the AMSGrad variant."""

from ember.backend import devices
from ember.optim import optimizer


class Adam(optimizer.Optimizer):
    """Adam (PyTorch's ``torch.optim.Adam``).

    With ``g = grad`` (``-grad`` when ``maximize``), ``t`` the step count, and weight decay
    either added to ``g`` (L2, default) or applied to the weights (``decoupled_weight_decay``)::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                          (amsgrad; used in place of v below)
        param -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Args:
        params: tensors or param-group dicts; ``None`` to bind later with ``bind``.
        lr (float): learning rate (default 1e-3).
        betas (tuple): decay rates of the two moment averages (default (0.9, 0.999)).
        eps (float): added to the denominator for stability (default 1e-8).
        weight_decay (float): weight decay (default 0).
        amsgrad (bool): keep the running maximum of ``v`` (default False).
        maximize (bool): ascend the objective instead of descending it.
        decoupled_weight_decay (bool): decay weights directly, as AdamW does (default False).
    """

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
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
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = optimizer.new_state_tensor(param)
        state["step"] += 1
        step = state["step"]

        decoupled = group["decoupled_weight_decay"]
        if wd != 0 and decoupled:
            p *= 1 - lr * wd
        g, _ = optimizer.working_grad(xp, p, grad, 0 if decoupled else wd, group["maximize"])

        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        scratch = xp.empty_like(p)
        optimizer.lerp_(xp, m, g, 1 - beta1, scratch)
        v *= beta2
        optimizer.add_square_(xp, v, g, 1 - beta2, scratch)

        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        if group["amsgrad"]:
            v_max = state["max_exp_avg_sq"]._data
            xp.maximum(v_max, v, out=v_max)
            v = v_max
        denom = xp.sqrt(v, out=scratch)
        denom /= bias_correction2_sqrt
        denom += group["eps"]
        xp.divide(m, denom, out=denom)
        denom *= -step_size
        p += denom
