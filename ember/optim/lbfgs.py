"""L-BFGS: a quasi-Newton method that keeps the last few steps to approximate the inverse
Hessian, with an optional strong-Wolfe line search (as in Schmidt's minFunc and PyTorch)."""

from ember.autograd import grad_mode
from ember.backend import devices
from ember.optim import optimizer
from ember.tensor import Tensor


class LBFGS(optimizer.Optimizer):
    """L-BFGS (PyTorch's ``torch.optim.LBFGS``). ``step(closure)`` needs the closure, which
    re-evaluates the loss (zero_grad, forward, backward) and returns it.

    Each step runs up to ``max_iter`` iterations on the flattened parameters ``x``::

        d = -H g        (two-loop recursion over the stored pairs s = x_k+1 - x_k,
                         y = g_k+1 - g_k, with H0 = s.y / y.y)
        x = x + t d     (t = lr, or found by the strong-Wolfe line search; the very first
                         iteration uses t = lr * min(1, 1 / |g|_1))

    and stops early when ``max|g| <= tolerance_grad``, when a step or the change of the loss
    falls below ``tolerance_change``, or after ``max_eval`` closure calls.

    Args:
        params: tensors (one group only); ``None`` to bind later with ``bind``.
        lr (float): step length (default 1).
        max_iter (int): iterations per ``step`` (default 20).
        max_eval (int): closure evaluations per ``step`` (default ``max_iter * 5 // 4``).
        tolerance_grad (float): stop when the largest gradient entry is this small (1e-7).
        tolerance_change (float): stop when the loss or the step changes less (1e-9).
        history_size (int): pairs (s, y) to keep (default 100).
        line_search_fn (str): None (fixed step) or ``"strong_wolfe"``.
    """

    _number_state = ("func_evals", "n_iter", "t", "H_diag", "prev_loss")

    def __init__(self, params=None, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)

    def _check_options(self, o):
        super()._check_options(o)
        self._require(o, "max_iter", o["max_iter"] >= 1, ">= 1")
        self._require(o, "max_eval", o["max_eval"] >= 1, ">= 1")
        self._require(o, "history_size", o["history_size"] >= 1, ">= 1")
        if o["line_search_fn"] not in (None, "strong_wolfe"):
            raise optimizer.OptimizerError(
                f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                f"{o['line_search_fn']!r}"
            )

    def add_param_group(self, param_group):
        if self.param_groups:
            raise optimizer.OptimizerError(
                "LBFGS: supports a single parameter group only (no per-parameter options)"
            )
        super().add_param_group(param_group)

    # ---- flat views of the parameters ---------------------------------------------------

    @property
    def _params(self):
        return self.param_groups[0]["params"]

    def _xp(self):
        return devices.get_array_module(self._params[0]._data)

    def _flat_grad(self):
        xp = self._xp()
        parts = [
            xp.zeros(p._data.size, p._data.dtype) if p._grad is None else p._grad._data.ravel()
            for p in self._params
        ]
        return xp.concatenate(parts)

    def _add_to_params(self, t, d):
        """x += t * d, parameter by parameter."""
        offset = 0
        for p in self._params:
            n = p._data.size
            p._data += t * d[offset:offset + n].reshape(p._data.shape)
            p._version[0] += 1
            offset += n

    def _set_params(self, saved):
        for p, data in zip(self._params, saved):
            p._data[...] = data
            p._version[0] += 1

    def _evaluate(self, closure):
        with grad_mode.enable_grad():
            return closure()

    # ---- the step -----------------------------------------------------------------------

    def step(self, closure=None):
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss of the first closure call."""
        self._check_bound("step")
        if closure is None:
            raise optimizer.OptimizerError(
                "LBFGS.step needs a closure that re-evaluates the model and returns the loss, "
                "e.g. opt.step(lambda: (opt.zero_grad(), loss_fn())[1]) with backward() inside"
            )
        with grad_mode.no_grad():
            return self._step(closure)

    def _step(self, closure):
        xp = self._xp()
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]
        # All of LBFGS's state lives with the first parameter, as in PyTorch.
        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        first_loss = self._evaluate(closure)
        loss = float(first_loss)
        evals = 1
        state["func_evals"] += 1
        g = self._flat_grad()
        if float(xp.abs(g).max()) <= tol_grad:
            return first_loss

        d = _array(state.get("d"))
        t = state.get("t")
        dirs = [_array(v) for v in state.get("old_dirs", [])]
        steps = [_array(v) for v in state.get("old_stps", [])]
        ro = list(state.get("ro", []))
        h_diag = state.get("H_diag")
        prev_g = _array(state.get("prev_flat_grad"))
        prev_loss = state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -g
                dirs, steps, ro = [], [], []
                h_diag = 1.0
            else:
                y = g - prev_g
                s = d * t
                ys = float(y.dot(s))
                if ys > 1e-10:  # keep the pair only if the curvature is positive
                    if len(dirs) == history_size:
                        dirs.pop(0)
                        steps.pop(0)
                        ro.pop(0)
                    dirs.append(y)
                    steps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / float(y.dot(y))
                d = _two_loop(g, dirs, steps, ro, h_diag)

            prev_g = g.copy()
            prev_loss = loss
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(xp.abs(g).sum())) * lr
            else:
                t = lr
            gtd = float(g.dot(d))
            if gtd > -tol_change:  # not a descent direction
                break

            used = 0
            if group["line_search_fn"] == "strong_wolfe":
                start = [p._data.copy() for p in self._params]

                def along(step_len):
                    self._add_to_params(step_len, d)
                    value = float(self._evaluate(closure))
                    grad_at = self._flat_grad()
                    self._set_params(start)
                    return value, grad_at

                loss, g, t, used = strong_wolfe(
                    along, t, d, loss, g, gtd, tolerance_change=tol_change,
                    max_ls=max_eval - evals,
                )
                self._add_to_params(t, d)
                converged = float(xp.abs(g).max()) <= tol_grad
            else:
                self._add_to_params(t, d)
                converged = False
                if n_iter != max_iter:
                    loss = float(self._evaluate(closure))
                    g = self._flat_grad()
                    converged = float(xp.abs(g).max()) <= tol_grad
                    used = 1
            evals += used
            state["func_evals"] += used

            if n_iter == max_iter or evals >= max_eval or converged:
                break
            if float(xp.abs(d * t).max()) <= tol_change:
                break
            if abs(loss - prev_loss) < tol_change:
                break

        state["d"] = _tensor(d)
        state["t"] = float(t)
        state["old_dirs"] = [_tensor(v) for v in dirs]
        state["old_stps"] = [_tensor(v) for v in steps]
        state["ro"] = ro
        state["H_diag"] = h_diag
        state["prev_flat_grad"] = _tensor(prev_g)
        state["prev_loss"] = prev_loss
        return first_loss


def _two_loop(g, dirs, steps, ro, h_diag):
    """-H g by the L-BFGS two-loop recursion over the stored (s, y) pairs."""
    q = -g
    alphas = [0.0] * len(dirs)
    for i in range(len(dirs) - 1, -1, -1):
        alphas[i] = float(steps[i].dot(q)) * ro[i]
        q -= alphas[i] * dirs[i]
    r = q * h_diag
    for i in range(len(dirs)):
        beta = float(dirs[i].dot(r)) * ro[i]
        r += (alphas[i] - beta) * steps[i]
    return r


def _array(value):
    return value._data if isinstance(value, Tensor) else value


def _tensor(array):
    return None if array is None else Tensor._make(array, False, None, 0)


# ---- line search ----------------------------------------------------------------------------


def cubic_minimizer(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimizer of the cubic through (x1, f1, slope g1) and (x2, f2, slope g2), clamped
    to ``bounds`` (default: the interval between x1 and x2); the interval's midpoint when the
    cubic has no minimum."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    a = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = a * a - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    b = disc**0.5
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + b - a) / (g2 - g1 + 2 * b))
    else:
        x = x1 - (x1 - x2) * ((g1 + b - a) / (g1 - g2 + 2 * b))
    return min(max(x, lo), hi)


def strong_wolfe(along, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Find a step length ``t`` along ``d`` meeting the strong Wolfe conditions

        f(t) <= f(0) + c1 t f'(0)       (enough decrease)
        |f'(t)| <= c2 |f'(0)|           (slope flattened enough)

    ``along(t)`` returns the loss and flat gradient at x + t d. First the step grows (by cubic
    extrapolation) until an interval is known to hold such a point; then the interval shrinks
    by cubic interpolation (safeguarded to keep away from its ends) until a point qualifies,
    the interval gets shorter than ``tolerance_change``, or ``max_ls`` evaluations are spent.

    Returns ``(f(t), gradient at t, t, evaluations)``.
    """
    d_norm = float(abs(d).max())
    f_new, g_new = along(t)
    evals = 1
    gtd_new = float(g_new.dot(d))

    # Phase 1: bracket. (t_prev, f_prev, ...) is the previous trial point, starting at 0.
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    iters = 0
    while iters < max_ls:
        if f_new > f + c1 * t * gtd or (iters > 1 and f_new >= f_prev):
            bracket = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new, gtd_new]]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket = [[t, f_new, g_new, gtd_new]]
            done = True
            break
        if gtd_new >= 0:  # the slope turned: a minimum lies between t_prev and t
            bracket = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new, gtd_new]]
            break
        # Still going down: extrapolate, at least 1% beyond t, at most 10 t.
        next_t = cubic_minimizer(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                 bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = next_t
        f_new, g_new = along(t)
        evals += 1
        gtd_new = float(g_new.dot(d))
        iters += 1
    if iters == max_ls:
        # Out of evaluations while still descending. PyTorch keeps the last slopes found in
        # phase 1 for this bracket; phase 2 does not run, so only f and g matter here.
        bracket = [[0, f, g, gtd], [t, f_new, g_new, gtd_new]]

    # Phase 2: zoom. `low` is the end with the lower loss.
    low, high = (0, 1) if bracket[0][1] <= bracket[-1][1] else (1, 0)
    stuck = False
    while not done and iters < max_ls:
        (t_a, f_a, _, s_a), (t_b, f_b, _, s_b) = bracket
        if abs(t_b - t_a) * d_norm < tolerance_change:
            break
        t = cubic_minimizer(t_a, f_a, s_a, t_b, f_b, s_b)
        # Safeguard: a trial too close to an end of the interval makes little progress; the
        # second time in a row (or outside the interval), move it 10% of the width inside.
        lo_t, hi_t = min(t_a, t_b), max(t_a, t_b)
        margin = 0.1 * (hi_t - lo_t)
        if min(hi_t - t, t - lo_t) < margin:
            if stuck or t >= hi_t or t <= lo_t:
                t = hi_t - margin if abs(t - hi_t) < abs(t - lo_t) else lo_t + margin
                stuck = False
            else:
                stuck = True
        else:
            stuck = False

        f_new, g_new = along(t)
        evals += 1
        gtd_new = float(g_new.dot(d))
        iters += 1
        point = [t, f_new, g_new, gtd_new]
        if f_new > f + c1 * t * gtd or f_new >= bracket[low][1]:
            bracket[high] = point  # not low enough: it becomes the high end
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high][0] - bracket[low][0]) >= 0:
                bracket[high] = bracket[low]  # the slope points away from high: drop it
            bracket[low] = point
        low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)

    t, f_new, g_new, _ = bracket[low]
    return f_new, g_new, t, evals
