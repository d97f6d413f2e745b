"""Losses (ember/ops/loss.py, ember/ops/_ctc.py) against PyTorch: forward values, gradients of
inputs and targets, finite-difference gradient checks in float64, float32, each reduction,
stability for large logits, and the error messages."""

import numpy
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F
from ember import errors
from tests.oracle import check_double_backward, check_op

REDUCTIONS = ("none", "mean", "sum")


def _pair(name, **kw):
    """The loss ``name`` in ember and in torch, with the numpy arrays among ``kw`` converted to
    each framework's (constant) tensors."""
    e_kw = {k: ember.tensor(v) if isinstance(v, numpy.ndarray) else v for k, v in kw.items()}
    t_kw = {k: torch.tensor(v) if isinstance(v, numpy.ndarray) else v for k, v in kw.items()}
    e_fn, t_fn = getattr(F, name), getattr(TF, name)
    return (lambda *xs: e_fn(*xs, **e_kw)), (lambda *xs: t_fn(*xs, **t_kw))


def check_loss(name, inputs, dtype=numpy.float64, gradcheck=True, rtol=None, atol=None, **kw):
    kw = {k: v.astype(dtype) if isinstance(v, numpy.ndarray) and v.dtype.kind == "f" else v
          for k, v in kw.items()}
    e_fn, t_fn = _pair(name, **kw)
    inputs = [a.astype(dtype) if a.dtype.kind == "f" else a for a in inputs]
    return check_op(e_fn, None, torch_fn=t_fn, inputs=inputs, dtype=dtype, gradcheck=gradcheck,
                    rtol=rtol, atol=atol)


def rng(seed=0):
    return numpy.random.default_rng(seed)


# ---- regression ----------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_mse_l1(name, reduction):
    r = rng(1)
    check_loss(name, [r.standard_normal((3, 4)), r.standard_normal((3, 4))], reduction=reduction)
    check_loss(name, [r.standard_normal((3, 4)), r.standard_normal((3, 4))],
               reduction=reduction, weight=r.uniform(0.5, 2, (3, 4)))
    check_loss(name, [r.standard_normal((5,)), r.standard_normal((5,))], dtype=numpy.float32,
               reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.3, 0.0])
def test_smooth_l1(reduction, beta):
    r = rng(2)
    x = r.standard_normal((4, 3)) * 2
    check_loss("smooth_l1_loss", [x, r.standard_normal((4, 3))], reduction=reduction, beta=beta)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.4])
def test_huber(reduction, delta):
    r = rng(3)
    x, y = r.standard_normal((4, 3)) * 2, r.standard_normal((4, 3))
    check_loss("huber_loss", [x, y], reduction=reduction, delta=delta)
    check_loss("huber_loss", [x, y], reduction=reduction, delta=delta,
               weight=r.uniform(0.5, 2, (4, 3)))


def test_regression_broadcast_warns_like_torch():
    r = rng(4)
    with pytest.warns(UserWarning, match="differs from input size"):
        check_loss("mse_loss", [r.standard_normal((3, 4)), r.standard_normal((4,))])


def test_legacy_size_average_and_reduce():
    r = rng(5)
    x, y = r.standard_normal((3, 4)), r.standard_normal((3, 4))
    for sa, red in [(False, None), (None, False), (True, True)]:
        check_loss("mse_loss", [x, y], gradcheck=False, size_average=sa, reduce=red)


# ---- cross_entropy and nll_loss ------------------------------------------------------------


