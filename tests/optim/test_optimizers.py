"""ember.optim optimizers against torch.optim: same model, data and options, 50 steps."""

import numpy
import pytest
import torch

import ember
from ember import optim
from tests.optim import _model

# (ember class name / torch class name, options) — each combination trains the MLP 50 steps.
CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.002, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, eps=1e-6)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.9))),  # beta1 < 0.5: the other lerp form
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.05, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01, weight_decay=0.05, betas=(0.9, 0.9))),
    ("RAdam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, maximize=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, weight_decay=0.05, maximize=True)),
    ("RMSprop", dict(lr=0.005)),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.5)),
    ("RMSprop", dict(lr=0.005, alpha=0.9, weight_decay=0.05, momentum=0.9)),
    ("RMSprop", dict(lr=0.001, centered=True, maximize=True)),
    ("Adagrad", dict(lr=0.05)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.01, eps=1e-6, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.01)),
    ("Adadelta", dict(lr=0.5, maximize=True)),
]


def _ids(case):
    name, options = case
    return name + "(" + ",".join(f"{k}={v}" for k, v in options.items()) + ")"


def _compare(ember_params, torch_params, dtype):
    rtol = 1e-5 if dtype == numpy.float32 else 1e-9
    for i, (e, t) in enumerate(zip(ember_params, torch_params)):
        scale = numpy.abs(t).max()
        numpy.testing.assert_allclose(e, t, rtol=rtol, atol=rtol * scale, err_msg=f"param {i}")


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_matches_torch(case, dtype):
    name, options = case
    make_ours = lambda p: getattr(optim, name)(p, **options)  # noqa: E731
    make_theirs = lambda p: getattr(torch.optim, name)(p, **options)  # noqa: E731
    if dtype == numpy.float64:  # end to end: each framework's own forward and backward
        e = _model.train(make_ours, "ember", dtype)
        t = _model.train(make_theirs, "torch", dtype)
    else:  # float32: shared gradients (see train_lockstep)
        e, t = _model.train_lockstep(make_ours, make_theirs, dtype)
    start, _, _ = _model.make_arrays(dtype)
    assert all(numpy.isfinite(a).all() for a in e), "training diverged; pick a smaller lr"
    assert all(not numpy.allclose(a, b) for a, b in zip(e, start)), "a parameter did not move"
    _compare(e, t, dtype)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_param_groups_with_their_own_options(name):
    groups = [{"lr": 0.02}, {"lr": 0.002, "weight_decay": 0.1}]
    options = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    options["lr"] = 0.01
    e = _model.train(lambda p: getattr(optim, name)(p, **options), "ember", group_split=groups)
    t = _model.train(lambda p: getattr(torch.optim, name)(p, **options), "torch",
                     group_split=groups)
    _compare(e, t, numpy.float64)


def test_defaults_match_torch():
    for name in ["SGD", "Adam", "AdamW", "NAdam", "RAdam", "Adamax", "RMSprop", "Adagrad",
                 "Adadelta", "LBFGS"]:
        w = ember.zeros(2, requires_grad=True)
        tw = torch.zeros(2, requires_grad=True)
        ours = getattr(optim, name)([w]).defaults
        theirs = getattr(torch.optim, name)([tw]).defaults
        for key, value in ours.items():
            expected = theirs[key]
            assert value == (tuple(expected) if key == "betas" else expected), (name, key)


def test_parameters_without_grad_are_skipped():
    params, x, y = _model.ember_problem()
    unused = ember.ones(3, requires_grad=True)
    opt = optim.Adam(params + [unused], lr=0.1)
    _model.loss_fn(params, x, y).backward()
    opt.step()
    assert unused not in opt.state
    numpy.testing.assert_array_equal(unused.detach().numpy(), numpy.ones(3, numpy.float32))
    assert opt.state[params[0]]["step"] == 1


