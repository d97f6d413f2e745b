"""Margin and embedding losses, PyTorch's names and arguments: hinge_embedding_loss,
margin_ranking_loss, soft_margin_loss, multilabel_soft_margin_loss, multi_margin_loss,
multilabel_margin_loss, cosine_embedding_loss and triplet_margin_loss.

They score how far inputs sit from a margin (or, for the embedding losses, how far apart
embeddings are), mostly as ``clamp(margin - score, min=0)``. All are composed from ember ops,
so their gradients and double backward come for free. They share the argument checks and
reductions of ``loss.py`` (``_reduction``, ``_reduce``, ...); every name here is also
importable from ``loss``.
"""

from ember import errors
from ember.backend import devices as _devices
from ember.ops import activation, elementwise, index, shape
from ember.ops import loss as loss_ops
from ember.ops import reduce as _red

# Exported at the top level as ``ember.NAME`` (the losses PyTorch also has as ``torch.NAME``);
# every loss is in ``ember.nn.functional``.
__all__ = [
    "cosine_embedding_loss", "hinge_embedding_loss", "margin_ranking_loss",
    "triplet_margin_loss",
]

TENSOR_METHODS = {}


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    """``1 - cos(x1, x2)`` where target is 1, ``max(0, cos(x1, x2) - margin)`` where it is -1.

    Shape:
        input1, input2: ``(N, D)`` or ``(D,)``; target: ``(N,)`` or ``()``; output: ``(N,)``
        or ``()`` with ``'none'``.
    """
    name = "cosine_embedding_loss"
    reduction = loss_ops._reduction(name, size_average, reduce, reduction)
    loss_ops._float(name, "input1", input1)
    loss_ops._float(name, "input2", input2)
    loss_ops._tensor(name, "target", target)
    if tuple(input1.shape) != tuple(input2.shape) or input1.ndim not in (1, 2) or \
            tuple(target.shape) != tuple(input1.shape[:-1]):
        raise errors.ShapeError(
            f"{name}: expected input1 and input2 of shape (N, D) or (D,) and target (N,) or (); "
            f"got {loss_ops._shapes(input1=input1, input2=input2, target=target)}"
        )
    dim = input1.ndim - 1
    dot = _red.sum(input1 * input2, dim)
    mag = (_red.sum(input1 * input1, dim) + 1e-12) * (_red.sum(input2 * input2, dim) + 1e-12)
    cos = dot / elementwise.sqrt(mag)
    pos = elementwise.where(target == 1, 1 - cos, 0.0)
    neg = elementwise.where(target == -1, elementwise.clamp(cos - margin, min=0), 0.0)
    return loss_ops._reduce(pos + neg, reduction)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    """``max(0, -target * (input1 - input2) + margin)``: target 1 asks input1 to rank higher,
    -1 input2. All three have one shape ``(N,)`` or ``()``."""
    name = "margin_ranking_loss"
    reduction = loss_ops._reduction(name, size_average, reduce, reduction)
    for what, x in (("input1", input1), ("input2", input2), ("target", target)):
        loss_ops._tensor(name, what, x)
    if not (tuple(input1.shape) == tuple(input2.shape) == tuple(target.shape)):
        raise errors.ShapeError(
            f"{name}: input1, input2 and target must have one shape; got "
            f"{loss_ops._shapes(input1=input1, input2=input2, target=target)}"
        )
    loss = elementwise.clamp(-target * (input1 - input2) + margin, min=0)
    return loss_ops._reduce(loss, reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """``input`` where target is 1, ``max(0, margin - input)`` where it is -1 (input is
    usually a distance)."""
    name = "hinge_embedding_loss"
    reduction = loss_ops._reduction(name, size_average, reduce, reduction)
    loss_ops._float(name, "input", input)
    loss_ops._same_shape(name, input, loss_ops._tensor(name, "target", target))
    hinge = elementwise.where(target != 1, elementwise.clamp(margin - input, min=0), 0.0)
    return loss_ops._reduce(hinge + elementwise.where(target != -1, input, 0.0), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Two-class logistic loss ``log(1 + exp(-target * input))`` with targets in {1, -1}."""
    name = "soft_margin_loss"
    reduction = loss_ops._reduction(name, size_average, reduce, reduction)
    loss_ops._float(name, "input", input)
    loss_ops._same_shape(name, input, loss_ops._tensor(name, "target", target))
    return loss_ops._reduce(-activation.logsigmoid(target * input), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """Multi-label one-vs-all logistic loss, averaged over the C classes of each sample:
    ``-mean_c(y log sigmoid(x) + (1 - y) log sigmoid(-x))``.

    Shape:
        input, target: ``(N, C)`` or ``(C,)``; weight: broadcast to the input; output:
        ``(N,)`` with ``'none'``.
    """
    name = "multilabel_soft_margin_loss"
    reduction = loss_ops._reduction(name, size_average, reduce, reduction)
    loss_ops._float(name, "input", input)
    loss_ops._same_shape(name, input, loss_ops._tensor(name, "target", target), strict=True)
    loss = -(target * activation.logsigmoid(input) + (1 - target) * activation.logsigmoid(-input))
    if weight is not None:
        loss = loss * loss_ops._tensor(name, "weight", weight)
    loss = _red.sum(loss, -1) / (input.shape[-1] if input.ndim else 1)
    return loss_ops._reduce(loss, reduction)


def _margin_class_args(name, input, target):
    loss_ops._float(name, "input", input)
    loss_ops._tensor(name, "target", target)
    if input.ndim not in (1, 2) or tuple(target.shape) != tuple(input.shape[:-1]) or \
            target._data.dtype.kind not in "iu":
        raise errors.ShapeError(
            f"{name}: expected input (N, C) or (C,) and int64 class indices target (N,) or (); "
            f"got {loss_ops._shapes(input=input, target=target)} with target dtype "
            f"{loss_ops._dt(target._data.dtype)}"
        )
    c = input.shape[-1]
    t = target._data
    if t.size and (int(t.min()) < 0 or int(t.max()) >= c):
        bad = int(t[(t < 0) | (t >= c)].reshape(-1)[0])
        raise loss_ops._TargetOutOfRange(
            f"{name}: target class {bad} is out of range for input with {c} classes (shape "
            f"{errors.shape_str(input.shape)})"
        )
    return c


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    """Multi-class hinge loss: ``sum_{j != y} max(0, margin - x[y] + x[j])**p / C`` per
    sample (times ``weight[y]`` if given); ``p`` is 1 or 2."""
    name = "multi_margin_loss"
    reduction = loss_ops._reduction(name, size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError(f"{name}: only p == 1 and p == 2 are supported. Received: p={p}")
    c = _margin_class_args(name, input, target)
    x = input if input.ndim == 2 else shape.reshape(input, (1, c))
    t = target._data.reshape(-1)
    x_y = index.gather(x, 1, loss_ops._const(t.reshape(-1, 1)))
    z = elementwise.clamp(x - x_y + margin, min=0)
    if p == 2:
        z = z * z
    xp = _devices.get_array_module(t)
    others = (xp.arange(c)[None, :] != t[:, None]).astype(input._data.dtype)
    if weight is not None:
        loss_ops._float(name, "weight", weight)
        others = others * weight._data.astype(others.dtype)[t][:, None]
    loss = _red.sum(z * loss_ops._const(others), 1) / c
    if input.ndim == 1:
        loss = shape.reshape(loss, ())
    return loss_ops._reduce(loss, reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Multi-label hinge loss: for each target class j and each non-target class k,
    ``max(0, 1 - (x[j] - x[k])) / C``. ``target`` has the input's shape and lists the target
    classes of a sample first, ended by -1 (``[3, 0, -1, 1]`` means classes 3 and 0)."""
    name = "multilabel_margin_loss"
    reduction = loss_ops._reduction(name, size_average, reduce, reduction)
    loss_ops._float(name, "input", input)
    loss_ops._same_shape(name, input, loss_ops._tensor(name, "target", target), strict=True)
    if input.ndim not in (1, 2) or target._data.dtype.kind not in "iu":
        raise errors.ShapeError(
            f"{name}: expected input (N, C) or (C,) and an int64 target of the same shape; got "
            f"{loss_ops._shapes(input=input, target=target)}, target dtype "
            f"{loss_ops._dt(target.dtype)}"
        )
    c = input.shape[-1]
    x = input if input.ndim == 2 else shape.reshape(input, (1, c))
    t = target._data.reshape(-1, c)
    xp = _devices.get_array_module(t)
    # The targets of a row are its entries before the first -1; count each class's uses.
    live = xp.cumprod(t >= 0, axis=1).astype(bool)
    ts = xp.where(live, t, 0)
    if t.size and int(xp.where(live, t, 0).max(initial=0)) >= c:
        raise loss_ops._TargetOutOfRange(
            f"{name}: target class {int(ts.max())} is out of range for input with {c} classes "
            f"(shape {errors.shape_str(input.shape)})"
        )
    count = xp.zeros(t.shape, input._data.dtype)
    rows = xp.repeat(xp.arange(t.shape[0]), c)
    xp.add.at(count, (rows, ts.reshape(-1)), live.reshape(-1).astype(count.dtype))
    pair = count[:, :, None] * (count == 0)[:, None, :]
    hinge = elementwise.clamp(1 - shape.unsqueeze(x, 2) + shape.unsqueeze(x, 1), min=0)
    loss = _red.sum(hinge * loss_ops._const(pair), (1, 2)) / c
    if input.ndim == 1:
        loss = shape.reshape(loss, ())
    return loss_ops._reduce(loss, reduction)


def _pairwise_distance(x1, x2, p, eps):
    return _red.norm(x1 - x2 + eps, p, -1)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """``max(0, d(a, p) - d(a, n) + margin)`` with ``d(x, y) = ||x - y + eps||_p``; ``swap``
    uses ``min(d(a, n), d(p, n))`` as the negative distance.

    Shape:
        anchor, positive, negative: ``(N, D)`` or ``(D,)``; output: ``(N,)`` or ``()`` with
        ``'none'``.

    Example::

        >>> a, pos, neg = ember.randn(8, 16), ember.randn(8, 16), ember.randn(8, 16)
        >>> F.triplet_margin_loss(a, pos, neg, margin=0.5).shape
        ember.Size([])
    """
    name = "triplet_margin_loss"
    reduction = loss_ops._reduction(name, size_average, reduce, reduction)
    for what, x in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        loss_ops._float(name, what, x)
    if anchor.ndim not in (1, 2) or not (
            tuple(anchor.shape) == tuple(positive.shape) == tuple(negative.shape)):
        raise errors.ShapeError(
            f"{name}: anchor, positive and negative must share one shape (N, D) or (D,); got "
            f"{loss_ops._shapes(anchor=anchor, positive=positive, negative=negative)}"
        )
    if margin <= 0:
        raise ValueError(f"{name}: margin must be greater than 0. Received: margin={margin}")
    d_pos = _pairwise_distance(anchor, positive, p, eps)
    d_neg = _pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = elementwise.minimum(d_neg, _pairwise_distance(positive, negative, p, eps))
    return loss_ops._reduce(elementwise.clamp(margin + d_pos - d_neg, min=0), reduction)