def _targets(r, shape, c, ignore=None):
    t = r.integers(0, c, shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_indices(reduction, weighted, smoothing):
    r = rng(6)
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    if weighted:
        kw["weight"] = r.uniform(0.2, 2.0, 5)
    check_loss("cross_entropy", [r.standard_normal((4, 5)), _targets(r, 4, 5)], **kw)
    check_loss("cross_entropy", [r.standard_normal((6, 5)), _targets(r, 6, 5, -100)], **kw)
    check_loss("cross_entropy", [r.standard_normal((6, 5)), _targets(r, 6, 5, 2)],
               ignore_index=2, **kw)
    check_loss("cross_entropy", [r.standard_normal((8, 5)), _targets(r, 8, 5, -100)],
               dtype=numpy.float32, **kw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_kdim(reduction, smoothing):
    r = rng(7)
    kw = {"reduction": reduction, "label_smoothing": smoothing, "weight": r.uniform(0.5, 2, 3)}
    check_loss("cross_entropy", [r.standard_normal((2, 3, 2, 2)), _targets(r, (2, 2, 2), 3, -100)],
               **kw)
    check_loss("cross_entropy", [r.standard_normal((2, 3, 4)), _targets(r, (2, 4), 3)], **kw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_unbatched(reduction):
    r = rng(8)
    check_loss("cross_entropy", [r.standard_normal(5), numpy.array(3)], reduction=reduction,
               label_smoothing=0.1)
    p = r.dirichlet(numpy.ones(5))
    check_loss("cross_entropy", [r.standard_normal(5), p], reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_probabilities(reduction, weighted, smoothing):
    """Soft targets: gradients reach the target too."""
    r = rng(9)
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    if weighted:
        kw["weight"] = r.uniform(0.2, 2.0, 4)
    check_loss("cross_entropy", [r.standard_normal((3, 4)), r.dirichlet(numpy.ones(4), 3)], **kw)
    kdim_target = numpy.moveaxis(r.dirichlet(numpy.ones(4), (2, 3)), -1, 1)
    check_loss("cross_entropy", [r.standard_normal((2, 4, 3)), kdim_target], **kw)


def test_cross_entropy_large_logits_float32():
    r = rng(10)
    x = (r.standard_normal((16, 10)) * 1e4).astype(numpy.float32)
    t = _targets(r, 16, 10)
    out = check_loss("cross_entropy", [x, t], dtype=numpy.float32, gradcheck=False, rtol=1e-5,
                     atol=1e-3)
    assert numpy.isfinite(out.item())
    check_loss("cross_entropy", [x, t], dtype=numpy.float32, gradcheck=False, rtol=1e-5,
               atol=1e-2, label_smoothing=0.1, reduction="none")


def test_cross_entropy_all_ignored_mean_is_nan_like_torch():
    x = numpy.zeros((3, 4))
    t = numpy.full(3, -100)
    e = F.cross_entropy(ember.tensor(x), ember.tensor(t))
    assert numpy.isnan(e.item()) and numpy.isnan(TF.cross_entropy(torch.tensor(x), torch.tensor(t)))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_double_backward(smoothing):
    r = rng(11)
    t = ember.tensor(_targets(r, 4, 3, -100))
    w = ember.tensor(r.uniform(0.5, 2, 3))
    check_double_backward(
        lambda x: F.cross_entropy(x, t, weight=w, label_smoothing=smoothing), [(4, 3)]
    )
    check_double_backward(
        lambda x: F.cross_entropy(x, t, label_smoothing=smoothing, reduction="none"), [(4, 3)]
    )
    p = ember.tensor(r.dirichlet(numpy.ones(3), 4))
    check_double_backward(lambda x: F.cross_entropy(x, p, label_smoothing=smoothing), [(4, 3)])
    check_double_backward(
        lambda x, q: F.cross_entropy(x, q.softmax(1), reduction="sum"), [(4, 3), (4, 3)]
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    r = rng(12)
    w = r.uniform(0.2, 2.0, 5)
    check_loss("nll_loss", [r.standard_normal((6, 5)), _targets(r, 6, 5, -100)],
               reduction=reduction)
    check_loss("nll_loss", [r.standard_normal((6, 5)), _targets(r, 6, 5, 1)],
               reduction=reduction, weight=w, ignore_index=1)
    check_loss("nll_loss", [r.standard_normal((2, 5, 3)), _targets(r, (2, 3), 5, -100)],
               reduction=reduction, weight=w)
    check_loss("nll_loss", [r.standard_normal(5), numpy.array(2)], reduction=reduction)
    check_loss("nll_loss", [r.standard_normal((6, 5)), _targets(r, 6, 5)], dtype=numpy.float32,
               reduction=reduction, weight=w)


def test_cross_entropy_errors():
    x = ember.randn(32, 10)
    t = ember.tensor(numpy.arange(32) % 10)
    t_bad = ember.tensor(numpy.where(numpy.arange(32) == 5, 12, 1))
    with pytest.raises(IndexError, match=r"cross_entropy: target class 12 is out of range for "
                                         r"input with 10 classes \(shape \(32, 10\)\)"):
        F.cross_entropy(x, t_bad)
    with pytest.raises(errors.DTypeError, match="expected class indices of dtype int64; got "
                                                "float32 — use target.long()"):
        F.cross_entropy(x, t.float())
    with pytest.raises(errors.ShapeError, match="looks like one-hot labels.*argmax"):
        F.cross_entropy(x, F.one_hot(t, 10))
    with pytest.raises(errors.ShapeError, match="batch sizes differ: input batch 32, target "
                                                "batch 16"):
        F.cross_entropy(x, t[:16])
    with pytest.raises(errors.ShapeError, match=r"weight must have one entry per class, shape "
                                                r"\(10,\); got \(5,\)"):
        F.cross_entropy(x, t, weight=ember.ones(5))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, t, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(IndexError, match="nll_loss: target class -3"):
        F.nll_loss(x, t - 3)


# ---- binary --------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    r = rng(13)
    x, y = r.uniform(0.05, 0.95, (4, 3)), r.uniform(0, 1, (4, 3))
    check_loss("binary_cross_entropy", [x, y], reduction=reduction)
    check_loss("binary_cross_entropy", [x, y], reduction=reduction,
               weight=r.uniform(0.5, 2, (4, 3)))
    check_loss("binary_cross_entropy", [x, y], reduction=reduction, weight=r.uniform(0.5, 2, 3),
               dtype=numpy.float32)


def test_binary_cross_entropy_saturated_clamps_like_torch():
    x = numpy.array([0.0, 1.0, 0.0, 1.0, 0.5])
    y = numpy.array([1.0, 0.0, 0.0, 1.0, 1.0])
    for dtype in (numpy.float32, numpy.float64):
        check_loss("binary_cross_entropy", [x.astype(dtype), y.astype(dtype)], dtype=dtype,
                   gradcheck=False, reduction="none", rtol=1e-6)
    # The target gradient is log(1 - x) - log(x): infinite at the ends, as in torch.
    e = F.binary_cross_entropy(ember.tensor(x, requires_grad=True), ember.tensor(y))
    assert e.item() == pytest.approx(TF.binary_cross_entropy(torch.tensor(x), torch.tensor(y)))


def test_binary_cross_entropy_double_backward():
    y = ember.tensor(rng(14).uniform(0, 1, (3, 2)))
    check_double_backward(lambda x: F.binary_cross_entropy(x, y), [(3, 2)], low=0.1, high=0.9)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(reduction):
    r = rng(15)
    x, y = r.standard_normal((4, 3)) * 3, r.uniform(0, 1, (4, 3))
    check_loss("binary_cross_entropy_with_logits", [x, y], reduction=reduction)
    check_loss("binary_cross_entropy_with_logits", [x, y], reduction=reduction,
               weight=r.uniform(0.5, 2, (4, 3)), pos_weight=r.uniform(0.5, 3, 3))
    check_loss("binary_cross_entropy_with_logits", [x, y], reduction=reduction,
               pos_weight=r.uniform(0.5, 3, 3), dtype=numpy.float32)


def test_bce_with_logits_large_logits_stable():
    x = numpy.array([[1e4, -1e4, 88.0, -104.0, 0.0]], dtype=numpy.float32)
    y = numpy.array([[0.0, 1.0, 1.0, 0.0, 1.0]], dtype=numpy.float32)
    out = check_loss("binary_cross_entropy_with_logits", [x, y], dtype=numpy.float32,
                     gradcheck=False, reduction="none", pos_weight=numpy.float32([2.0]))
    assert numpy.isfinite(out.detach().numpy()).all()


def test_binary_errors():
    with pytest.raises(ValueError, match="must be probabilities in \\[0, 1\\].*with_logits"):
        F.binary_cross_entropy(ember.tensor([1.5, 0.2]), ember.tensor([1.0, 0.0]))
    with pytest.raises(errors.ShapeError, match="same shape"):
        F.binary_cross_entropy_with_logits(ember.zeros(4, 3), ember.zeros(4))
    with pytest.raises(errors.ShapeError, match="pos_weight must broadcast"):
        F.binary_cross_entropy_with_logits(ember.zeros(4, 3), ember.zeros(4, 3),
                                           pos_weight=ember.ones(2))


# ---- distributions -------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS + ("batchmean",))
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    r = rng(16)
    x = numpy.log(r.dirichlet(numpy.ones(4), 3))
    p = r.dirichlet(numpy.ones(4), 3)
    target = numpy.log(p) if log_target else p
    with pytest.warns(UserWarning) if reduction == "mean" else _nothing():
        check_loss("kl_div", [x, target], reduction=reduction, log_target=log_target)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_kl_div_zero_target():
    x = numpy.log(numpy.array([[0.5, 0.25, 0.25]]))
    t = numpy.array([[0.0, 0.5, 0.5]])
    e_fn, t_fn = _pair("kl_div", reduction="sum")
    ex = ember.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    e, tt = e_fn(ex, ember.tensor(t)), t_fn(tx, torch.tensor(t))
    e.backward()
    tt.backward()
    assert e.item() == pytest.approx(tt.item())
    numpy.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll(log_input, full):
    r = rng(17)
    x = r.standard_normal((3, 4)) if log_input else r.uniform(0.5, 3, (3, 4))
    # torch's target gradient of the Stirling term is nan at target 0 (log(0) * 0), ember's
    # is 0; and the term switches on at 1, where finite differences would straddle the switch.
    y = r.integers(2 if full else 0, 6, (3, 4)).astype(numpy.float64)
    for reduction in REDUCTIONS:
        check_loss("poisson_nll_loss", [x, y], log_input=log_input, full=full,
                   reduction=reduction)


@pytest.mark.parametrize("var_shape", [(4, 3), (4, 1), (4,)])
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll(var_shape, full):
    r = rng(18)
    x, y = r.standard_normal((4, 3)), r.standard_normal((4, 3))
    var = r.uniform(0.2, 2, var_shape)
    var.reshape(-1)[0] = 1e-8  # clamped to eps, gradient passes through
    for reduction in REDUCTIONS:
        check_loss("gaussian_nll_loss", [x, y, var], full=full, reduction=reduction,
                   gradcheck=False)
    check_loss("gaussian_nll_loss", [x, y, r.uniform(0.2, 2, var_shape)], full=full)


# ---- margins and embeddings ----------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cosine_embedding(reduction):
    r = rng(19)
    t = numpy.array([1, -1, 1, -1, -1])
    check_loss("cosine_embedding_loss", [r.standard_normal((5, 3)), r.standard_normal((5, 3)), t],
               margin=0.1, reduction=reduction)
    check_loss("cosine_embedding_loss", [r.standard_normal(3), r.standard_normal(3),
                                         numpy.array(-1)], margin=-0.5, reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_ranking(reduction):
    r = rng(20)
    t = numpy.array([1.0, -1.0, 1.0, -1.0, 1.0, 1.0])
    check_loss("margin_ranking_loss", [r.standard_normal(6), r.standard_normal(6), t],
               margin=0.3, reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p, swap", [(2, False), (2, True), (1, False), (3, True)])
def test_triplet_margin(reduction, p, swap):
    r = rng(21)
    a, pos, neg = (r.standard_normal((4, 3)) for _ in range(3))
    check_loss("triplet_margin_loss", [a, pos, neg], margin=1.5, p=p, swap=swap,
               reduction=reduction)
    check_loss("triplet_margin_loss", [a[0], pos[0], neg[0]], p=p, swap=swap,
               reduction=reduction, dtype=numpy.float32)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hinge_soft_margin_multilabel_soft(reduction):
    r = rng(22)
    x = r.standard_normal((4, 3))
    sign = numpy.where(r.uniform(size=(4, 3)) < 0.5, -1.0, 1.0)
    # torch has no target gradient for these two: the target is a constant here.
    check_loss("hinge_embedding_loss", [numpy.abs(x), sign.astype(numpy.int64)], margin=0.8,
               reduction=reduction)
    e_fn, t_fn = _pair("soft_margin_loss", reduction=reduction)
    s_e, s_t = ember.tensor(sign), torch.tensor(sign)
    check_op(lambda a: e_fn(a, s_e), None, torch_fn=lambda a: t_fn(a, s_t), inputs=[x])
    y = (sign > 0).astype(numpy.float64)
    check_loss("multilabel_soft_margin_loss", [x, y], reduction=reduction)
    check_loss("multilabel_soft_margin_loss", [x, y], reduction=reduction,
               weight=r.uniform(0.5, 2, 3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin(reduction, p):
    r = rng(23)
    x, t = r.standard_normal((5, 4)), r.integers(0, 4, 5)
    check_loss("multi_margin_loss", [x, t], p=p, margin=0.7, reduction=reduction)
    check_loss("multi_margin_loss", [x, t], p=p, reduction=reduction, weight=r.uniform(0.5, 2, 4))
    check_loss("multi_margin_loss", [x[0], numpy.array(2)], p=p, reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin(reduction):
    r = rng(24)
    x = r.standard_normal((3, 4))
    t = numpy.array([[3, 0, -1, 1], [1, 2, 3, 0], [2, -1, 0, 0]])
    check_loss("multilabel_margin_loss", [x, t], reduction=reduction)
    check_loss("multilabel_margin_loss", [x[0], t[0]], reduction=reduction)


# ---- CTC -----------------------------------------------------------------------------------


def _ctc_case(seed, t_max, n, c, s_max, blank=0, repeats=False):
    r = rng(seed)
    in_lens = r.integers(max(1, t_max // 2), t_max + 1, n)
    in_lens[0] = t_max
    tg_lens = r.integers(0, s_max + 1, n)
    tg_lens[0] = s_max
    labels = [l for l in range(c) if l != blank]
    targets = r.choice(labels, (n, s_max))
    if repeats:
        targets[:, 1::2] = targets[:, ::2][:, : targets[:, 1::2].shape[1]]
    logits = r.standard_normal((t_max, n, c))
    return logits, targets, in_lens, tg_lens


def _ctc_pair(targets, in_lens, tg_lens, concat=False, **kw):
    if concat:
        targets = numpy.concatenate([row[:k] for row, k in zip(targets, tg_lens)])

    def e_fn(logits):
        return F.ctc_loss(F.log_softmax(logits, 2), ember.tensor(targets), ember.tensor(in_lens),
                          ember.tensor(tg_lens), **kw)

    def t_fn(logits):
        return TF.ctc_loss(TF.log_softmax(logits, 2), torch.tensor(targets),
                           torch.tensor(in_lens), torch.tensor(tg_lens), **kw)

    return e_fn, t_fn


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("seed, repeats, concat, blank", [
    (0, False, False, 0), (1, True, False, 0), (2, True, True, 3), (3, False, True, 0),
])
def test_ctc_vs_torch(reduction, seed, repeats, concat, blank):
    logits, targets, in_lens, tg_lens = _ctc_case(seed, 12, 4, 5, 4, blank, repeats)
    e_fn, t_fn = _ctc_pair(targets, in_lens, tg_lens, concat, blank=blank, reduction=reduction)
    check_op(e_fn, None, torch_fn=t_fn, inputs=[logits], gradcheck=False)
    check_op(e_fn, None, torch_fn=t_fn, inputs=[logits.astype(numpy.float32)],
             dtype=numpy.float32, rtol=1e-4, atol=1e-5)


def test_ctc_gradcheck_on_log_probs():
    """The gradient is the exact derivative w.r.t. log_probs (no softmax assumed)."""
    logits, targets, in_lens, tg_lens = _ctc_case(4, 6, 2, 4, 3, repeats=True)
    lp = torch.log_softmax(torch.tensor(logits), 2).numpy()
    fn = lambda x: F.ctc_loss(x, ember.tensor(targets), ember.tensor(in_lens),  # noqa: E731
                              ember.tensor(tg_lens), reduction="sum")
    assert ember.autograd.gradcheck(fn, [ember.tensor(lp, requires_grad=True)])
    e_fn, _ = _ctc_pair(targets, in_lens, tg_lens)
    assert ember.autograd.gradcheck(e_fn, [ember.tensor(logits, requires_grad=True)])


def test_ctc_zero_infinity_and_impossible():
    r = rng(5)
    logits = r.standard_normal((4, 3, 5))
    targets = numpy.array([[1, 1, 2, 3], [1, 2, 0, 0], [2, 2, 2, 2]])
    in_lens = numpy.array([4, 4, 3])  # row 0 needs 5 frames (repeat), row 2 needs 7
    tg_lens = numpy.array([4, 2, 4])
    for reduction in REDUCTIONS:
        e_fn, t_fn = _ctc_pair(targets, in_lens, tg_lens, zero_infinity=True,
                               reduction=reduction)
        check_op(e_fn, None, torch_fn=t_fn, inputs=[logits], gradcheck=False)
    e_fn, t_fn = _ctc_pair(targets, in_lens, tg_lens, reduction="none")
    out = check_op(e_fn, None, torch_fn=t_fn, inputs=[logits], grad=False)
    assert numpy.isinf(out.numpy()[[0, 2]]).all()


def test_ctc_unbatched_and_empty_target():
    r = rng(6)
    logits = r.standard_normal((7, 4))
    for tg in (numpy.array([1, 3, 3]), numpy.array([], dtype=numpy.int64)):
        def e_fn(x, tg=tg):
            return F.ctc_loss(F.log_softmax(x, 1), ember.tensor(tg), 7, ember.tensor(len(tg)))

        def t_fn(x, tg=tg):
            return TF.ctc_loss(TF.log_softmax(x, 1), torch.tensor(tg), torch.tensor(7),
                               torch.tensor(len(tg)))

        check_op(e_fn, None, torch_fn=t_fn, inputs=[logits], gradcheck=False)


def test_ctc_errors():
    lp = F.log_softmax(ember.randn(6, 2, 4), 2)
    tg = ember.tensor([[1, 2], [3, 1]])
    with pytest.raises(errors.ShapeError, match="input_lengths must be in \\[0, T=6\\]"):
        F.ctc_loss(lp, tg, [7, 6], [2, 2])
    with pytest.raises(errors.ShapeError, match="exceed the padded target length 2"):
        F.ctc_loss(lp, tg, [6, 6], [3, 2])
    with pytest.raises(errors.ShapeError, match="target label 5 is out of range for C=4"):
        F.ctc_loss(lp, ember.tensor([[1, 5], [3, 1]]), [6, 6], [2, 2])
    with pytest.raises(errors.ShapeError, match="concatenated targets have 3 labels"):
        F.ctc_loss(lp, ember.tensor([1, 2, 3]), [6, 6], [2, 2])
    with pytest.raises(errors.DTypeError, match="targets must be integer"):
        F.ctc_loss(lp, tg.float(), [6, 6], [2, 2])


def test_composed_losses_double_backward():
    r = rng(30)
    y = ember.tensor(r.uniform(0, 1, (3, 2)))
    pw = ember.tensor(r.uniform(0.5, 2, 2))
    check_double_backward(lambda x: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw),
                          [(3, 2)])
    check_double_backward(lambda x, t: F.smooth_l1_loss(x, t, beta=0.5), [(3, 2), (3, 2)])
    check_double_backward(lambda x, q: F.kl_div(x, q.softmax(1), reduction="batchmean"),
                          [(3, 2), (3, 2)])
    check_double_backward(lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=2.0),
                          [(3, 4), (3, 4), (3, 4)])
    t = ember.tensor(numpy.array([1, 0, 2]))
    check_double_backward(lambda x: F.nll_loss(x.log_softmax(1), t), [(3, 3)])
