"""NAdam: Adam with Nesterov momentum (Dozat, 2016)."""

from ember.backend import devices
from ember.optim import adam, optimizer


class NAdam(optimizer.Optimizer):
    """NAdam (PyTorch's ``torch.optim.NAdam``).

    With ``g = grad`` (plus ``weight_decay * param`` unless decay is decoupled), step ``t``::

        mu_t  = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))      (and mu_{t+1} alike)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        denom = sqrt(v / (1 - beta2**t)) + eps
        param -= lr * (1 - mu_t) / (1 - prod(mu_1..mu_t)) * g / denom
        param -= lr * mu_{t+1} / (1 - prod(mu_1..mu_{t+1})) * m / denom

    Args:
        params: tensors or param-group dicts; ``None`` to bind later with ``bind``.
        lr (float): learning rate (default 2e-3).
        betas (tuple): decay rates of the moment averages (default (0.9, 0.999)).
        eps (float): added to the denominator (default 1e-8).
        weight_decay (float): weight decay (default 0).
        momentum_decay (float): how fast the momentum schedule mu_t moves (default 4e-3).
        decoupled_weight_decay (bool): decay weights directly, as AdamW does (default False).
        maximize (bool): ascend the objective instead of descending it.
    """

    _number_state = ("step", "mu_product")

    def __init__(self, params=None, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, o):
        super()._check_options(o)
        self._require(o, "eps", o["eps"] >= 0, ">= 0")
        self._require(o, "weight_decay", o["weight_decay"] >= 0, ">= 0")
        self._require(o, "momentum_decay", o["momentum_decay"] >= 0, ">= 0")
        self._check_betas(o)

    def _update(self, param, grad, state, group):
        xp = devices.get_array_module(param._data)
        p = param._data
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0.0
            state["mu_product"] = 1.0
            state["exp_avg"] = optimizer.new_state_tensor(param)
            state["exp_avg_sq"] = optimizer.new_state_tensor(param)
        state["step"] += 1
        step = state["step"]

        decoupled = group["decoupled_weight_decay"]
        shrink = 1 - lr * wd if wd != 0 and decoupled else None
        l2, maximize, eps = 0 if decoupled else wd, group["maximize"], group["eps"]

        decay = group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * decay))
        state["mu_product"] *= mu
        mu_product = state["mu_product"]
        mu_product_next = mu_product * mu_next

        grad_scale = -lr * (1.0 - mu) / (1.0 - mu_product)
        avg_scale = -lr * mu_next / (1.0 - mu_product_next)

        def update(blocks, scratch):
            p, g, m, v = blocks
            g = adam._decayed_grad(xp, p, g, shrink, l2, maximize, scratch[-1])
            tmp, denom = scratch[0], scratch[1]
            adam._adam_moments(xp, m, v, g, beta1, beta2, tmp)
            xp.divide(v, 1 - beta2**step, out=denom)
            xp.sqrt(denom, out=denom)
            denom += eps
            xp.divide(g, denom, out=tmp)
            tmp *= grad_scale
            p += tmp
            xp.divide(m, denom, out=tmp)
            tmp *= avg_scale
            p += tmp

        arrays = (p, grad, state["exp_avg"]._data, state["exp_avg_sq"]._data)
        self._apply(update, arrays, 3 if maximize or l2 != 0 else 2)
