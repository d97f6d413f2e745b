"""cross_entropy's native passes (ember/ops/_xent_native.py, native/xent.c): against PyTorch
forward and backward, against ember's own NumPy path (NaN, inf and ignored rows included), the
cases that keep the NumPy path, target checks that never let the C code index out of bounds,
and double backward (which keeps the ember-ops formula)."""

import os
import shutil

import numpy
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F
from ember.ops import _xent_native, loss
from tests.oracle import check_double_backward, check_op

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None,
                                reason="no C compiler: ember uses its NumPy path")

REDUCTIONS = ("none", "mean", "sum")
DTYPES = (numpy.float32, numpy.float64)
TOL = {numpy.float32: {"rtol": 2e-6, "atol": 1e-6}, numpy.float64: {"rtol": 1e-12, "atol": 1e-14}}


@pytest.fixture
def calls(monkeypatch):
    """The native passes that ran ('forward', 'backward'), through a spy library."""
    lib = _xent_native.library(numpy.zeros((1, 1)))
    assert lib is not None
    seen = []

    class Spy:
        def ember_xent_forward(self, *args):
            seen.append("forward")
            return lib.ember_xent_forward(*args)

        def ember_xent_backward(self, *args):
            seen.append("backward")
            return lib.ember_xent_backward(*args)

    monkeypatch.setattr(_xent_native, "_LIB", [Spy()])
    return seen


def _numpy_path(monkeypatch):
    monkeypatch.setattr(_xent_native, "_LIB", [None])


def _targets(r, m, c, ignored):
    t = r.integers(0, c, m)
    if ignored == "some":  # never row 0: one row is all of (1, C)
        t[1::3] = -100
    elif ignored == "all":
        t[:] = -100
    return t


def _ember(x, t, g, **kw):
    """(loss, gradient of x) of ember's cross_entropy, backward with the output weights g."""
    xe = ember.tensor(x, requires_grad=True)
    out = F.cross_entropy(xe, ember.tensor(t), **kw)
    out.backward(ember.tensor(g))
    return out.detach().numpy(), xe.grad.numpy()


def _torch(x, t, g, **kw):
    xt = torch.tensor(x, requires_grad=True)
    out = TF.cross_entropy(xt, torch.tensor(t), **kw)
    out.backward(torch.tensor(g))
    return out.detach().numpy(), xt.grad.numpy()


def _weights(r, reduction, m, dtype):
    return (r.standard_normal(m) if reduction == "none" else numpy.asarray(0.7)).astype(dtype)


def _close(a, b, dtype, what):
    numpy.testing.assert_allclose(a, b, equal_nan=True, err_msg=what, **TOL[dtype])


@pytest.mark.parametrize("ignored", ["none", "some"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (128, 10), (7, 1000)])
def test_against_torch_and_finite_differences(calls, shape, dtype, reduction, ignored):
    r = numpy.random.default_rng(sum(shape))
    m, c = shape
    x = r.standard_normal(shape).astype(dtype) * 3
    t = _targets(r, m, c, ignored)
    ran = []

    def fn(x, t):
        ran.append(1)
        return F.cross_entropy(x, t, reduction=reduction)

    # float64: also ember's finite-difference check (not on (7, 1000): 14000 forwards)
    check_op(fn, None, torch_fn=lambda x, t: TF.cross_entropy(x, t, reduction=reduction),
             inputs=[x, t], dtype=dtype, gradcheck=x.size <= 1280)
    assert calls.count("forward") == len(ran) and calls.count("backward") >= 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_within_a_few_ulp(dtype):
    """The saved softmax (float32: xent.c's own exp) against float64's of the same shifted
    logits x - max(x) (rounded to x's dtype, as both paths do), over their whole range; below
    e**-87 float32's p may be 0."""
    r = numpy.random.default_rng(10)
    x = r.uniform(-95, 5, (300, 33)).astype(dtype)
    t = r.integers(0, 33, 300)
    p, _, bad = _xent_native.forward(_xent_native.library(x), x, t, -100, "mean")
    assert bad == -1
    z = (x - x.max(1, keepdims=True)).astype(numpy.float64)
    want = numpy.exp(z) / numpy.exp(z).sum(1, keepdims=True)
    ulp = numpy.finfo(dtype).eps
    numpy.testing.assert_allclose(p, want, rtol=4 * ulp, atol=2e-38 if dtype == numpy.float32
                                  else 0)


