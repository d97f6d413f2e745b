"""Stateful metrics: ``update`` with each batch, ``compute`` over everything seen, ``reset``.

Each metric keeps exact sufficient statistics (counts, sums, a confusion matrix, or every
score for AUROC), so the result over uneven batches equals the result over the whole data at
once. Inputs may be ember Tensors or NumPy arrays; metrics are computed in float64 on the host
and never take part in autograd.

    acc = ember.metrics.Accuracy(num_classes=10)
    for logits, y in batches:
        acc.update(logits, y)
    acc.compute()   # a Python float
"""

import numpy

from ember import errors

__all__ = [
    "Metric", "Mean", "Accuracy", "Precision", "Recall", "F1Score", "ConfusionMatrix", "AUROC",
    "MeanSquaredError", "MeanAbsoluteError", "R2Score", "get",
]


def _host(x):
    if hasattr(x, "_data"):
        x = x._data
    if hasattr(x, "get") and not isinstance(x, numpy.ndarray):
        x = x.get()
    return numpy.asarray(x)


class Metric:
    """Base class: subclasses define ``reset``, ``update`` and ``compute``."""

    name = "metric"
    higher_is_better = True

    def __init__(self):
        self.reset()

    def reset(self):
        raise NotImplementedError

    def update(self, preds, target):
        raise NotImplementedError

    def compute(self):
        raise NotImplementedError

    def __call__(self, preds, target):
        """Update with a batch and return the metric of that batch alone."""
        batch = type(self).__new__(type(self))
        batch.__dict__.update({k: v for k, v in self.__dict__.items()})
        batch.reset()
        batch.update(preds, target)
        self.update(preds, target)
        return batch.compute()

    def __repr__(self):
        return f"{type(self).__name__}()"


class Mean(Metric):
    """The (weighted) mean of the values given to ``update``, e.g. a running loss."""

    name = "mean"

    def reset(self):
        self.total = 0.0
        self.weight = 0.0

    def update(self, value, weight=1.0):
        v = _host(value).astype(numpy.float64)
        w = numpy.broadcast_to(_host(weight).astype(numpy.float64), v.shape)
        self.total += float((v * w).sum())
        self.weight += float(w.sum())

    def compute(self):
        return self.total / self.weight if self.weight else float("nan")


def _labels(preds, target, num_classes, threshold, who):
    """Predicted and true class indices from scores (N, C), probabilities/logits (N,) or labels."""
    p, t = _host(preds), _host(target)
    if t.dtype.kind == "f" and numpy.all(t == numpy.round(t)):
        t = t.astype(numpy.int64)
    if t.dtype.kind not in "iub":
        raise errors.DTypeError(
            f"{who}: targets must be class indices (integers), got dtype {t.dtype}; for one-hot "
            "targets pass target.argmax(1)"
        )
    t = t.astype(numpy.int64).reshape(-1)
    if p.ndim == 2 and p.shape[-1] > 1:
        pred = p.argmax(-1)
    elif p.dtype.kind == "f":
        # Scores outside [0, 1] are taken as logits (decided per batch, as torchmetrics does;
        # pass probabilities for a rule that cannot change between batches).
        probs = p.reshape(-1)
        if probs.size and (probs.min() < 0 or probs.max() > 1):
            probs = 1.0 / (1.0 + numpy.exp(-probs))
        pred = (probs >= threshold).astype(numpy.int64)
    else:
        pred = p.reshape(-1).astype(numpy.int64)
    if pred.shape[0] != t.shape[0]:
        raise errors.ShapeError(
            f"{who}: {pred.shape[0]} predictions for {t.shape[0]} targets (preds shape "
            f"{p.shape}, target shape {_host(target).shape})"
        )
    if num_classes is not None and t.size and (t.min() < 0 or t.max() >= num_classes):
        raise errors.ShapeError(
            f"{who}: target labels must be in [0, {num_classes}), got values in "
            f"[{t.min()}, {t.max()}]"
        )
    return pred, t


