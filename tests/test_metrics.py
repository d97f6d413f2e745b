"""Metrics against scikit-learn on random data, accumulated over uneven batches."""

import numpy
import pytest
from sklearn import metrics as skm

import ember
from ember import metrics

BATCHES = [0, 7, 20, 21, 64, 100]


def _feed(metric, preds, target, as_tensor=True):
    for a, b in zip(BATCHES[:-1], BATCHES[1:]):
        p, t = preds[a:b], target[a:b]
        if as_tensor:
            p, t = ember.tensor(p), ember.tensor(t)
        metric.update(p, t)
    return metric.compute()


@pytest.fixture
def multiclass():
    rng = numpy.random.default_rng(0)
    scores = rng.standard_normal((100, 4))
    target = rng.integers(0, 4, 100)
    return scores, target


def test_accuracy_multiclass_binary_topk(multiclass):
    scores, target = multiclass
    assert _feed(metrics.Accuracy(num_classes=4), scores, target) == pytest.approx(
        skm.accuracy_score(target, scores.argmax(1)))
    assert _feed(metrics.Accuracy(top_k=2), scores, target) == pytest.approx(
        skm.top_k_accuracy_score(target, scores, k=2))
    rng = numpy.random.default_rng(1)
    probs, y = rng.uniform(size=100), rng.integers(0, 2, 100)
    assert _feed(metrics.Accuracy(task="binary"), probs, y) == pytest.approx(
        skm.accuracy_score(y, probs >= 0.5))
    logits = rng.standard_normal(100) * 3
    assert _feed(metrics.Accuracy(task="binary"), logits, y) == pytest.approx(
        skm.accuracy_score(y, logits >= 0))


@pytest.mark.parametrize("average", ["micro", "macro", "weighted"])
def test_precision_recall_f1(multiclass, average):
    scores, target = multiclass
    pred = scores.argmax(1)
    for cls, ref in [(metrics.Precision, skm.precision_score), (metrics.Recall, skm.recall_score),
                     (metrics.F1Score, skm.f1_score)]:
        got = _feed(cls(num_classes=4, average=average), scores, target)
        assert got == pytest.approx(ref(target, pred, average=average, zero_division=0))


def test_per_class_and_binary_average(multiclass):
    scores, target = multiclass
    got = _feed(metrics.F1Score(num_classes=4, average=None), scores, target)
    numpy.testing.assert_allclose(got, skm.f1_score(target, scores.argmax(1), average=None))
    y = (target > 1).astype(int)
    p = 1 / (1 + numpy.exp(-scores[:, 0]))
    got = _feed(metrics.Precision(num_classes=2, average="binary"), p, y)
    assert got == pytest.approx(skm.precision_score(y, p >= 0.5))


def test_confusion_matrix(multiclass):
    scores, target = multiclass
    got = _feed(metrics.ConfusionMatrix(4), scores, target)
    numpy.testing.assert_array_equal(got, skm.confusion_matrix(target, scores.argmax(1)))


def test_auroc_binary_with_ties_and_multiclass(multiclass):
    rng = numpy.random.default_rng(2)
    s = numpy.round(rng.uniform(size=100), 1)  # many ties
    y = rng.integers(0, 2, 100)
    assert _feed(metrics.AUROC(), s, y) == pytest.approx(skm.roc_auc_score(y, s))
    scores, target = multiclass
    probs = numpy.exp(scores) / numpy.exp(scores).sum(1, keepdims=True)
    assert _feed(metrics.AUROC(), probs, target) == pytest.approx(
        skm.roc_auc_score(target, probs, multi_class="ovr", average="macro"))
    m = metrics.AUROC()
    m.update(numpy.ones(3), numpy.ones(3))
    with pytest.raises(ValueError, match="only one class"):
        m.compute()


def test_regression_metrics():
    rng = numpy.random.default_rng(3)
    t = rng.standard_normal((100, 2))
    p = t + 0.3 * rng.standard_normal((100, 2))
    assert _feed(metrics.MeanSquaredError(), p, t) == pytest.approx(skm.mean_squared_error(t, p))
    assert _feed(metrics.MeanAbsoluteError(), p, t) == pytest.approx(skm.mean_absolute_error(t, p))
    assert _feed(metrics.R2Score(), p, t) == pytest.approx(skm.r2_score(t, p))
    assert _feed(metrics.R2Score(), p[:, 0], t[:, 0], as_tensor=False) == pytest.approx(
        skm.r2_score(t[:, 0], p[:, 0]))


def test_reset_call_and_registry(multiclass):
    scores, target = multiclass
    acc = metrics.get("accuracy")
    batch_value = acc(scores[:10], target[:10])
    assert batch_value == pytest.approx(skm.accuracy_score(target[:10], scores[:10].argmax(1)))
    acc.reset()
    assert numpy.isnan(acc.compute())
    assert metrics.get("top_k_accuracy", top_k=3).top_k == 3
    with pytest.raises(ValueError, match="unknown metric 'os.system'"):
        metrics.get("os.system")


def test_bad_inputs_are_clear():
    with pytest.raises(ember.errors.ShapeError, match="labels must be in \\[0, 3\\)"):
        metrics.Accuracy(num_classes=3).update(numpy.zeros((2, 3)), numpy.array([0, 5]))
    with pytest.raises(ember.errors.DTypeError, match="argmax"):
        metrics.Accuracy().update(numpy.zeros((2, 3)), numpy.array([[0.2, 0.8, 0.0]] * 2))
    with pytest.raises(ember.errors.ShapeError, match="3 predictions for 2 targets"):
        metrics.Accuracy().update(numpy.zeros((3, 2)), numpy.array([0, 1]))


def test_mean_metric():
    m = metrics.Mean()
    m.update(2.0, weight=3)
    m.update(ember.tensor([4.0, 6.0]))
    assert m.compute() == pytest.approx((6 + 10) / 5)
