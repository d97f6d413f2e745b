"""ember.optim.lr_scheduler against torch.optim.lr_scheduler: the same learning-rate (and
momentum) sequences over 100 steps, to 1e-10."""

import warnings

import numpy
import pytest
import torch

import ember
from ember import optim
from ember.optim import lr_scheduler as ours

STEPS = 100


def _optimizers(kind="SGD", **options):
    """An ember and a torch optimizer of ``kind`` with two groups (lr 0.1 and 0.05)."""
    options = dict({"momentum": 0.9} if kind == "SGD" else {}, **options)
    made = []
    for lib, tensor in ((optim, ember.zeros), (torch.optim, torch.zeros)):
        a, b = tensor(2, requires_grad=True), tensor(3, requires_grad=True)
        made.append(getattr(lib, kind)([{"params": [a]}, {"params": [b], "lr": 0.05}], lr=0.1,
                                        **options))
    return made


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def _run(scheduler, opt, steps=STEPS, epochs=None):
    lrs, momenta = [scheduler.get_last_lr()], [_momenta(opt)]
    for i in range(steps):
        opt.step()
        if epochs is None:
            scheduler.step()
        else:
            scheduler.step(epochs[i])
        lrs.append(scheduler.get_last_lr())
        momenta.append(_momenta(opt))
        assert scheduler.get_last_lr() == [g["lr"] for g in opt.param_groups]
    return numpy.array(lrs, dtype=float), numpy.array(momenta, dtype=float)


def _check(make, kind="SGD", steps=STEPS, epochs=None, **options):
    e_opt, t_opt = _optimizers(kind, **options)
    e_lrs, e_mom = _run(make(ours, e_opt), e_opt, steps, epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notice for step(epoch)
        t_lrs, t_mom = _run(make(torch.optim.lr_scheduler, t_opt), t_opt, steps, epochs)
    numpy.testing.assert_allclose(e_lrs, t_lrs, rtol=1e-10, atol=1e-14)
    numpy.testing.assert_allclose(e_mom, t_mom, rtol=1e-10, atol=1e-14)
    assert len(set(map(tuple, e_lrs.tolist()))) > 1, "the schedule never changed the lr"
    return e_lrs


SCHEDULES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[10, 30, 30, 70], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.97),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=40),
    "LinearLR-down": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=9),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.4, total_iters=12),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=60, power=2.0),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 0.95**e),
    "LambdaLR-per-group": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (1 + e), lambda e: 0.9**e]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.98),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=30, eta_min=0.001),
    "CosineAnnealingLR-long": lambda m, o: m.CosineAnnealingLR(o, T_max=100),
    "WarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=10, eta_min=0.002),
    "WarmRestarts-mult": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2),
    "OneCycleLR-cos": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS),
    "OneCycleLR-linear-3phase": lambda m, o: m.OneCycleLR(
        o, max_lr=0.8, epochs=10, steps_per_epoch=10, pct_start=0.25, anneal_strategy="linear",
        three_phase=True, div_factor=10.0, final_div_factor=100.0),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=STEPS,
                                                        cycle_momentum=False),
    "CyclicLR-triangular": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=7),
    "CyclicLR-triangular2": lambda m, o: m.CyclicLR(o, [0.01, 0.02], 0.1, step_size_up=5,
                                                    step_size_down=9, mode="triangular2"),
    "CyclicLR-exp_range": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=6,
                                                  mode="exp_range", gamma=0.98),
    "CyclicLR-scale_fn": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=4,
                                                 scale_fn=lambda x: 1 / (1 + 0.1 * x),
                                                 scale_mode="iterations"),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.ExponentialLR(o, gamma=0.9),
            m.CosineAnnealingLR(o, T_max=20)], milestones=[5, 40]),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_sequence_matches_torch(name):
    _check(SCHEDULES[name])


@pytest.mark.parametrize("name", ["OneCycleLR-cos", "OneCycleLR-linear-3phase",
                                  "CyclicLR-triangular"])
def test_cycled_betas_match_torch_for_adam(name):
    _check(SCHEDULES[name], kind="Adam")


def test_warm_restarts_with_fractional_epochs():
    epochs = [i / 4 for i in range(1, STEPS + 1)]
    lrs = _check(SCHEDULES["WarmRestarts-mult"], epochs=epochs)
    assert lrs[20, 0] == pytest.approx(0.1)  # epoch 5: the first restart


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "LinearLR",
                                  "ConstantLR", "PolynomialLR", "CosineAnnealingLR"])
def test_step_to_an_epoch_uses_the_closed_form(name):
    epochs = [3, 7, 8, 20, 21, 35, 50, 51, 52, 99] * 2
    _check(SCHEDULES[name], steps=len(epochs), epochs=epochs)


def test_chained_schedulers_compose_like_torch():
    def make(m, o):
        first = m.ExponentialLR(o, gamma=0.95)
        second = m.StepLR(o, step_size=10, gamma=0.5)

        class Both:
            def step(self):
                first.step()
                second.step()

            def get_last_lr(self):
                return second.get_last_lr()

        return Both()

    _check(make)