def test_step_bumps_the_version_counter():
    w = ember.ones(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    before = w._version[0]
    opt.step()
    assert w._version[0] == before + 1


def test_step_records_no_graph():
    w = ember.ones(3, requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    assert w.is_leaf and w.grad_fn is None and w.requires_grad


def test_closure_is_evaluated_with_grad_and_its_loss_returned():
    params, x, y = _model.ember_problem()
    opt = optim.SGD(params, lr=0.1)

    def closure():
        opt.zero_grad()
        loss = _model.loss_fn(params, x, y)
        loss.backward()
        return loss

    with ember.no_grad():
        loss = opt.step(closure)
    tparams, tx, ty = _model.torch_problem()
    assert loss.item() == pytest.approx(_model.loss_fn(tparams, tx, ty).item())
    assert params[0].grad is not None


def test_zero_grad_sets_to_none_or_fills_zeros():
    w = ember.ones(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    numpy.testing.assert_array_equal(w.grad.numpy(), numpy.zeros(3, numpy.float32))
    (w * w).sum().backward()  # accumulates onto the zeros
    numpy.testing.assert_array_equal(w.grad.numpy(), numpy.full(3, 2.0, numpy.float32))
    opt.zero_grad()
    assert w.grad is None


def _train_steps(opt, params, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        _model.loss_fn(params, x, y).backward()
        opt.step()


@pytest.mark.parametrize("name, options", [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("NAdam", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adadelta", dict()),
])
def test_state_dict_round_trip_continues_the_same_trajectory(name, options):
    params, x, y = _model.ember_problem()
    opt = getattr(optim, name)(params, **options)
    _train_steps(opt, params, x, y, 10)
    saved = opt.state_dict()
    saved_params = [p.detach().numpy().copy() for p in params]
    _train_steps(opt, params, x, y, 10)

    fresh = [ember.tensor(a, requires_grad=True) for a in saved_params]
    opt2 = getattr(optim, name)(fresh, lr=123.0)  # lr comes back from the state dict
    opt2.load_state_dict(saved)
    _train_steps(opt2, fresh, x, y, 10)
    for a, b in zip(params, fresh):
        numpy.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_state_dict_layout_matches_torch():
    params, x, y = _model.ember_problem()
    opt = optim.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.1}], lr=0.01)
    _train_steps(opt, params, x, y, 2)
    sd = opt.state_dict()

    tparams, tx, ty = _model.torch_problem()
    topt = torch.optim.Adam([{"params": tparams[:2]}, {"params": tparams[2:], "lr": 0.1}],
                            lr=0.01)
    _train_steps(topt, tparams, tx, ty, 2)
    tsd = topt.state_dict()

    assert set(sd) == set(tsd) == {"state", "param_groups"}
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for i in tsd["state"]:
        assert set(sd["state"][i]) == set(tsd["state"][i])
        assert sd["state"][i]["step"] == tsd["state"][i]["step"].item()
        assert isinstance(sd["state"][i]["exp_avg"], ember.Tensor)
        numpy.testing.assert_allclose(sd["state"][i]["exp_avg"].numpy(),
                                      tsd["state"][i]["exp_avg"].numpy(), rtol=1e-12)
    for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
        assert g["params"] == tg["params"]
        for key in g:
            assert g[key] == tg[key], key


def test_state_dict_is_a_snapshot():
    w = ember.ones(3, requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    sd = opt.state_dict()
    before = sd["state"][0]["exp_avg"].numpy().copy()
    opt.step()
    numpy.testing.assert_array_equal(sd["state"][0]["exp_avg"].numpy(), before)


def test_load_state_dict_rejects_a_different_layout():
    a, b, c = (ember.ones(2, requires_grad=True) for _ in range(3))
    sd = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(optim.OptimizerError, match="2 parameters in the state dict and 3"):
        optim.SGD([a, b, c], lr=0.1).load_state_dict(sd)
    with pytest.raises(optim.OptimizerError, match="1 parameter groups, this optimizer has 2"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(optim.OptimizerError, match="keys 'state' and 'param_groups'"):
        optim.SGD([a], lr=0.1).load_state_dict({"state": {}})


def test_load_state_dict_casts_state_to_the_parameter_dtype():
    w64 = ember.tensor([1.0, 2.0], dtype=ember.float64, requires_grad=True)
    opt = optim.Adam([w64], lr=0.1)
    (w64 * w64).sum().backward()
    opt.step()
    w32 = ember.tensor([1.0, 2.0], requires_grad=True)
    opt32 = optim.Adam([w32], lr=0.1)
    opt32.load_state_dict(opt.state_dict())
    assert opt32.state[w32]["exp_avg"].dtype == ember.float32
    assert opt32.state[w32]["step"] == 1


def test_add_param_group():
    a, b = ember.ones(2, requires_grad=True), ember.ones(2, requires_grad=True)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [b], "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(optim.OptimizerError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_deferred_binding():
    opt = optim.Adam(lr=0.01)
    assert not opt.is_bound
    with pytest.raises(optim.UnboundOptimizerError, match=r"bind it first.*model.compile"):
        opt.step()
    assert "unbound" in repr(opt)
    params, x, y = _model.ember_problem()
    assert opt.bind(params) is opt
    _train_steps(opt, params, x, y, 50)
    t = _model.train(lambda p: torch.optim.Adam(p, lr=0.01), "torch")
    _compare([p.detach().numpy() for p in params], t, numpy.float64)
    with pytest.raises(optim.OptimizerError, match="already bound"):
        opt.bind(params)


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.Adam(p, lr=-1), "Adam: lr must be >= 0, got -1"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), r"Adam: betas\[0\] must be in \[0, 1\), got 1.0"),
    (lambda p: optim.AdamW(p, eps=-1e-8), "AdamW: eps must be >= 0, got -1e-08"),
    (lambda p: optim.SGD(p, momentum=-0.1), "SGD: momentum must be >= 0, got -0.1"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "SGD: nesterov=True needs momentum > 0"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "dampening = 0"),
    (lambda p: optim.RMSprop(p, alpha=-1), "RMSprop: alpha must be >= 0"),
    (lambda p: optim.Adadelta(p, rho=1.5), r"Adadelta: rho must be in \[0, 1\], got 1.5"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "Adagrad: lr_decay must be >= 0"),
    (lambda p: optim.SGD([{"params": p, "lr": -2}]), "SGD: lr must be >= 0, got -2"),
    (lambda p: optim.LBFGS(p, line_search_fn="armijo"), "line_search_fn must be None or"),
    (lambda p: optim.SGD([], lr=0.1), "SGD: got an empty parameter list"),
    (lambda p: optim.SGD(p[0], lr=0.1), "got a single Tensor"),
    (lambda p: optim.SGD([p[0], p[0]], lr=0.1), "SGD: parameter 1 appears twice"),
])
def test_bad_options_raise_clear_errors(make, message):
    p = [ember.ones(2, requires_grad=True), ember.ones(2, requires_grad=True)]
    with pytest.raises(optim.OptimizerError, match=message):
        make(p)


def test_bad_parameters_raise_clear_errors():
    w = ember.ones(2, requires_grad=True)
    ints = ember.tensor([1, 2])
    with pytest.raises(ember.errors.DTypeError,
                       match="SGD: parameter 3 is not a floating-point tensor"):
        optim.SGD([ember.ones(1), ember.ones(1), ember.ones(1), ints], lr=0.1)
    with pytest.raises(optim.OptimizerError, match="parameter 0 is not a leaf tensor"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(optim.OptimizerError, match="parameter 1 is a list, not an ember Tensor"):
        optim.SGD([w, [1.0]], lr=0.1)


def test_lr_change_in_param_group_takes_effect():
    w = ember.tensor([1.0], dtype=ember.float64, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * 1.0).sum().backward()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    assert w.item() == pytest.approx(0.5)
