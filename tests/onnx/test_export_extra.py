"""ember -> ONNX for losses, einsum, cumsum, special elementwise ops and bitwise logic (the rows
in ember/onnx/rows/extra.py), through the ``roundtrip`` check of test_export.py."""

import numpy
import pytest

import ember
import ember.onnx
from ember import nn
from ember.nn import functional as F
from tests.onnx.test_export import roundtrip

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def _logits(n=6, c=5):
    return ember.randn(n, c)


def _labels(n=6, c=5):
    return ember.tensor(numpy.random.default_rng(0).integers(0, c, n))


def _probs(*shape):
    return ember.tensor(numpy.random.default_rng(1).uniform(0.05, 0.95, shape)
                        .astype(numpy.float32))


CASES = {
    # losses: the fused cross-entropy Function
    "cross_entropy_mean": lambda: (nn.CrossEntropyLoss(), [_logits(), _labels()]),
    "cross_entropy_sum": lambda: (nn.CrossEntropyLoss(reduction="sum"), [_logits(), _labels()]),
    "cross_entropy_none": lambda: (nn.CrossEntropyLoss(reduction="none"),
                                   [_logits(), _labels()]),
    "cross_entropy_weight_ignore": lambda: (
        nn.CrossEntropyLoss(weight=ember.rand(5) + 0.5, ignore_index=2),
        [_logits(), ember.tensor([2, 0, 4, 2, 1, 3])]),
    "cross_entropy_default_ignore": lambda: (
        Fn(lambda x, t: F.cross_entropy(x, t)), [_logits(), ember.tensor([-100, 0, 4, 1, 1, 3])]),
    "cross_entropy_spatial_none": lambda: (
        Fn(lambda x, t: F.cross_entropy(x, t, reduction="none")),
        [ember.randn(2, 5, 3), ember.tensor([[1, 2, 3], [0, 0, 4]])]),
    "cross_entropy_smoothing": lambda: (nn.CrossEntropyLoss(label_smoothing=0.2),
                                        [_logits(), _labels()]),
    "cross_entropy_smoothing_weight_ignore_mean": lambda: (
        nn.CrossEntropyLoss(weight=ember.rand(5) + 0.5, ignore_index=2, label_smoothing=0.1),
        [_logits(), ember.tensor([2, 0, 4, 2, 1, 3])]),
    "cross_entropy_smoothing_weight_none": lambda: (
        nn.CrossEntropyLoss(weight=ember.rand(5) + 0.5, reduction="none", label_smoothing=0.3),
        [_logits(), ember.tensor([-100, 0, 4, 2, 1, 3])]),
    "cross_entropy_smoothing_sum": lambda: (
        nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.3),
        [_logits(), ember.tensor([-100, 0, 4, 2, 1, 3])]),
    # losses composed from elementwise ops (no row of their own needed)
    "mse": lambda: (nn.MSELoss(), [_logits(), _logits()]),
    "l1_none": lambda: (nn.L1Loss(reduction="none"), [_logits(), _logits()]),
    "smooth_l1": lambda: (nn.SmoothL1Loss(beta=0.5), [_logits(), _logits()]),
    "huber_sum": lambda: (nn.HuberLoss(reduction="sum", delta=0.7), [_logits(), _logits()]),
    "bce": lambda: (nn.BCELoss(), [_probs(6, 5), _probs(6, 5)]),
    "bce_none": lambda: (nn.BCELoss(reduction="none"), [_probs(6, 5), _probs(6, 5)]),
    "bce_with_logits_pos_weight": lambda: (
        nn.BCEWithLogitsLoss(pos_weight=ember.rand(5) + 0.5), [_logits(), _probs(6, 5)]),
    "kl_div_sum": lambda: (
        Fn(lambda x, p: F.kl_div(F.log_softmax(x, 1), F.softmax(p, 1), reduction="sum")),
        [_logits(), _logits()]),
    "kl_div_log_target_none": lambda: (
        Fn(lambda x, p: F.kl_div(F.log_softmax(x, 1), F.log_softmax(p, 1), reduction="none",
                                 log_target=True)), [_logits(), _logits()]),
    # einsum, cumsum
    "einsum_matmul_t": lambda: (Fn(lambda a, b: ember.einsum("ij,kj->ik", a, b)),
                                [_logits(), _logits()]),
    "einsum_batched": lambda: (Fn(lambda a, b: ember.einsum("bij,bjk->bik", a, b)),
                               [ember.randn(2, 3, 4), ember.randn(2, 4, 5)]),
    "einsum_ellipsis_sum": lambda: (Fn(lambda a: ember.einsum("...ij->...j", a)),
                                    [ember.randn(2, 3, 4)]),
    "cumsum": lambda: (Fn(lambda a: ember.cumsum(a, 1)), [_logits()]),
    "cumsum_neg_dim": lambda: (Fn(lambda a: ember.cumsum(a, -1)), [ember.randn(2, 3, 4)]),
    # diagonal
    "diagonal": lambda: (Fn(lambda a: ember.diagonal(a, 0, 1, 2)), [ember.randn(2, 4, 5)]),
    "diagonal_offset": lambda: (Fn(lambda a: ember.diagonal(a, 2, -1, 1)), [ember.randn(2, 4, 5)]),
    "diagonal_negative_offset": lambda: (Fn(lambda a: ember.diagonal(a, -1, 1, 2)),
                                         [ember.randn(2, 4, 3, 5)]),
    # special elementwise ops
    "atan2": lambda: (Fn(ember.atan2), [ember.randn(4, 6), ember.randn(4, 6)]),
    "atan2_axes": lambda: (Fn(ember.atan2), [ember.tensor([[0.0, 1.0, -1.0, 0.0, 2.0]]),
                                             ember.tensor([[0.0, 0.0, 0.0, -1.0, -3.0]])]),
    "erfc": lambda: (Fn(ember.erfc), [ember.randn(4, 6)]),
    "nan_to_num": lambda: (
        Fn(lambda a: ember.nan_to_num(a, nan=1.5, posinf=7.0)),
        [ember.tensor([[numpy.nan, numpy.inf, -numpy.inf, 2.0]])]),
    "nan_to_num_defaults": lambda: (
        Fn(ember.nan_to_num), [ember.tensor([[numpy.nan, numpy.inf, -numpy.inf, -2.0]])]),
    "isfinite": lambda: (Fn(ember.isfinite), [ember.tensor([[numpy.nan, numpy.inf, 1.0]])]),
    "isnan": lambda: (Fn(ember.isnan), [ember.tensor([[numpy.nan, numpy.inf, 1.0]])]),
    "isinf": lambda: (Fn(ember.isinf), [ember.tensor([[numpy.nan, -numpy.inf, 1.0]])]),
    # bitwise logic
    "bitwise_and": lambda: (Fn(ember.bitwise_and), [ember.tensor([[5, 3, -7]]),
                                                    ember.tensor([[6, 1, 12]])]),
    "bitwise_or": lambda: (Fn(ember.bitwise_or), [ember.tensor([[5, 3, -7]]),
                                                  ember.tensor([[6, 1, 12]])]),
    "bitwise_xor": lambda: (Fn(ember.bitwise_xor), [ember.tensor([[5, 3, -7]]),
                                                    ember.tensor([[6, 1, 12]])]),
    "bitwise_not": lambda: (Fn(ember.bitwise_not), [ember.tensor([[5, 0, -7]])]),
    "bitwise_bool": lambda: (Fn(lambda a, b: ember.bitwise_not(ember.bitwise_xor(a > 0, b > 0))),
                             [ember.randn(3, 4), ember.randn(3, 4)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_extra_roundtrip(tmp_path, name):
    ember.manual_seed(0)
    model, inputs = CASES[name]()
    roundtrip(tmp_path, model, inputs)


def test_kl_div_batchmean_follows_the_batch(tmp_path):
    model = Fn(lambda x, p: F.kl_div(F.log_softmax(x, 1), F.softmax(p, 1),
                                     reduction="batchmean"))
    roundtrip(tmp_path, model, [_logits(), _logits()])


def test_cross_entropy_is_one_node(tmp_path):
    proto = roundtrip(tmp_path, nn.CrossEntropyLoss(weight=ember.rand(5)),
                      [_logits(), _labels()])
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("SoftmaxCrossEntropyLoss") == 1


def test_cross_entropy_probability_targets_are_refused(tmp_path):
    model = nn.CrossEntropyLoss()
    with pytest.raises(ember.onnx.ExportError, match="probability"):
        ember.onnx.export(model, (_logits(), F.softmax(_logits(), 1)), tmp_path / "m.onnx")


def test_cross_entropy_needs_opset_13(tmp_path):
    with pytest.raises(ember.onnx.ExportError, match="opset 12"):
        ember.onnx.export(nn.CrossEntropyLoss(), (_logits(), _labels()), tmp_path / "m.onnx",
                          opset_version=12)


def test_diagonal_over_the_batch_axis_is_refused(tmp_path):
    with pytest.raises(ember.onnx.ExportError, match="dynamic axis"):
        ember.onnx.export(Fn(lambda a: ember.diagonal(a)), ember.randn(4, 4), tmp_path / "m.onnx")
    roundtrip_fixed = ember.onnx.export(Fn(lambda a: ember.diagonal(a)), ember.randn(4, 4),
                                        tmp_path / "m.onnx", dynamic_axes={})
    assert roundtrip_fixed.graph.output[0].type.tensor_type.shape.dim[0].dim_value == 4


def test_nll_loss_with_target_input_is_refused(tmp_path):
    # nll_loss turns its target into weights outside ember ops: the file would hold the
    # example's targets, so export refuses rather than writing it.
    model = Fn(lambda x, t: F.nll_loss(x, t))
    with pytest.raises(ember.onnx.ExportError, match="not read"):
        ember.onnx.export(model, (F.log_softmax(_logits(), 1), _labels()), tmp_path / "m.onnx")


class _EinsumCumsum(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(ember.randn(4, 2))

    def forward(self, a):
        return ember.cumsum(ember.einsum("ij,jk->ik", a, self.w), 0)


def test_einsum_and_cumsum_load_back_differentiable(tmp_path):
    model = _EinsumCumsum()
    a = ember.randn(3, 4)
    roundtrip(tmp_path, model, [a])
    back = ember.onnx.load(tmp_path / "m.onnx")
    a2 = a.detach().requires_grad_(True)
    back(a2).sum().backward()
    a3 = a.detach().requires_grad_(True)
    model(a3).sum().backward()
    numpy.testing.assert_allclose(a2.grad.numpy(), a3.grad.numpy(), rtol=1e-5, atol=1e-6)
