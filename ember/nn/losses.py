"""Loss modules, PyTorch's ``torch.nn`` losses: each holds its options (and a ``weight``
buffer where PyTorch has one) and calls the function of the same name in
``ember.nn.functional``. Errors name the module (and its attribute name inside a model).

Example::

    >>> criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    >>> loss = criterion(model(x), y)
    >>> loss.backward()
"""

from ember import errors
from ember.nn import functional as F
from ember.nn import module as _module
from ember.ops import loss as _loss_ops

__all__ = [
    "L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
    "BCEWithLogitsLoss", "KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss",
    "CosineEmbeddingLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "SoftMarginLoss",
    "MultiLabelSoftMarginLoss", "MultiMarginLoss", "MultiLabelMarginLoss", "TripletMarginLoss",
    "CTCLoss",
]


class _Loss(_module.Module):
    """Base of the losses: the reduction (from the legacy ``size_average``/``reduce`` flags
    when given) and error messages that name the module."""

    _allowed = ("none", "mean", "sum")

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = _loss_ops._reduction(
            type(self).__name__, size_average, reduce, reduction, self._allowed
        )

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except errors.EmberError as exc:
            message = str(exc)
            prefix = fn.__name__ + ":"
            if not message.startswith(prefix):
                raise
            name = self._qualified_name()
            label = type(self).__name__ + (f" '{name}'" if name else "")
            raise type(exc)(label + message[len(fn.__name__):]) from None

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """Mean absolute error ``|input - target|``.

    Args:
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input: ``(*)``; Target: the input's shape; Output: scalar, or ``(*)`` with ``'none'``.

    Example::

        >>> nn.L1Loss()(ember.tensor([1.0, 2.0]), ember.tensor([0.0, 4.0]))
        tensor(1.5000)
    """

    def forward(self, input, target):
        return self._call(F.l1_loss, input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error ``(input - target) ** 2``.

    Args:
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input: ``(*)``; Target: the input's shape; Output: scalar, or ``(*)`` with ``'none'``.

    Example::

        >>> nn.MSELoss()(ember.tensor([1.0, 2.0]), ember.tensor([1.0, 4.0]))
        tensor(2.)
    """

    def forward(self, input, target):
        return self._call(F.mse_loss, input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Squared error below ``beta``, absolute error above (``F.smooth_l1_loss``).

    Args:
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        beta (float): where the quadratic part ends; >= 0. Default: 1.0.

    Shape:
        Input: ``(*)``; Target: the input's shape; Output: scalar, or ``(*)`` with ``'none'``.
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return self._call(F.smooth_l1_loss, input, target, reduction=self.reduction,
                          beta=self.beta)


class HuberLoss(_Loss):
    """``0.5 d**2`` below ``delta``, ``delta (|d| - 0.5 delta)`` above (``F.huber_loss``).

    Args:
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        delta (float): where the quadratic part ends; > 0. Default: 1.0.

    Shape:
        Input: ``(*)``; Target: the input's shape; Output: scalar, or ``(*)`` with ``'none'``.
    """

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return self._call(F.huber_loss, input, target, reduction=self.reduction,
                          delta=self.delta)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy of logits against class indices or class probabilities (fused, stable
    log_softmax + nll; see ``F.cross_entropy``).

    Args:
        weight (Tensor, optional): per-class rescaling ``(C,)``, kept as a buffer.
        ignore_index (int): class-index target to skip (also in the mean). Default: -100.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        label_smoothing (float): in [0, 1]. Default: 0.0.

    Shape:
        Input: ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``; Target: class indices ``(N,)``,
        ``()`` or ``(N, d1, ...)`` (int64), or probabilities of the input's shape; Output:
        scalar, or the target's index shape with ``'none'``.

    Example::

        >>> criterion = nn.CrossEntropyLoss()
        >>> logits = ember.randn(3, 5, requires_grad=True)
        >>> criterion(logits, ember.tensor([1, 0, 4])).backward()
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return self._call(F.cross_entropy, input, target, weight=self.weight,
                          ignore_index=self.ignore_index, reduction=self.reduction,
                          label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log likelihood of log-probabilities (use after ``log_softmax``).

    Args:
        weight (Tensor, optional): per-class rescaling ``(C,)``, kept as a buffer.
        ignore_index (int): target to skip (also in the mean). Default: -100.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input: ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``; Target: ``(N,)``, ``()`` or
        ``(N, d1, ...)`` int64; Output: scalar, or the target's shape with ``'none'``.

    Example::

        >>> nn.NLLLoss()(F.log_softmax(ember.randn(3, 5), 1), ember.tensor([1, 0, 4])).shape
        ember.Size([])
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return self._call(F.nll_loss, input, target, weight=self.weight,
                          ignore_index=self.ignore_index, reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross entropy of probabilities (logs clamped to >= -100, as PyTorch).

    Args:
        weight (Tensor, optional): rescaling broadcast to the input, kept as a buffer.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input: ``(*)`` in [0, 1]; Target: the input's shape; Output: scalar, or ``(*)``.

    Example::

        >>> nn.BCELoss()(ember.tensor([0.9, 0.2]), ember.tensor([1.0, 0.0]))
        tensor(0.1643)
    """

    def forward(self, input, target):
        return self._call(F.binary_cross_entropy, input, target, weight=self.weight,
                          reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Sigmoid + binary cross entropy in one stable expression.

    Args:
        weight (Tensor, optional): rescaling broadcast to the input, kept as a buffer.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        pos_weight (Tensor, optional): weight of positives, broadcast over the last (class)
            dim, kept as a buffer.

    Shape:
        Input: ``(*)`` logits; Target: the input's shape; Output: scalar, or ``(*)``.

    Example::

        >>> criterion = nn.BCEWithLogitsLoss(pos_weight=ember.full((3,), 2.0))
        >>> criterion(ember.randn(4, 3), ember.ones(4, 3)).shape
        ember.Size([])
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return self._call(F.binary_cross_entropy_with_logits, input, target,
                          weight=self.weight, reduction=self.reduction,
                          pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence of ``target`` from the log-probabilities ``input``.

    Args:
        reduction (str): ``'none'`` | ``'batchmean'`` (the true KL divergence) | ``'sum'`` |
            ``'mean'``. Default: ``'mean'``.
        log_target (bool): the target is given as log-probabilities too. Default: False.

    Shape:
        Input: ``(*)``; Target: the input's shape; Output: scalar, or ``(*)``.
    """

    _allowed = ("none", "mean", "sum", "batchmean")

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return self._call(F.kl_div, input, target, reduction=self.reduction,
                          log_target=self.log_target)


class PoissonNLLLoss(_Loss):
    """Poisson negative log likelihood (``F.poisson_nll_loss``).

    Args:
        log_input (bool): the input is the log of the rate. Default: True.
        full (bool): add Stirling's approximation term. Default: False.
        eps (float): added inside the log when ``log_input=False``. Default: 1e-8.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input: ``(*)``; Target: the input's shape; Output: scalar, or ``(*)``.
    """

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input, target):
        return self._call(F.poisson_nll_loss, log_input, target, log_input=self.log_input,
                          full=self.full, eps=self.eps, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log likelihood with predicted variances (``F.gaussian_nll_loss``).

    Args:
        full (bool): add the constant ``0.5 log(2 pi)``. Default: False.
        eps (float): lower clamp of the variance (the gradient still flows). Default: 1e-6.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input: ``(N, *)``; Target: the input's shape; Var: the input's shape, or without its
        last dim, or with a last dim of 1; Output: scalar, or ``(N, *)``.
    """

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(reduction=reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):
        return self._call(F.gaussian_nll_loss, input, target, var, full=self.full,
                          eps=self.eps, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    """``1 - cos(x1, x2)`` for target 1, ``max(0, cos(x1, x2) - margin)`` for target -1.

    Args:
        margin (float): in [-1, 1]; 0 to 0.5 is typical. Default: 0.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input1, Input2: ``(N, D)`` or ``(D,)``; Target: ``(N,)`` or ``()``; Output: scalar,
        or ``(N,)``.
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return self._call(F.cosine_embedding_loss, input1, input2, target, margin=self.margin,
                          reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """``max(0, -target * (input1 - input2) + margin)``.

    Args:
        margin (float): Default: 0.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input1, Input2, Target: ``(N,)`` or ``()``; Output: scalar, or ``(N,)``.
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return self._call(F.margin_ranking_loss, input1, input2, target, margin=self.margin,
                          reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """``x`` for target 1, ``max(0, margin - x)`` for target -1 (``x`` usually a distance).

    Args:
        margin (float): Default: 1.0.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input: ``(*)``; Target: the input's shape; Output: scalar, or ``(*)``.
    """

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input, target):
        return self._call(F.hinge_embedding_loss, input, target, margin=self.margin,
                          reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """Two-class logistic loss ``log(1 + exp(-y x))`` with ``y`` in {1, -1}.

    Shape:
        Input: ``(*)``; Target: the input's shape; Output: scalar, or ``(*)``.
    """

    def forward(self, input, target):
        return self._call(F.soft_margin_loss, input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """Multi-label one-vs-all logistic loss averaged over classes.

    Args:
        weight (Tensor, optional): per-class rescaling ``(C,)``, kept as a buffer.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input: ``(N, C)``; Target: ``(N, C)`` of 0/1; Output: scalar, or ``(N,)``.
    """

    def forward(self, input, target):
        return self._call(F.multilabel_soft_margin_loss, input, target, weight=self.weight,
                          reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge loss (``F.multi_margin_loss``).

    Args:
        p (int): 1 or 2. Default: 1.
        margin (float): Default: 1.0.
        weight (Tensor, optional): per-class rescaling ``(C,)``, kept as a buffer.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Input: ``(N, C)`` or ``(C,)``; Target: ``(N,)`` or ``()`` int64; Output: scalar, or
        ``(N,)``.
    """

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 are supported. "
                             f"Received: p={p}")
        self.p, self.margin = p, margin

    def forward(self, input, target):
        return self._call(F.multi_margin_loss, input, target, p=self.p, margin=self.margin,
                          weight=self.weight, reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    """Multi-label hinge loss; the target lists class indices, ended by -1.

    Shape:
        Input: ``(N, C)`` or ``(C,)``; Target: the input's shape, int64; Output: scalar, or
        ``(N,)``.
    """

    def forward(self, input, target):
        return self._call(F.multilabel_margin_loss, input, target, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """``max(0, d(a, p) - d(a, n) + margin)`` with the p-norm distance.

    Args:
        margin (float): > 0. Default: 1.0.
        p (float): the norm degree. Default: 2.
        eps (float): added to the difference for stability. Default: 1e-6.
        swap (bool): use ``min(d(a, n), d(p, n))`` as the negative distance. Default: False.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        Anchor, Positive, Negative: ``(N, D)`` or ``(D,)``; Output: scalar, or ``(N,)``.

    Example::

        >>> loss = nn.TripletMarginLoss(margin=0.5)
        >>> loss(ember.randn(8, 16), ember.randn(8, 16), ember.randn(8, 16)).shape
        ember.Size([])
    """

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None,
                 reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: margin must be greater than 0. "
                             f"Received: margin={margin}")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return self._call(F.triplet_margin_loss, anchor, positive, negative,
                          margin=self.margin, p=self.p, eps=self.eps, swap=self.swap,
                          reduction=self.reduction)


class CTCLoss(_Loss):
    """Connectionist Temporal Classification loss (``F.ctc_loss``). Its gradient is computed
    on arrays by the alpha-beta method, so double backward through it is not supported.

    Args:
        blank (int): the blank class. Default: 0.
        reduction (str): ``'none'`` | ``'mean'`` (each loss divided by its target length,
            then averaged) | ``'sum'``. Default: ``'mean'``.
        zero_infinity (bool): zero the infinite losses of impossible alignments and their
            gradients. Default: False.

    Shape:
        Log_probs: ``(T, N, C)`` or ``(T, C)``; Targets: ``(N, S)`` padded or
        ``(sum(target_lengths),)``; Input_lengths, Target_lengths: ``(N,)``; Output: scalar,
        or ``(N,)`` with ``'none'``.

    Example::

        >>> ctc = nn.CTCLoss()
        >>> lp = ember.randn(50, 4, 20, requires_grad=True).log_softmax(2)
        >>> targets = ember.randint(1, 20, (4, 10))
        >>> ctc(lp, targets, [50] * 4, [10, 8, 9, 10]).backward()
    """

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__(reduction=reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return self._call(F.ctc_loss, log_probs, targets, input_lengths, target_lengths,
                          blank=self.blank, reduction=self.reduction,
                          zero_infinity=self.zero_infinity)
