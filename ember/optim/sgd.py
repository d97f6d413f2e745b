"""SGD: stochastic gradient descent, with momentum, dampening, Nesterov and weight decay."""

from ember.backend import blas1, devices
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
        p = param._data
        xp = devices.get_array_module(p)
        if group["momentum"] == 0:
            arrays, first = (p, grad), False
        else:
            buf = state.get("momentum_buffer")
            first = buf is None
            if first:
                buf = state["momentum_buffer"] = optimizer.new_state_tensor(param)
            arrays = (p, grad, buf._data)
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        if not first:
            blas = blas1.kernels(*arrays)
            if blas is not None:
                _sgd_blas(blas, arrays, float(lr), float(momentum), float(dampening), float(wd),
                          nesterov, maximize)
                return

        def update(blocks, scratch):
            _sgd_block(xp, blocks, scratch, lr, momentum, dampening, wd, nesterov, maximize,
                       first)

        self._apply(update, arrays, 2 if nesterov else 1)


def _sgd_block(xp, blocks, scratch, lr, momentum, dampening, wd, nesterov, maximize, first):
    """One block of the SGD step, in place: ``blocks`` is (param, grad[, momentum_buffer]).

    With the defaults of the workloads (momentum, no decay) it is four passes: buf *= m,
    buf += grad, scratch = -lr * buf, param += scratch.
    """
    p, grad = blocks[0], blocks[1]
    g, owned = optimizer.working_grad(xp, p, grad, wd, maximize, out=scratch[0])
    if momentum != 0:
        buf = blocks[2]
        if first:
            xp.copyto(buf, g)
        else:
            buf *= momentum
            if dampening == 0:
                buf += g
            else:  # g is not needed after this (nesterov needs dampening 0)
                buf += xp.multiply(g, 1 - dampening, out=scratch[0])
        if nesterov:
            g = xp.multiply(buf, momentum, out=scratch[-1])
            g += scratch[0] if owned else grad
            owned = True
        else:
            g, owned = buf, False
    # param += -lr * g, scaling g in place only when it is a temporary
    step = xp.multiply(g, -lr, out=g if owned else scratch[0])
    p += step


def _sgd_blas(blas, arrays, lr, momentum, dampening, wd, nesterov, maximize):
    """The step of _sgd_block after the first as level-1 BLAS calls on whole arrays
    (backend/blas1.py: two passes instead of four, on OpenBLAS's threads). With
    ``g = s * grad + wd * param`` (s = -1 when maximizing)::

        buf   = momentum * buf + (1 - dampening) * g          axpby (+ axpy for the decay)
        param = param - lr * buf                              axpy
        param = (1 - lr * wd) * param - lr * s * grad
                - lr * momentum * buf    (nesterov)           axpby + axpy
        param = (1 - lr * wd) * param - lr * s * grad         (no momentum) axpby
    """
    p, grad = arrays[0], arrays[1]
    s = -1.0 if maximize else 1.0
    if momentum == 0:
        blas.axpby(-lr * s, grad, 1.0 - lr * wd, p)
        return
    buf = arrays[2]
    keep = 1.0 - dampening
    blas.axpby(keep * s, grad, momentum, buf)
    if wd:
        blas.axpy(keep * wd, p, buf)
    if nesterov:
        blas.axpby(-lr * s, grad, 1.0 - lr * wd, p)
        blas.axpy(-lr * momentum, buf, p)
    else:
        blas.axpy(-lr, buf, p)