class Accuracy(Metric):
    """Fraction of correct predictions.

    Args:
        task: "multiclass" (scores (N, C) or labels) or "binary" (probabilities or logits
            (N,), thresholded at ``threshold``). Inferred from the first batch if None.
        num_classes: checks label range when given.
        top_k: a prediction counts as correct if the target is among the k highest scores.
    """

    name = "accuracy"

    def __init__(self, task=None, num_classes=None, top_k=1, threshold=0.5):
        self.task = task
        self.num_classes = num_classes
        self.top_k = top_k
        self.threshold = threshold
        if top_k < 1:
            raise ValueError(f"Accuracy: top_k must be >= 1, got {top_k}")
        super().__init__()

    def reset(self):
        self.correct = 0
        self.total = 0

    def update(self, preds, target):
        if self.top_k > 1:
            p, t = _host(preds), _host(target).astype(numpy.int64).reshape(-1)
            if p.ndim != 2 or p.shape[0] != t.shape[0]:
                raise errors.ShapeError(
                    f"Accuracy(top_k={self.top_k}): expected scores (N, C) for N targets, got "
                    f"{p.shape} for {t.shape[0]} targets"
                )
            k = min(self.top_k, p.shape[1])
            top = numpy.argpartition(-p, k - 1, axis=1)[:, :k]
            self.correct += int((top == t[:, None]).any(axis=1).sum())
            self.total += t.shape[0]
            return
        pred, t = _labels(preds, target, self.num_classes, self.threshold, "Accuracy")
        self.correct += int((pred == t).sum())
        self.total += t.shape[0]

    def compute(self):
        return self.correct / self.total if self.total else float("nan")


