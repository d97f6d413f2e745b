"""SGD: stochastic gradient descent, with momentum, dampening, Nesterov and weight decay."""

from ember.backend import devices
from ember.optim import optimizer


class SGD(optimizer.Optimizer):
    """Stochastic gradient descent (PyTorch's ``torch.optim.SGD``).

    With ``g = grad + weight_decay * param`` (``-grad`` when ``maximize``)::

        buf   = g                                    (first step)
        buf   = momentum * buf + (1 - dampening) * g (later steps)
        g     = g + momentum * buf  if nesterov  else  buf      (when momentum != 0)
        param = param - lr * g

    Args:
        params: tensors or param-group dicts; ``None`` to bind later with ``bind``.
        lr (float): learning rate (default 1e-3).
        momentum (float): momentum factor (default 0).
        dampening (float): dampening of the momentum (default 0).
        weight_decay (float): L2 penalty added to the gradient (default 0).
        nesterov (bool): Nesterov momentum; needs momentum > 0 and dampening 0.
        maximize (bool): ascend the objective instead of descending it.
    """

    def __init__(self, params=None, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, o):
        super()._check_options(o)
        self._require(o, "momentum", o["momentum"] >= 0, ">= 0")
        self._require(o, "weight_decay", o["weight_decay"] >= 0, ">= 0")
        if o["nesterov"] and (o["momentum"] <= 0 or o["dampening"] != 0):
            raise optimizer.OptimizerError(
                f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={o['momentum']!r}, dampening={o['dampening']!r}"
            )

    def _update(self, param, grad, state, group):
        xp = devices.get_array_module(param._data)
        momentum = group["momentum"]
        g, owned = optimizer.working_grad(xp, param._data, grad, group["weight_decay"],
                                          group["maximize"])
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = optimizer.new_state_tensor(param)
                buf._data[...] = g
                state["momentum_buffer"] = buf
            else:
                buf._data *= momentum
                buf._data += g if group["dampening"] == 0 else (1 - group["dampening"]) * g
            if group["nesterov"]:
                nesterov = xp.multiply(buf._data, momentum)
                nesterov += g
                g, owned = nesterov, True
            else:
                g, owned = buf._data, False
        # param += -lr * g, scaling g in place only when it is our own temporary
        if owned:
            g *= -group["lr"]
        else:
            g = xp.multiply(g, -group["lr"])
        param._data += g
