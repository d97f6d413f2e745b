"""Loss modules (ember/nn/losses.py) against torch.nn: the same options give the same values
and gradients; weights are buffers; errors name the module."""

import numpy
import pytest
import torch

import ember
from ember import errors, nn
from tests.oracle import check_op


def _both(cls_name, *args, **kwargs):
    """The module ``cls_name`` in ember and torch; numpy arrays become each side's tensors."""
    def conv(lib, v):
        return lib.tensor(v) if isinstance(v, numpy.ndarray) else v

    e = getattr(nn, cls_name)(*[conv(ember, a) for a in args],
                              **{k: conv(ember, v) for k, v in kwargs.items()})
    t = getattr(torch.nn, cls_name)(*[conv(torch, a) for a in args],
                                    **{k: conv(torch, v) for k, v in kwargs.items()})
    return e, t


def check_module(cls_name, inputs, *args, consts=(), **kwargs):
    """Compare forward and gradients of the float inputs; ``consts`` are trailing arguments
    passed as constants (targets torch does not differentiate, lengths)."""
    e, t = _both(cls_name, *args, **kwargs)
    e_c = [ember.tensor(c) if isinstance(c, numpy.ndarray) else c for c in consts]
    t_c = [torch.tensor(c) if isinstance(c, numpy.ndarray) else c for c in consts]
    check_op(lambda *xs: e(*xs, *e_c), None, torch_fn=lambda *xs: t(*xs, *t_c), inputs=inputs,
             gradcheck=False)
    return e


R = numpy.random.default_rng(0)
X34, Y34 = R.standard_normal((3, 4)), R.standard_normal((3, 4))
LABELS = numpy.array([1, 0, 3])
SIGNS = numpy.array([1.0, -1.0, 1.0])


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_regression_modules(reduction):
    check_module("MSELoss", [X34, Y34], reduction=reduction)
    check_module("L1Loss", [X34, Y34], reduction=reduction)
    check_module("SmoothL1Loss", [X34 * 3, Y34], reduction=reduction, beta=0.5)
    check_module("HuberLoss", [X34 * 3, Y34], reduction=reduction, delta=0.7)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_classification_modules(reduction):
    w = R.uniform(0.5, 2, 4)
    check_module("CrossEntropyLoss", [X34], w, ignore_index=0, reduction=reduction,
                 label_smoothing=0.1, consts=[LABELS])
    check_module("CrossEntropyLoss", [X34, R.dirichlet(numpy.ones(4), 3)], reduction=reduction)
    check_module("NLLLoss", [X34], w, reduction=reduction, consts=[LABELS])
    probs = R.uniform(0.1, 0.9, (3, 4))
    check_module("BCELoss", [probs, R.uniform(0, 1, (3, 4))], w, reduction=reduction)
    check_module("BCEWithLogitsLoss", [X34, R.uniform(0, 1, (3, 4))], reduction=reduction,
                 pos_weight=w)
    check_module("MultiLabelSoftMarginLoss", [X34], w, reduction=reduction,
                 consts=[(Y34 > 0).astype(numpy.float64)])
    check_module("MultiMarginLoss", [X34], p=2, margin=0.5, weight=w, reduction=reduction,
                 consts=[LABELS])
    check_module("MultiLabelMarginLoss", [X34], reduction=reduction,
                 consts=[numpy.array([[1, 2, -1, 0], [0, -1, 0, 0], [3, 2, 1, 0]])])


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_other_modules(reduction):
    lq = numpy.log(R.dirichlet(numpy.ones(4), 3))
    check_module("KLDivLoss", [lq, R.dirichlet(numpy.ones(4), 3)], reduction="batchmean")
    check_module("KLDivLoss", [lq, lq[::-1].copy()], reduction=reduction, log_target=True)
    check_module("PoissonNLLLoss", [X34], reduction=reduction,
                 consts=[R.integers(0, 4, (3, 4)).astype(numpy.float64)])
    check_module("GaussianNLLLoss", [X34, Y34, R.uniform(0.5, 2, (3, 1))], full=True,
                 reduction=reduction)
    check_module("CosineEmbeddingLoss", [X34, Y34], margin=0.2, reduction=reduction,
                 consts=[SIGNS])
    check_module("MarginRankingLoss", [X34[0, :3], Y34[0, :3], SIGNS], margin=0.1,
                 reduction=reduction)
    check_module("HingeEmbeddingLoss", [numpy.abs(X34)], margin=0.5, reduction=reduction,
                 consts=[numpy.sign(Y34)])
    check_module("SoftMarginLoss", [X34], reduction=reduction, consts=[numpy.sign(Y34)])
    check_module("TripletMarginLoss", [X34, Y34, Y34[::-1].copy()], margin=0.5, p=1.0, swap=True,
                 reduction=reduction)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_ctc_module(reduction):
    logp = numpy.log(R.dirichlet(numpy.ones(5), (10, 3)))
    targets = numpy.array([[1, 2, 2], [3, 0, 0], [4, 4, 1]])
    # The log_probs gradient is compared through log_softmax (see ops/test_loss.py).
    e, t = _both("CTCLoss", reduction=reduction, zero_infinity=True)
    lens = (numpy.array([10, 8, 9]), numpy.array([3, 1, 3]))
    check_op(lambda x: e(x.log_softmax(2), ember.tensor(targets), *map(ember.tensor, lens)), None,
             torch_fn=lambda x: t(x.log_softmax(2), torch.tensor(targets),
                                  *map(torch.tensor, lens)),
             inputs=[logp], gradcheck=False)