class ConfusionMatrix(Metric):
    """Counts of (true class, predicted class) pairs: row i, column j = true i predicted j."""

    name = "confusion_matrix"

    def __init__(self, num_classes, threshold=0.5):
        if num_classes is None or num_classes < 2:
            raise ValueError(f"ConfusionMatrix: num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.threshold = threshold
        super().__init__()

    def reset(self):
        self.matrix = numpy.zeros((self.num_classes, self.num_classes), dtype=numpy.int64)

    def update(self, preds, target):
        pred, t = _labels(preds, target, self.num_classes, self.threshold, type(self).__name__)
        if pred.size and (pred.min() < 0 or pred.max() >= self.num_classes):
            raise errors.ShapeError(
                f"{type(self).__name__}: predicted labels must be in [0, {self.num_classes})"
            )
        flat = t * self.num_classes + pred
        self.matrix += numpy.bincount(flat, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes)

    def compute(self):
        return self.matrix.copy()


class _PRF(ConfusionMatrix):
    """Precision, recall and F1 from the confusion matrix, averaged as asked."""

    def __init__(self, num_classes=2, average="micro", threshold=0.5, task=None):
        if average not in ("micro", "macro", "weighted", None, "none", "binary"):
            raise ValueError(
                f"{type(self).__name__}: average must be 'micro', 'macro', 'weighted', 'binary' or "
                f"None, got {average!r}"
            )
        self.average = average
        super().__init__(num_classes, threshold)

    def _per_class(self):
        m = self.matrix.astype(numpy.float64)
        tp = numpy.diag(m)
        return tp, m.sum(0) - tp, m.sum(1) - tp, m.sum(1)

    def _score(self, tp, fp, fn):
        raise NotImplementedError

    def compute(self):
        tp, fp, fn, support = self._per_class()
        if self.average == "binary":
            return float(self._score(tp[1:2], fp[1:2], fn[1:2])[0])
        if self.average == "micro":
            return float(self._score(tp.sum(keepdims=True), fp.sum(keepdims=True),
                                     fn.sum(keepdims=True))[0])
        scores = self._score(tp, fp, fn)
        if self.average == "macro":
            return float(scores.mean())
        if self.average == "weighted":
            return float((scores * support).sum() / support.sum()) if support.sum() else 0.0
        return scores


def _ratio(num, den):
    return numpy.divide(num, den, out=numpy.zeros_like(num), where=den > 0)


class Precision(_PRF):
    """tp / (tp + fp), per class then averaged ('micro', 'macro', 'weighted', 'binary', None)."""

    name = "precision"

    def _score(self, tp, fp, fn):
        return _ratio(tp, tp + fp)


class Recall(_PRF):
    """tp / (tp + fn), per class then averaged ('micro', 'macro', 'weighted', 'binary', None)."""

    name = "recall"

    def _score(self, tp, fp, fn):
        return _ratio(tp, tp + fn)


class F1Score(_PRF):
    """2 tp / (2 tp + fp + fn), per class then averaged."""

    name = "f1"

    def _score(self, tp, fp, fn):
        return _ratio(2 * tp, 2 * tp + fp + fn)


class AUROC(Metric):
    """Area under the ROC curve, exact (all scores are kept; ties count one half).

    Binary: scores (N,) for the positive class. Multiclass: scores (N, C), one-vs-rest areas
    averaged with ``average`` ('macro' or 'weighted').
    """

    name = "auroc"

    def __init__(self, task=None, num_classes=None, average="macro"):
        self.task = task
        self.num_classes = num_classes
        self.average = average
        super().__init__()

    def reset(self):
        self.scores = []
        self.targets = []

    def update(self, preds, target):
        p, t = _host(preds).astype(numpy.float64), _host(target).astype(numpy.int64).reshape(-1)
        if p.shape[0] != t.shape[0]:
            raise errors.ShapeError(f"AUROC: {p.shape[0]} scores for {t.shape[0]} targets")
        self.scores.append(p)
        self.targets.append(t)

    def compute(self):
        if not self.scores:
            return float("nan")
        p, t = numpy.concatenate(self.scores), numpy.concatenate(self.targets)
        if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
            return _binary_auc(p.reshape(-1), t)
        areas = numpy.array([_binary_auc(p[:, c], (t == c).astype(numpy.int64))
                             for c in range(p.shape[1])])
        if self.average == "weighted":
            support = numpy.bincount(t, minlength=p.shape[1])
            return float((areas * support).sum() / support.sum())
        return float(areas.mean())


def _binary_auc(scores, labels):
    """Mann-Whitney U: the probability a random positive outranks a random negative."""
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC is undefined when only one class is present in the targets")
    order = numpy.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = numpy.empty(len(scores), dtype=numpy.float64)
    # Average ranks over ties so tied scores count one half.
    boundaries = numpy.flatnonzero(numpy.diff(sorted_scores)) + 1
    starts = numpy.concatenate(([0], boundaries))
    ends = numpy.concatenate((boundaries, [len(scores)]))
    avg = (starts + ends + 1) / 2.0
    ranks[order] = numpy.repeat(avg, ends - starts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class _Regression(Metric):
    higher_is_better = False

    def reset(self):
        self.n = 0
        self.sum_sq = None
        self.sum_abs = None
        self.sum_y = None
        self.sum_y2 = None

    def update(self, preds, target):
        p = _host(preds).astype(numpy.float64)
        t = _host(target).astype(numpy.float64)
        if p.shape != t.shape:
            if p.size == t.size:
                p = p.reshape(t.shape)
            else:
                raise errors.ShapeError(
                    f"{type(self).__name__}: preds shape {p.shape} does not match target shape "
                    f"{t.shape}"
                )
        p2, t2 = p.reshape(len(p), -1) if p.ndim else p.reshape(1, 1), t.reshape(len(t), -1) if t.ndim else t.reshape(1, 1)
        err = p2 - t2
        add = [("sum_sq", (err**2).sum(0)), ("sum_abs", numpy.abs(err).sum(0)),
               ("sum_y", t2.sum(0)), ("sum_y2", (t2**2).sum(0))]
        for name, value in add:
            cur = getattr(self, name)
            setattr(self, name, value if cur is None else cur + value)
        self.n += t2.shape[0]


class MeanSquaredError(_Regression):
    """Mean of squared errors over all elements seen."""

    name = "mse"

    def compute(self):
        return float(self.sum_sq.sum() / (self.n * self.sum_sq.size)) if self.n else float("nan")


class MeanAbsoluteError(_Regression):
    """Mean of absolute errors over all elements seen."""

    name = "mae"

    def compute(self):
        return float(self.sum_abs.sum() / (self.n * self.sum_abs.size)) if self.n else float("nan")


class R2Score(_Regression):
    """Coefficient of determination 1 - SSE/SST (outputs averaged uniformly, like sklearn)."""

    name = "r2"
    higher_is_better = True

    def compute(self):
        if self.n < 2:
            return float("nan")
        sst = self.sum_y2 - self.sum_y**2 / self.n
        r2 = numpy.where(sst > 0, 1.0 - self.sum_sq / numpy.where(sst > 0, sst, 1.0), 0.0)
        return float(r2.mean())


_REGISTRY = {
    "accuracy": lambda **kw: Accuracy(**kw),
    "acc": lambda **kw: Accuracy(**kw),
    "top_k_accuracy": lambda **kw: _named(Accuracy(top_k=kw.pop("top_k", 5), **kw), "top_k_accuracy"),
    "precision": lambda **kw: Precision(**kw),
    "recall": lambda **kw: Recall(**kw),
    "f1": lambda **kw: F1Score(**kw),
    "auroc": lambda **kw: AUROC(**kw),
    "mse": lambda **kw: MeanSquaredError(),
    "mean_squared_error": lambda **kw: MeanSquaredError(),
    "mae": lambda **kw: MeanAbsoluteError(),
    "mean_absolute_error": lambda **kw: MeanAbsoluteError(),
    "r2": lambda **kw: R2Score(),
}


def _named(metric, name):
    metric.name = name
    return metric


def get(identifier, **kwargs):
    """A metric from a name in ember's own registry ("accuracy", "top_k_accuracy", "precision",
    "recall", "f1", "auroc", "mse", "mae", "r2") or a Metric instance (returned as is). A string
    never imports or calls anything outside this registry."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _REGISTRY:
            raise ValueError(
                f"unknown metric {identifier!r}; known: {', '.join(sorted(_REGISTRY))}, or pass "
                "an ember.metrics.Metric instance"
            )
        return _REGISTRY[key](**kwargs)
    raise TypeError(f"a metric must be a name or a Metric instance, got {type(identifier).__name__}")
