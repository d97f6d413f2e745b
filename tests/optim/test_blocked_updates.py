"""The blocked update path of ember.optim (``Optimizer._apply``): with tiny blocks and two
threads allowed, every elementwise optimizer must stay on the calling thread, give bit-for-bit
the results of the whole-array path, still match torch.optim, work on non-contiguous arrays and other array
modules, and keep its scratch buffers out of the state dict."""

import numpy
import pytest
import torch

import ember
from ember import optim
from ember.backend import threads
from ember.optim import optimizer
from tests.optim import _model
from tests.optim.test_optimizers import CASES, _compare

OPTIONS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.9), weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
    # the other optimizers run through the same helper
    ("NAdam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)),
    ("NAdam", dict(lr=0.01, weight_decay=0.05, maximize=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.05)),
    ("RAdam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, maximize=True)),
    ("Adamax", dict(lr=0.01, weight_decay=0.05, maximize=True)),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.005, maximize=True)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01)),
    ("Adadelta", dict(lr=0.5, rho=0.95, maximize=True)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.01)),
]
SHAPES = [(37, 11), (5,), (130,), (3, 1, 9)]


def _ids(case):
    name, options = case
    return name + "(" + ",".join(f"{k}={v}" for k, v in options.items()) + ")"


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of 4 elements and two threads: every path of _apply on small tensors."""
    monkeypatch.setattr(optimizer, "BLOCK", 4)
    monkeypatch.setattr(threads, "_COUNT", [2])


def _run(name, options, dtype=numpy.float32, steps=4, layout="C", grad_layout="C"):
    """Steps of ``name`` on SHAPES with fixed random gradients; returns (params, optimizer)."""
    rng = numpy.random.default_rng(1)
    order = lambda a, how: numpy.asfortranarray(a) if how == "F" else a  # noqa: E731
    params = [ember.tensor(order(rng.standard_normal(s).astype(dtype), layout),
                           requires_grad=True) for s in SHAPES]
    opt = getattr(optim, name)(params, **options)
    for _ in range(steps):
        for p in params:
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad = ember.tensor(order(g, grad_layout))
        opt.step()
    return [p.detach().numpy().copy() for p in params], opt


def _whole(name, options, monkeypatch, **kwargs):
    """The same run with one block per parameter and one thread: the whole-array path."""
    with monkeypatch.context() as m:
        m.setattr(optimizer, "BLOCK", 10**9)
        m.setattr(threads, "_COUNT", [1])
        return _run(name, options, **kwargs)[0]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", OPTIONS, ids=[_ids(c) for c in OPTIONS])
def test_blocks_give_the_whole_array_result_on_the_calling_thread(case, dtype, tiny_blocks,
                                                                 monkeypatch):
    name, options = case
    calls = []
    parallel = threads.parallel

    def spy(job, n, grain=1, xp=None):
        calls.append(n)
        return parallel(job, n, grain, xp)

    monkeypatch.setattr(threads, "parallel", spy)
    blocked, _ = _run(name, options, dtype)
    assert calls == [], "updates are split between threads (slower: NOTE at optimizer.BLOCK)"
    for a, b in zip(blocked, _whole(name, options, monkeypatch, dtype=dtype)):
        numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layout, grad_layout", [("F", "C"), ("C", "F"), ("F", "F")])
@pytest.mark.parametrize("case", [OPTIONS[3], OPTIONS[6], OPTIONS[9]],
                         ids=[_ids(c) for c in (OPTIONS[3], OPTIONS[6], OPTIONS[9])])
def test_non_contiguous_arrays_take_the_whole_array_path(case, layout, grad_layout,
                                                         tiny_blocks, monkeypatch):
    name, options = case
    strided, opt = _run(name, options, layout=layout, grad_layout=grad_layout)
    contiguous = _whole(name, options, monkeypatch)
    for a, b in zip(strided, contiguous):
        numpy.testing.assert_array_equal(a, b)
    if layout == "F":  # state arrays follow the parameter's layout
        assert not opt.state[opt.param_groups[0]["params"][0]].get(
            "momentum_buffer", opt.state[opt.param_groups[0]["params"][0]].get("exp_avg")
        )._data.flags.c_contiguous


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_blocked_path_still_matches_torch(case, tiny_blocks):
    name, options = case
    e = _model.train(lambda p: getattr(optim, name)(p, **options), "ember")
    t = _model.train(lambda p: getattr(torch.optim, name)(p, **options), "torch")
    _compare(e, t, numpy.float64)


@pytest.mark.parametrize("case", [OPTIONS[4], OPTIONS[6], OPTIONS[9]],
                         ids=[_ids(c) for c in (OPTIONS[4], OPTIONS[6], OPTIONS[9])])
def test_scratch_is_reused_and_stays_out_of_the_state_dict(case, tiny_blocks):
    name, options = case
    params, opt = _run(name, options, steps=2)
    pool = {key: [id(a) for a in arrays] for key, arrays in opt._scratch.items()}
    assert pool, "the blocked path used no scratch buffers"
    for p in opt.param_groups[0]["params"]:
        p.grad = ember.ones(p.shape)
    opt.step()
    assert {key: [id(a) for a in arrays] for key, arrays in opt._scratch.items()} == pool

    expected = {"SGD": {"momentum_buffer"}, "Adam": {"step", "exp_avg", "exp_avg_sq"}}
    expected["AdamW"] = expected["Adam"]
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    for entry in sd["state"].values():
        keys = expected[name] | ({"max_exp_avg_sq"} if options.get("amsgrad") else set())
        assert set(entry) == keys
    for group in sd["param_groups"]:
        assert "_scratch" not in group and "scratch" not in group


def test_state_dict_round_trip_under_blocks(tiny_blocks):
    params, x, y = _model.ember_problem()
    opt = optim.Adam(params, lr=0.01, amsgrad=True)

    def steps(o, ps):
        for _ in range(5):
            o.zero_grad()
            _model.loss_fn(ps, x, y).backward()
            o.step()

    steps(opt, params)
    saved = opt.state_dict()
    saved_params = [p.detach().numpy().copy() for p in params]
    steps(opt, params)
    fresh = [ember.tensor(a, requires_grad=True) for a in saved_params]
    opt2 = optim.Adam(fresh, lr=1.0)
    opt2.load_state_dict(saved)
    steps(opt2, fresh)
    for a, b in zip(params, fresh):
        numpy.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_empty_and_zero_dim_parameters(tiny_blocks):
    empty = ember.zeros(0, 3, requires_grad=True)
    scalar = ember.tensor(2.0, requires_grad=True)
    opt = optim.AdamW([empty, scalar], lr=0.1)
    empty.grad, scalar.grad = ember.zeros(0, 3), ember.tensor(1.0)
    opt.step()
    assert empty.shape == (0, 3)
    assert scalar.item() < 2.0


class _OtherModule:
    """Stands in for CuPy: an array module not named numpy (it hands the math to NumPy)."""

    __name__ = "fakecupy"

    def __init__(self):
        self.calls = set()

    def __getattr__(self, name):
        self.calls.add(name)
        return getattr(numpy, name)


@pytest.mark.parametrize("case", [OPTIONS[3], OPTIONS[6], OPTIONS[9]],
                         ids=[_ids(c) for c in (OPTIONS[3], OPTIONS[6], OPTIONS[9])])
def test_other_array_modules_run_whole_arrays_through_their_own_module(case, tiny_blocks,
                                                                       monkeypatch):
    name, options = case
    fake = _OtherModule()
    expected = _whole(name, options, monkeypatch)
    monkeypatch.setattr(optimizer.devices, "get_array_module", lambda *arrays: fake)
    monkeypatch.setattr(threads, "parallel", lambda *a, **k: pytest.fail("split a CuPy job"))
    seen = []
    apply = optimizer.Optimizer._apply

    def spy(self, update, arrays, *args):
        seen.append(arrays[0].size)
        return apply(self, update, arrays, *args)

    monkeypatch.setattr(optimizer.Optimizer, "_apply", spy)
    got, _ = _run(name, options)
    assert "empty_like" in fake.calls and "multiply" in fake.calls
    assert max(seen) == 37 * 11
    for a, b in zip(got, expected):
        numpy.testing.assert_array_equal(a, b)