def test_read_only_arrays_are_passed_too():
    """Read-only arrays have no writable buffer for _address's fast way; same results."""
    r = numpy.random.default_rng(11)
    x, t = r.standard_normal((12, 7)), _targets(r, 12, 7, "some")
    lib = _xent_native.library(x)
    p, out, _ = _xent_native.forward(lib, x, t, -100, "none")
    x.flags.writeable = t.flags.writeable = False
    p_ro, out_ro, bad = _xent_native.forward(lib, x, t, -100, "none")
    assert bad == -1
    numpy.testing.assert_array_equal(p_ro, p)
    numpy.testing.assert_array_equal(out_ro, out)
    p.flags.writeable = False
    gx, bad = _xent_native.backward(lib, p, t, numpy.ones(12), -100, "none")
    assert bad == -1 and gx.shape == p.shape


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_ignore_index_a_class_and_int32_targets(calls, dtype, reduction):
    r = numpy.random.default_rng(1)
    x = r.standard_normal((128, 10)).astype(dtype)
    t = r.integers(0, 10, 128).astype(numpy.int32)
    g = _weights(r, reduction, 128, dtype)
    e = _ember(x, t, g, reduction=reduction, ignore_index=2)
    ref = _torch(x, t.astype(numpy.int64), g, reduction=reduction, ignore_index=2)
    assert calls == ["forward", "backward"]
    for got, want, what in zip(e, ref, ("loss", "grad")):
        numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)


def _specials(r, dtype):
    """(x, t): a batch whose rows show each special case once (see the comments)."""
    x = (r.standard_normal((16, 6)) * 3).astype(dtype)
    t = r.integers(0, 6, 16)
    x[0] *= 1e4                       # spread of 1e4: only the max counts
    x[1, [0, 4]] = -numpy.inf         # -inf logits: p = 0 there
    t[1] = 2
    x[2, 3] = -numpy.inf              # the target's logit is -inf: loss +inf
    t[2] = 3
    x[3, 5] = numpy.inf               # +inf: NaN, as in PyTorch
    x[4] = -numpy.inf                 # every logit -inf: NaN
    x[5, 1] = numpy.nan               # NaN: NaN
    x[6] = 1e30 if dtype == numpy.float64 else 3e38  # equal huge logits: p uniform
    t[7] = -100                       # ignored rows: 0
    x[8, 0] = numpy.nan               # an ignored row with a NaN logit (see below)
    t[8] = -100
    x[9, 0] = -numpy.inf              # an ignored row whose column 0 is -inf (see below)
    t[9] = -100
    return x, t


