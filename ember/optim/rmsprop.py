"""RMSprop: divide the gradient by a running root mean square of recent gradients (Hinton)."""

from ember.backend import devices
from ember.optim import optimizer


class RMSprop(optimizer.Optimizer):
    """RMSprop (PyTorch's ``torch.optim.RMSprop``).

    With ``g = grad + weight_decay * param`` (``-grad`` when ``maximize``)::

        s = alpha * s + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g                    (centered only)
        d = sqrt(s - a * a) + eps   if centered  else  sqrt(s) + eps
        b = momentum * b + g / d;  param -= lr * b          (momentum > 0)
        param -= lr * g / d                                 (otherwise)

    Args:
        params: tensors or param-group dicts; ``None`` to bind later with ``bind``.
        lr (float): learning rate (default 1e-2).
        alpha (float): smoothing constant of the averages (default 0.99).
        eps (float): added to the denominator (default 1e-8).
        weight_decay (float): L2 penalty added to the gradient (default 0).
        momentum (float): momentum factor (default 0).
        centered (bool): normalize by the estimated variance instead of the raw second moment.
        maximize (bool): ascend the objective instead of descending it.
    """

    def __init__(self, params=None, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, o):
        super()._check_options(o)
        self._require(o, "eps", o["eps"] >= 0, ">= 0")
        self._require(o, "weight_decay", o["weight_decay"] >= 0, ">= 0")
        self._require(o, "momentum", o["momentum"] >= 0, ">= 0")
        self._require(o, "alpha", o["alpha"] >= 0, ">= 0")

    def _update(self, param, grad, state, group):
        xp = devices.get_array_module(param._data)
        p = param._data
        alpha = group["alpha"]
        if not state:
            state["step"] = 0.0
            state["square_avg"] = optimizer.new_state_tensor(param)
            if group["momentum"] > 0:
                state["momentum_buffer"] = optimizer.new_state_tensor(param)
            if group["centered"]:
                state["grad_avg"] = optimizer.new_state_tensor(param)
        state["step"] += 1
        g, _ = optimizer.working_grad(xp, p, grad, group["weight_decay"], group["maximize"])

        s = state["square_avg"]._data
        scratch = xp.empty_like(p)
        s *= alpha
        optimizer.add_square_(xp, s, g, 1 - alpha, scratch)
        if group["centered"]:
            a = state["grad_avg"]._data
            optimizer.lerp_(xp, a, g, 1 - alpha, scratch)
            xp.multiply(a, -1, out=scratch)
            scratch *= a
            scratch += s
            denom = xp.sqrt(scratch, out=scratch)
        else:
            denom = xp.sqrt(s, out=scratch)
        denom += group["eps"]

        xp.divide(g, denom, out=denom)
        if group["momentum"] > 0:
            b = state["momentum_buffer"]._data
            b *= group["momentum"]
            b += denom
            xp.multiply(b, -group["lr"], out=denom)
        else:
            denom *= -group["lr"]
        p += denom