def test_ctc_double_backward_raises():
    x = ember.randn(5, 2, 4, dtype=ember.float64, requires_grad=True)
    loss = nn.CTCLoss()(x.log_softmax(2), ember.tensor([[1, 2], [3, 3]]), [5, 5], [2, 2])
    with pytest.raises(errors.AutogradError, match="ctc_loss: double backward is not supported"):
        ember.autograd.grad(loss, [x], create_graph=True)


def test_weight_is_a_buffer_and_legacy_flags():
    w = ember.tensor([1.0, 2.0, 0.5])
    m = nn.CrossEntropyLoss(weight=w)
    assert m.weight is w and "weight" in m.state_dict()
    assert dict(m.named_buffers())["weight"] is w
    assert nn.BCEWithLogitsLoss(pos_weight=w).state_dict()["pos_weight"] is not None
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.MSELoss(reduce=False).reduction == "none"
    assert nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.L1Loss(reduction="sum")) == "L1Loss(reduction='sum')"
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction must be one of"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="TripletMarginLoss: margin must be greater than 0"):
        nn.TripletMarginLoss(margin=0)


def test_errors_name_the_module():
    x = ember.randn(32, 10)
    bad = ember.tensor(numpy.where(numpy.arange(32) == 3, 12, 0))
    with pytest.raises(IndexError, match=r"^CrossEntropyLoss: target class 12 is out of range "
                                         r"for input with 10 classes \(shape \(32, 10\)\)"):
        nn.CrossEntropyLoss()(x, bad)
    with pytest.raises(errors.DTypeError, match=r"^CrossEntropyLoss: expected class indices "
                                                r"of dtype int64; got float32 — use "
                                                r"target.long\(\)"):
        nn.CrossEntropyLoss()(x, ember.zeros(32))
    with pytest.raises(errors.ShapeError, match=r"^CrossEntropyLoss: batch sizes differ: input "
                                                r"batch 32, target batch 16"):
        nn.CrossEntropyLoss()(x, ember.zeros(16, dtype=ember.int64))
    model = nn.Module()
    model.criterion = nn.NLLLoss()
    with pytest.raises(errors.ShapeError, match=r"^NLLLoss 'criterion': integer target of the "
                                                r"input's shape \(32, 10\) looks like one-hot"):
        model.criterion(x, ember.zeros(32, 10, dtype=ember.int64))
    with pytest.raises(errors.ShapeError, match="^BCEWithLogitsLoss: target and input must have "
                                                "the same shape"):
        nn.BCEWithLogitsLoss()(ember.zeros(4, 3), ember.zeros(4))


def test_training_step_reduces_loss():
    ember.manual_seed(0)
    model = nn.Linear(4, 3)
    criterion = nn.CrossEntropyLoss()
    x = ember.tensor(R.standard_normal((16, 4)), dtype=ember.float32)
    y = ember.tensor(R.integers(0, 3, 16))
    first = None
    for _ in range(20):
        loss = criterion(model(x), y)
        first = loss.item() if first is None else first
        model.zero_grad()
        loss.backward()
        with ember.no_grad():
            for p in model.parameters():
                p -= 0.5 * p.grad
    assert loss.item() < first
