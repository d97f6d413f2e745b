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
        wd, maximize, eps = group["weight_decay"], group["maximize"], group["eps"]
        lr, momentum, centered = group["lr"], group["momentum"], group["centered"]
        arrays = [p, grad, state["square_avg"]._data]
        if centered:
            arrays.append(state["grad_avg"]._data)
        if momentum > 0:
            arrays.append(state["momentum_buffer"]._data)

        def update(blocks, scratch):
            p, g, s = blocks[:3]
            g, _ = optimizer.working_grad(xp, p, g, wd, maximize, out=scratch[-1])
            tmp = scratch[0]
            s *= alpha
            optimizer.add_square_(xp, s, g, 1 - alpha, tmp)
            if centered:
                a = blocks[3]
                optimizer.lerp_(xp, a, g, 1 - alpha, tmp)
                xp.multiply(a, -1, out=tmp)
                tmp *= a
                tmp += s
                denom = xp.sqrt(tmp, out=tmp)
            else:
                denom = xp.sqrt(s, out=tmp)
            denom += eps
            xp.divide(g, denom, out=denom)
            if momentum > 0:
                b = blocks[-1]
                b *= momentum
                b += denom
                xp.multiply(b, -lr, out=denom)
            else:
                denom *= -lr
            p += denom

        self._apply(update, arrays, 2 if maximize or wd != 0 else 1)
