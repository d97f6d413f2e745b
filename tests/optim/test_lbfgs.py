"""LBFGS against torch.optim.LBFGS: Rosenbrock and the MLP, with and without the strong-Wolfe
line search, in float64."""

import numpy
import pytest
import torch

import ember
from ember import optim
from ember.optim import lbfgs
from tests.optim import _model


def _rosenbrock(a, b):
    return (1 - a) * (1 - a) + 100 * (b - a * a) * (b - a * a)


def _run(lib, tensor, params, loss_of, steps, **options):
    opt = lib.LBFGS(params, **options)
    losses = []

    def closure():
        opt.zero_grad()
        loss = loss_of()
        loss.backward()
        return loss

    for _ in range(steps):
        losses.append(float(opt.step(closure).detach()))
    state = opt.state[params[0]]
    return losses, [p.detach().numpy().copy() for p in params], state["func_evals"]


def _rosenbrock_run(framework, steps, **options):
    lib, tensor = (optim, ember.tensor) if framework == "ember" else (torch.optim, torch.tensor)
    a = tensor(numpy.array([-1.5]), requires_grad=True)
    b = tensor(numpy.array([2.0]), requires_grad=True)
    return _run(lib, tensor, [a, b], lambda: _rosenbrock(a, b).sum(), steps, **options)


@pytest.mark.parametrize("options", [
    dict(line_search_fn="strong_wolfe"),
    dict(line_search_fn="strong_wolfe", history_size=3, max_iter=7),
    dict(lr=0.2, max_iter=10),
    dict(lr=0.5, history_size=2, max_eval=12),
], ids=["wolfe", "wolfe-short-history", "fixed-step", "fixed-short-history"])
def test_rosenbrock_matches_torch(options):
    e_losses, e_params, e_evals = _rosenbrock_run("ember", 6, **options)
    t_losses, t_params, t_evals = _rosenbrock_run("torch", 6, **options)
    numpy.testing.assert_allclose(e_losses, t_losses, rtol=1e-8, atol=1e-14)
    for e, t in zip(e_params, t_params):
        numpy.testing.assert_allclose(e, t, rtol=1e-7)
    assert e_evals == t_evals
    assert e_losses[-1] < e_losses[0]


def test_rosenbrock_converges_with_strong_wolfe():
    losses, (a, b), _ = _rosenbrock_run("ember", 10, line_search_fn="strong_wolfe")
    assert losses[-1] < 1e-8
    numpy.testing.assert_allclose([a[0], b[0]], [1.0, 1.0], atol=1e-4)


@pytest.mark.parametrize("options", [dict(line_search_fn="strong_wolfe"), dict(lr=0.3)],
                         ids=["wolfe", "fixed-step"])
def test_mlp_matches_torch(options):
    results = []
    for framework in ("ember", "torch"):
        make = _model.ember_problem if framework == "ember" else _model.torch_problem
        params, x, y = make()
        lib = optim if framework == "ember" else torch.optim
        results.append(_run(lib, None, params, lambda: _model.loss_fn(params, x, y), 4,
                            history_size=5, **options))
    (e_losses, e_params, e_evals), (t_losses, t_params, t_evals) = results
    numpy.testing.assert_allclose(e_losses, t_losses, rtol=1e-8)
    for e, t in zip(e_params, t_params):
        # 80 quasi-Newton iterations amplify rounding: compare relative to the weights' scale
        numpy.testing.assert_allclose(e, t, rtol=1e-6, atol=1e-8 * numpy.abs(t).max())
    assert e_evals == t_evals
    assert e_losses[-1] < 0.9 * e_losses[0]


def test_state_dict_round_trip_continues_the_same_trajectory():
    def fresh():
        a = ember.tensor(numpy.array([-1.5]), requires_grad=True)
        b = ember.tensor(numpy.array([2.0]), requires_grad=True)
        return a, b

    def closure_for(opt, a, b):
        def closure():
            opt.zero_grad()
            loss = _rosenbrock(a, b).sum()
            loss.backward()
            return loss
        return closure

    a, b = fresh()
    opt = optim.LBFGS([a, b], line_search_fn="strong_wolfe", max_iter=3)
    opt.step(closure_for(opt, a, b))
    saved = opt.state_dict()
    at = (a.detach().numpy().copy(), b.detach().numpy().copy())
    opt.step(closure_for(opt, a, b))

    a2, b2 = fresh()
    a2._data[...] = at[0]
    b2._data[...] = at[1]
    opt2 = optim.LBFGS([a2, b2], line_search_fn="strong_wolfe", max_iter=3)
    opt2.load_state_dict(saved)
    opt2.step(closure_for(opt2, a2, b2))
    numpy.testing.assert_array_equal(a.detach().numpy(), a2.detach().numpy())
    numpy.testing.assert_array_equal(b.detach().numpy(), b2.detach().numpy())


def test_stops_at_once_when_the_gradient_is_zero():
    w = ember.tensor(numpy.array([1.0]), requires_grad=True)
    opt = optim.LBFGS([w])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = ((w - 1.0) * (w - 1.0)).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure)) == 0.0
    assert len(calls) == 1 and w.item() == 1.0


def test_cubic_minimizer_finds_the_minimum_of_a_cubic():
    # f(x) = x**3 - 3x has its local minimum at x = 1
    f = lambda x: x**3 - 3 * x  # noqa: E731
    df = lambda x: 3 * x**2 - 3  # noqa: E731
    assert lbfgs.cubic_minimizer(0.0, f(0.0), df(0.0), 2.0, f(2.0), df(2.0)) == pytest.approx(1.0)
    # clamped to the bounds given
    assert lbfgs.cubic_minimizer(0.0, f(0.0), df(0.0), 2.0, f(2.0), df(2.0),
                                 bounds=(1.5, 3.0)) == 1.5


def test_errors():
    a, b = ember.ones(1, requires_grad=True), ember.ones(1, requires_grad=True)
    with pytest.raises(optim.OptimizerError, match="LBFGS.step needs a closure"):
        optim.LBFGS([a]).step()
    with pytest.raises(optim.OptimizerError, match="single parameter group"):
        optim.LBFGS([{"params": [a]}, {"params": [b]}])
    with pytest.raises(optim.UnboundOptimizerError, match="bind it first"):
        optim.LBFGS().step(lambda: 0.0)