def _both_paths(monkeypatch, x, t, g, **kw):
    """(native, numpy): ``_ember``'s results on each path (the spy library installed)."""
    spy = _xent_native._LIB[0]
    native = _ember(x, t, g, **kw)
    monkeypatch.setattr(_xent_native, "_LIB", [None])
    with numpy.errstate(all="ignore"):
        numpy_ = _ember(x, t, g, **kw)
    monkeypatch.setattr(_xent_native, "_LIB", [spy])
    return native, numpy_


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_native_and_numpy_paths_agree(calls, monkeypatch, dtype, reduction):
    r = numpy.random.default_rng(2)
    special = _specials(r, dtype)
    batches = [special] + [(r.standard_normal((40, 7)).astype(dtype), _targets(r, 40, 7, ignored))
                           for ignored in ("none", "some", "all")]
    for x, t in batches:
        g = _weights(r, reduction, len(t), dtype)
        native, numpy_ = _both_paths(monkeypatch, x, t, g, reduction=reduction)
        for got, want, what in zip(native, numpy_, ("loss", "grad")):
            assert got.dtype == want.dtype == dtype and got.shape == want.shape
            _close(got, want, dtype, what)
    assert calls == ["forward", "backward"] * len(batches)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits_against_torch(calls, dtype, reduction):
    """Where ember's NumPy path and PyTorch agree (not rows 8 and 9 of _specials: ignored rows
    with a NaN logit, or -inf in column 0, give NaN in ember's forward, 0 in PyTorch's)."""
    r = numpy.random.default_rng(3)
    x, t = _specials(r, dtype)
    x, t = x[:8], t[:8]
    g = _weights(r, reduction, len(t), dtype)
    e = _ember(x, t, g, reduction=reduction)
    ref = _torch(x, t, g, reduction=reduction)
    assert calls == ["forward", "backward"]
    for got, want, what in zip(e, ref, ("loss", "grad")):
        numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True,
                                      err_msg=what)
    if reduction == "none":
        assert numpy.isfinite(e[0][[0, 1, 6, 7]]).all() and e[0][2] == numpy.inf
        assert numpy.isnan(e[0][3:6]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_row_ignored(calls, dtype):
    """The forward is PyTorch's (mean NaN, sum 0, zeros); the mean's gradient is NaN, as on
    ember's NumPy path (PyTorch's is 0), the others' 0."""
    x = numpy.random.default_rng(4).standard_normal((6, 4)).astype(dtype)
    t = numpy.full(6, -100)
    for reduction in REDUCTIONS:
        g = numpy.ones(6 if reduction == "none" else (), dtype)
        value, grad = _ember(x, t, g, reduction=reduction)
        numpy.testing.assert_array_equal(value, _torch(x, t, g, reduction=reduction)[0])
        assert numpy.isnan(grad).all() if reduction == "mean" else not grad.any()
    assert calls == ["forward", "backward"] * 3


def test_grad_of_a_broadcast_view(calls):
    """reduction='none' then .sum(): the per-row gradient comes in as a broadcast view."""
    r = numpy.random.default_rng(5)
    x = r.standard_normal((9, 5)).astype(numpy.float32)
    t = _targets(r, 9, 5, "some")
    xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F.cross_entropy(xe, ember.tensor(t), reduction="none").sum().backward()
    TF.cross_entropy(xt, torch.tensor(t), reduction="none").sum().backward()
    assert calls == ["forward", "backward"]
    numpy.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_unbatched_and_kdim_inputs_take_the_native_pass(calls):
    r = numpy.random.default_rng(6)
    x = r.standard_normal((2, 5, 3, 4))
    t = _targets(r, (2, 3, 4), 5, "none")
    t[0, 1, 2] = -100
    check_op(lambda x, t: F.cross_entropy(x, t), None, torch_fn=TF.cross_entropy,
             inputs=[x, t], gradcheck=False)
    check_op(lambda x, t: F.cross_entropy(x, t, reduction="none"), None,
             torch_fn=lambda x, t: TF.cross_entropy(x, t, reduction="none"),
             inputs=[r.standard_normal(5), numpy.array(3)], gradcheck=False)
    assert calls == ["forward", "backward"] * 2


def test_what_stays_with_numpy(calls):
    r = numpy.random.default_rng(7)
    x = r.standard_normal((8, 5))
    t = _targets(r, 8, 5, "some")
    t_all = _targets(r, 8, 5, "none")
    w = r.uniform(0.5, 2, 5)
    probs = r.dirichlet(numpy.ones(5), 8)
    wide = r.standard_normal((8, 10))
    cases = [  # (ember's call, torch's, the input)
        (lambda x: F.cross_entropy(x, ember.tensor(t), weight=ember.tensor(w)),
         lambda x: TF.cross_entropy(x, torch.tensor(t), weight=torch.tensor(w)), x),
        (lambda x: F.cross_entropy(x, ember.tensor(t), label_smoothing=0.1),
         lambda x: TF.cross_entropy(x, torch.tensor(t), label_smoothing=0.1), x),
        (lambda x: F.cross_entropy(x, ember.tensor(probs)),
         lambda x: TF.cross_entropy(x, torch.tensor(probs)), x),
        (lambda x: F.cross_entropy(x[:, ::2], ember.tensor(t)),  # not C-contiguous
         lambda x: TF.cross_entropy(x[:, ::2], torch.tensor(t)), wide),
        (lambda x: F.cross_entropy(x, ember.tensor(t_all), ignore_index=2**70),  # beyond int64
         lambda x: TF.cross_entropy(x, torch.tensor(t_all)), x),
    ]
    for e_fn, t_fn, a in cases:
        check_op(e_fn, None, torch_fn=t_fn, inputs=[a], gradcheck=False)
    assert calls == []
    assert _xent_native.library(x.astype(numpy.float16)) is None
    assert _xent_native.library(numpy.zeros((0, 5))) is None


def test_without_the_library_the_numpy_path_runs(monkeypatch):
    """What EMBER_NATIVE=0 or no compiler leaves: library() None, the NumPy path."""
    _numpy_path(monkeypatch)
    r = numpy.random.default_rng(8)
    x, t = r.standard_normal((6, 4)), _targets(r, 6, 4, "some")
    check_op(lambda x, t: F.cross_entropy(x, t), None, torch_fn=TF.cross_entropy,
             inputs=[x, t], gradcheck=False)


@pytest.mark.parametrize("bad", [10, -1, 2**62, -(2**63)])
def test_targets_out_of_range_raise(calls, bad):
    """F.cross_entropy checks targets before the forward; CrossEntropy.apply without that
    check reaches the C check, which returns the first bad row before reading anything."""
    x = ember.randn(32, 10, requires_grad=True)
    t = numpy.arange(32) % 10
    t[[5, 9]] = bad
    message = rf"cross_entropy: target class {bad} is out of range for input with 10 classes"
    with pytest.raises(IndexError, match=message):
        F.cross_entropy(x, ember.tensor(t))
    assert calls == []
    for reduction in REDUCTIONS:
        with pytest.raises(loss._TargetOutOfRange, match=message):
            loss.CrossEntropy.apply(x, ember.tensor(t), None, -100, 0.0, reduction, False)
    assert calls == ["forward"] * 3
    lib = _xent_native.library(x._data)
    assert _xent_native.forward(lib, x._data, t, -100, "mean")[2] == 5
    t[5] = -100
    assert _xent_native.forward(lib, x._data, t, -100, "none")[2] == 9


def test_a_target_changed_after_the_forward_raises_in_backward(calls):
    x = ember.randn(4, 3, requires_grad=True)
    t = ember.tensor(numpy.array([0, 1, 2, 1]))
    out = F.cross_entropy(x, t)
    t._data[2] = 3
    with pytest.raises(IndexError, match="target class 3 is out of range.*changed after"):
        out.backward()
    assert calls == ["forward", "backward"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_double_backward_keeps_the_ember_ops_formula(calls, reduction):
    r = numpy.random.default_rng(9)
    x = r.standard_normal((6, 4))
    t = _targets(r, 6, 4, "some")
    g = _weights(r, reduction, 6, numpy.float64)
    v = r.standard_normal((6, 4))
    xe = ember.tensor(x, requires_grad=True)
    (gx,) = ember.autograd.grad([F.cross_entropy(xe, ember.tensor(t), reduction=reduction)],
                                [xe], [ember.tensor(g)], create_graph=True)
    (ggx,) = ember.autograd.grad([(gx * ember.tensor(v)).sum()], [xe])
    xt = torch.tensor(x, requires_grad=True)
    (gxt,) = torch.autograd.grad(TF.cross_entropy(xt, torch.tensor(t), reduction=reduction),
                                 xt, torch.tensor(g), create_graph=True)
    (ggxt,) = torch.autograd.grad((gxt * torch.tensor(v)).sum(), xt)
    assert calls == ["forward"]  # the backward ran as ember ops (_graph_backward)
    numpy.testing.assert_allclose(gx.detach().numpy(), gxt.detach().numpy(), rtol=1e-10)
    numpy.testing.assert_allclose(ggx.numpy(), ggxt.numpy(), rtol=1e-9, atol=1e-12)
    te = ember.tensor(t)
    check_double_backward(lambda x: F.cross_entropy(x, te, reduction=reduction), [(6, 4)])
