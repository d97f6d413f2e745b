"""Adamax: Adam with the infinity norm in place of the second moment (Kingma & Ba, 2015)."""

from ember.backend import devices
from ember.optim import optimizer


class Adamax(optimizer.Optimizer):
    """Adamax (PyTorch's ``torch.optim.Adamax``).

    With ``g = grad + weight_decay * param`` (``-grad`` when ``maximize``), step ``t``::

        m = beta1 * m + (1 - beta1) * g
        u = max(beta2 * u, |g| + eps)
        param -= lr / (1 - beta1**t) * m / u

    Args:
        params: tensors or param-group dicts; ``None`` to bind later with ``bind``.
        lr (float): learning rate (default 2e-3).
        betas (tuple): decay rates of ``m`` and ``u`` (default (0.9, 0.999)).
        eps (float): added to ``|g|`` (default 1e-8).
        weight_decay (float): L2 penalty added to the gradient (default 0).
        maximize (bool): ascend the objective instead of descending it.
    """

    def __init__(self, params=None, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 *, maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, o):
        super()._check_options(o)
        self._require(o, "eps", o["eps"] >= 0, ">= 0")
        self._require(o, "weight_decay", o["weight_decay"] >= 0, ">= 0")
        self._check_betas(o)

    def _update(self, param, grad, state, group):
        xp = devices.get_array_module(param._data)
        p = param._data
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = optimizer.new_state_tensor(param)
            state["exp_inf"] = optimizer.new_state_tensor(param)
        state["step"] += 1
        wd, maximize, eps = group["weight_decay"], group["maximize"], group["eps"]
        clr = group["lr"] / (1 - beta1 ** state["step"])

        def update(blocks, scratch):
            p, g, m, u = blocks
            g, _ = optimizer.working_grad(xp, p, g, wd, maximize, out=scratch[-1])
            tmp = scratch[0]
            optimizer.lerp_(xp, m, g, 1 - beta1, tmp)
            u *= beta2
            xp.abs(g, out=tmp)
            tmp += eps
            xp.maximum(u, tmp, out=u)
            xp.divide(m, u, out=tmp)
            tmp *= -clr
            p += tmp

        arrays = (p, grad, state["exp_avg"]._data, state["exp_inf"]._data)
        self._apply(update, arrays, 2 if maximize or wd != 0 else 1)
