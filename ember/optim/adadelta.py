"""Adadelta: step sizes from running averages of squared gradients and updates (Zeiler)."""

from ember.backend import devices
from ember.optim import optimizer


class Adadelta(optimizer.Optimizer):
    """Adadelta (PyTorch's ``torch.optim.Adadelta``).

    With ``g = grad + weight_decay * param`` (``-grad`` when ``maximize``)::

        s  = rho * s + (1 - rho) * g * g
        dx = sqrt(u + eps) / sqrt(s + eps) * g
        u  = rho * u + (1 - rho) * dx * dx
        param -= lr * dx

    Args:
        params: tensors or param-group dicts; ``None`` to bind later with ``bind``.
        lr (float): scale of the step (default 1.0).
        rho (float): decay rate of the running averages (default 0.9).
        eps (float): added inside the square roots (default 1e-6).
        weight_decay (float): L2 penalty added to the gradient (default 0).
        maximize (bool): ascend the objective instead of descending it.
    """

    def __init__(self, params=None, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *,
                 maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, o):
        super()._check_options(o)
        self._require(o, "rho", 0.0 <= o["rho"] <= 1.0, "in [0, 1]")
        self._require(o, "eps", o["eps"] >= 0, ">= 0")
        self._require(o, "weight_decay", o["weight_decay"] >= 0, ">= 0")

    def _update(self, param, grad, state, group):
        xp = devices.get_array_module(param._data)
        p = param._data
        rho, eps = group["rho"], group["eps"]
        if not state:
            state["step"] = 0.0
            state["square_avg"] = optimizer.new_state_tensor(param)
            state["acc_delta"] = optimizer.new_state_tensor(param)
        state["step"] += 1
        wd, maximize, lr = group["weight_decay"], group["maximize"], group["lr"]

        def update(blocks, scratch):
            p, g, s, u = blocks
            g, _ = optimizer.working_grad(xp, p, g, wd, maximize, out=scratch[-1])
            tmp, delta = scratch[0], scratch[1]
            s *= rho
            optimizer.add_square_(xp, s, g, 1 - rho, tmp)
            std = xp.add(s, eps, out=tmp)
            xp.sqrt(std, out=std)
            xp.add(u, eps, out=delta)
            xp.sqrt(delta, out=delta)
            delta /= std
            delta *= g
            u *= rho
            optimizer.add_square_(xp, u, delta, 1 - rho, tmp)
            delta *= -lr
            p += delta

        arrays = (p, grad, state["square_avg"]._data, state["acc_delta"]._data)
        self._apply(update, arrays, 3 if maximize or wd != 0 else 2)
