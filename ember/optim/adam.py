"""Adam: adaptive moment estimation (Kingma & Ba, 2015), with the AMSGrad variant."""

from ember.backend import blas1, devices
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
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = optimizer.new_state_tensor(param)
            state["exp_avg_sq"] = optimizer.new_state_tensor(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = optimizer.new_state_tensor(param)
        state["step"] += 1
        step = state["step"]
        lr, wd, eps, maximize = group["lr"], group["weight_decay"], group["eps"], group["maximize"]
        beta1, beta2 = group["betas"]
        decoupled = group["decoupled_weight_decay"]
        shrink = 1 - lr * wd if wd != 0 and decoupled else None
        l2 = 0 if decoupled else wd
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        arrays = [param._data, grad, state["exp_avg"]._data, state["exp_avg_sq"]._data]
        if group["amsgrad"]:
            arrays.append(state["max_exp_avg_sq"]._data)
        simple = l2 == 0 and not group["amsgrad"]
        coefs = (-1.0 if maximize else 1.0, float(beta1), float(beta2), float(step_size),
                 float(bias_correction2_sqrt), float(eps), 1.0 if shrink is None else float(shrink))
        # NOTE (measured, 2-core VM, two threads, per-Function timing of 20 steps): the fused
        # native step (one pass, blas1.adam) against the blocks of _adam_blas_block (7 passes,
        # the path below, kept for builds without the native kernels): W5's AdamW 3.7 -> 1.9
        # ms a step, W4's Adam 2.8 -> 1.4 ms.
        fused = blas1.adam(*arrays) if simple else None
        if fused is not None:
            fused(*coefs)
            return
        blas = blas1.kernels(*arrays) if simple else None
        if blas is not None:
            self._apply(lambda blocks, scratch: _adam_blas_block(xp, blas, blocks, scratch[0],
                                                                 *coefs), arrays)
            return

        def update(blocks, scratch):
            p, g, m, v = blocks[:4]
            # a second temporary holds -grad / grad + l2 * param when those are asked for
            g = _decayed_grad(xp, p, g, shrink, l2, maximize, scratch[-1])
            _adam_moments(xp, m, v, g, beta1, beta2, scratch[0])
            if len(blocks) == 5:
                v = xp.maximum(blocks[4], v, out=blocks[4])
            _adam_apply(xp, p, m, v, step_size, bias_correction2_sqrt, eps, scratch[0])

        self._apply(update, arrays, 2 if maximize or l2 != 0 else 1)


def _decayed_grad(xp, p, g, shrink, l2, maximize, out):
    """Shrink ``p`` in place by the decoupled decay factor (None: no decoupled decay) and return
    the gradient the moments use (``optimizer.working_grad``: L2 decay, maximize)."""
    if shrink is not None:
        p *= shrink
    return optimizer.working_grad(xp, p, g, l2, maximize, out=out)[0]


def _adam_moments(xp, m, v, g, beta1, beta2, scratch):
    """``m = lerp(m, g, 1 - beta1)``, ``v = beta2 * v + (1 - beta2) * g * g``: 7 passes, rounded
    as PyTorch's ``lerp_``, ``mul_`` and ``addcmul_``."""
    optimizer.lerp_(xp, m, g, 1 - beta1, scratch)
    v *= beta2
    optimizer.add_square_(xp, v, g, 1 - beta2, scratch)


def _adam_apply(xp, p, m, v, step_size, bias_correction2_sqrt, eps, scratch):
    """``p -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)`` (PyTorch's ``addcdiv_``
    on that ``denom``): 6 passes."""
    denom = xp.sqrt(v, out=scratch)
    denom /= bias_correction2_sqrt
    denom += eps
    xp.divide(m, denom, out=denom)
    denom *= -step_size
    p += denom


def _adam_blas_block(xp, blas, blocks, scratch, sign, beta1, beta2, step_size,
                     bias_correction2_sqrt, eps, shrink):
    """One block of the step without L2 decay or amsgrad in 7 passes instead of 13-14, its
    multiply-adds as level-1 BLAS calls on OpenBLAS's threads (backend/blas1.py)::

        m = beta1 * m + sign * (1 - beta1) * grad                axpby
        v = beta2 * v + (1 - beta2) * grad * grad                multiply, axpby
        param = shrink * param - step_size * bc2 * m / (sqrt(v) + eps * bc2)
                                                                 sqrt, add, divide, axpby

    with bc2 = sqrt(1 - beta2**t): PyTorch's ``m / (sqrt(v) / bc2 + eps)`` with the division
    by bc2 moved into the two scalars (equal up to rounding).

    NOTE (measured, W4's Adam parameters, 150 interleaved rounds after a GEMM each): 2.69
    against 3.45 ms median on two threads, 2.87 against 3.31 ms on one (2.98 and 3.13 ms
    without the moved division). Inside the training steps, two threads, old and new code
    alternating: W4's optimizer 3.29-3.99 -> 2.80-2.93 ms a step, W5's AdamW 4.67-4.77 ->
    4.06 ms."""
    p, g, m, v = blocks
    blas.axpby(sign * (1.0 - beta1), g, beta1, m)
    xp.multiply(g, g, out=scratch)
    blas.axpby(1.0 - beta2, scratch, beta2, v)
    denom = xp.sqrt(v, out=scratch)
    denom += eps * bias_correction2_sqrt
    xp.divide(m, denom, out=denom)
    blas.axpby(-step_size * bias_correction2_sqrt, denom, shrink, p)