def test_reduce_lr_on_plateau_matches_torch():
    rng = numpy.random.default_rng(1)
    metrics = list(numpy.concatenate([numpy.linspace(1, 0.5, 20), 0.5 + 0.01 * rng.random(40),
                                      numpy.linspace(0.5, 0.2, 20), numpy.full(20, 0.2)]))
    configs = [
        dict(patience=3),
        dict(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="abs"),
        dict(factor=0.5, patience=2, cooldown=4, min_lr=[0.01, 0.02]),
        dict(factor=0.2, patience=0, min_lr=1e-3, eps=1e-4, threshold=0.05),
    ]
    for config in configs:
        e_opt, t_opt = _optimizers()
        e = ours.ReduceLROnPlateau(e_opt, **config)
        t = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **config)
        e_lrs, t_lrs = [], []
        for value in metrics:
            e.step(ember.tensor(value) if value < 0.3 else value)
            t.step(value)
            e_lrs.append(e.get_last_lr())
            t_lrs.append(t.get_last_lr())
        assert e_lrs == t_lrs, config
        assert len(set(map(tuple, e_lrs))) > 1, config


def test_reduce_lr_on_plateau_state_dict_round_trip():
    e_opt, _ = _optimizers()
    sched = ours.ReduceLROnPlateau(e_opt, patience=1)
    for v in [1.0, 0.9, 0.95, 0.96]:
        sched.step(v)
    saved = sched.state_dict()
    assert "optimizer" not in saved
    other = ours.ReduceLROnPlateau(_optimizers()[0], mode="max")
    other.load_state_dict(saved)
    assert (other.best, other.num_bad_epochs, other.mode) == (0.9, 0, "min")


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "WarmRestarts-mult",
                                  "OneCycleLR-cos", "CyclicLR-exp_range", "SequentialLR",
                                  "LambdaLR"])
def test_state_dict_round_trip_resumes_the_sequence(name):
    make = SCHEDULES[name]
    opt, _ = _optimizers()
    sched = make(ours, opt)
    for _ in range(37):
        opt.step()
        sched.step()
    saved_sched, saved_opt = sched.state_dict(), opt.state_dict()
    expected, _ = _run(sched, opt, steps=30)

    opt2, _ = _optimizers()
    sched2 = make(ours, opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    got, _ = _run(sched2, opt2, steps=30)
    numpy.testing.assert_array_equal(got, expected)


def test_lambda_state_dict_keeps_callable_objects_not_functions():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, epoch):
            return self.rate**epoch

    opt, _ = _optimizers()
    sched = ours.LambdaLR(opt, [Decay(0.5), lambda e: 1.0])
    saved = sched.state_dict()
    assert saved["lr_lambdas"] == [{"rate": 0.5}, None]
    sched.lr_lambdas[0].rate = 0.1
    sched.load_state_dict(saved)
    assert sched.lr_lambdas[0].rate == 0.5


@pytest.mark.parametrize("make, message", [
    (lambda o: ours.OneCycleLR(o, max_lr=1.0), "give total_steps, or both epochs"),
    (lambda o: ours.OneCycleLR(o, max_lr=[1.0], total_steps=10),
     "expected 2 values for max_lr"),
    (lambda o: ours.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=2.0),
     r"pct_start must be a float in \[0, 1\]"),
    (lambda o: ours.CyclicLR(o, 0.1, 1.0, mode="sine"), "mode must be 'triangular'"),
    (lambda o: ours.ConstantLR(o, factor=2.0), r"ConstantLR: factor must be in \[0, 1\]"),
    (lambda o: ours.CosineAnnealingWarmRestarts(o, T_0=0), "T_0 must be a positive integer"),
    (lambda o: ours.ReduceLROnPlateau(o, factor=1.5), "factor must be < 1.0"),
    (lambda o: ours.ReduceLROnPlateau(o, mode="best"), "mode must be 'min' or 'max'"),
    (lambda o: ours.SequentialLR(o, [ours.StepLR(o, 3)], milestones=[4]),
     "expected 0 milestones for 1 schedulers"),
    (lambda o: ours.StepLR(o, 3, last_epoch=5), "has no 'initial_lr'"),
])
def test_bad_arguments_raise_clear_errors(make, message):
    opt, _ = _optimizers()
    with pytest.raises(optim.OptimizerError, match=message):
        make(opt)


def test_cycle_momentum_needs_momentum_or_betas():
    opt = optim.Adagrad([ember.zeros(2, requires_grad=True)])
    with pytest.raises(optim.OptimizerError, match="cycle_momentum=True needs an optimizer"):
        ours.OneCycleLR(opt, max_lr=0.1, total_steps=10)


def test_one_cycle_stepping_past_the_end_raises():
    opt, _ = _optimizers()
    sched = ours.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(optim.OptimizerError, match="stepped 4 times, but total_steps is 3"):
        sched.step()


def test_scheduler_on_an_unbound_optimizer_raises():
    with pytest.raises(optim.UnboundOptimizerError, match="bind it"):
        ours.StepLR(optim.SGD(lr=0.1), step_size=2)
