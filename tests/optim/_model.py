"""The small problem every optimizer test trains: a 2-layer MLP written with raw tensors,
run side by side in ember and PyTorch from the same weights and data."""

import numpy
import torch

import ember

IN, HIDDEN, OUT, BATCH = 5, 7, 3, 16


def make_arrays(dtype=numpy.float64, seed=0):
    """Initial weights W1, b1, W2, b2 and the data X, Y as NumPy arrays of ``dtype``."""
    rng = numpy.random.default_rng(seed)
    weights = [
        rng.standard_normal((IN, HIDDEN)) * 0.5,
        rng.standard_normal((HIDDEN,)) * 0.1,
        rng.standard_normal((HIDDEN, OUT)) * 0.5,
        rng.standard_normal((OUT,)) * 0.1,
    ]
    x = rng.standard_normal((BATCH, IN))
    y = rng.standard_normal((BATCH, OUT))
    return [w.astype(dtype) for w in weights], x.astype(dtype), y.astype(dtype)


def loss_fn(params, x, y):
    """Mean squared error of silu(x W1 + b1) W2 + b2; works for ember and torch tensors.

    silu(z) = z / (1 + exp(-z)) is written out from basic ops, and is smooth, so tiny rounding
    differences between the frameworks do not flip a kink the way relu can.
    """
    w1, b1, w2, b2 = params
    z = x @ w1 + b1
    h = z / (1 + (-z).exp())
    d = h @ w2 + b2 - y
    return (d * d).mean()


def ember_problem(dtype=numpy.float64, seed=0):
    weights, x, y = make_arrays(dtype, seed)
    params = [ember.tensor(w, requires_grad=True) for w in weights]
    return params, ember.tensor(x), ember.tensor(y)


def torch_problem(dtype=numpy.float64, seed=0):
    weights, x, y = make_arrays(dtype, seed)
    params = [torch.tensor(w, requires_grad=True) for w in weights]
    return params, torch.tensor(x), torch.tensor(y)


def train(make_opt, framework, dtype=numpy.float64, steps=50, group_split=None):
    """Train ``steps`` steps; returns the final parameters as NumPy arrays.

    ``make_opt(params_or_groups)`` builds the optimizer; ``group_split`` (a list of option
    dicts) puts W1, b1 in the first group and W2, b2 in the second.
    """
    params, x, y = (ember_problem if framework == "ember" else torch_problem)(dtype)
    target = params
    if group_split is not None:
        target = [dict(group_split[0], params=params[:2]), dict(group_split[1], params=params[2:])]
    opt = make_opt(target)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(params, x, y).backward()
        opt.step()
    return [to_numpy(p) for p in params]


def train_lockstep(make_ember_opt, make_torch_opt, dtype=numpy.float32, steps=50):
    """Train both frameworks in lockstep, handing ember's gradients to torch at every step.

    In float32 the two autograds round differently; a gradient entry near zero then gets a
    different sign, and an Adam-like update (about +-lr whatever the size) makes the
    trajectories part. Sharing the gradient leaves only the optimizers' arithmetic to compare.
    Returns (ember params, torch params) as NumPy arrays.
    """
    params, x, y = ember_problem(dtype)
    tparams, _, _ = torch_problem(dtype)
    opt, topt = make_ember_opt(params), make_torch_opt(tparams)
    for _ in range(steps):
        opt.zero_grad()
        topt.zero_grad()
        loss_fn(params, x, y).backward()
        for p, tp in zip(params, tparams):
            tp.grad = torch.tensor(p.grad.numpy())
        opt.step()
        topt.step()
    return [to_numpy(p) for p in params], [to_numpy(p) for p in tparams]


def to_numpy(t):
    return t.detach().numpy().copy()
