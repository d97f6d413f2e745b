"""The names ``Module.compile`` understands: optimizers and losses (metrics come from
``ember.metrics.get``).

A string is looked up in the tables below and nowhere else: it never imports a module, reads an
attribute by name or calls anything outside these tables. (Model configs that name arbitrary
callables are how saved Keras models have run code; a name here can only ever pick one of the
entries written in this file.)

Losses by name follow PyTorch's functions, with Keras's names as aliases. Every classification
loss takes **logits** (unnormalized scores), as ``F.cross_entropy`` does, because an ember
model ends in a ``Linear`` layer and the fused log-softmax is the stable form; a model that
ends in Softmax or Sigmoid should drop that layer (or pass its own loss callable).
"""

import functools

from ember import errors, metrics
from ember.optim import adadelta, adagrad, adam, adamax, adamw, nadam, optimizer, rmsprop, sgd

# name -> (optimizer class, learning rate used for the bare string). The learning rates are
# Keras's defaults for these names, since the string form is Keras's API; pass an object for
# any other setting, e.g. ember.optim.SGD(lr=0.1, momentum=0.9).
_OPTIMIZERS = {
    "sgd": (sgd.SGD, 1e-2),
    "adam": (adam.Adam, 1e-3),
    "adamw": (adamw.AdamW, 1e-3),
    "rmsprop": (rmsprop.RMSprop, 1e-3),
    "adagrad": (adagrad.Adagrad, 1e-3),
    "adadelta": (adadelta.Adadelta, 1e-3),
    "adamax": (adamax.Adamax, 1e-3),
    "nadam": (nadam.NAdam, 1e-3),
}


def get_optimizer(identifier):
    """An unbound optimizer for a name in ``_OPTIMIZERS``, or the Optimizer given."""
    if isinstance(identifier, optimizer.Optimizer):
        return identifier
    if isinstance(identifier, str):
        entry = _OPTIMIZERS.get(identifier.lower())
        if entry is None:
            raise ValueError(
                f"compile: unknown optimizer {identifier!r}; known names: "
                f"{', '.join(sorted(_OPTIMIZERS))}, or pass an ember.optim optimizer such as "
                "ember.optim.Adam(lr=1e-3)"
            )
        cls, lr = entry
        return cls(lr=lr)
    raise TypeError(
        f"compile: optimizer must be a name or an ember.optim optimizer, got "
        f"{type(identifier).__name__}"
    )


# ---- losses -------------------------------------------------------------------------------

# What a loss expects of (output, target), checked once before training starts:
#   "index": class indices, output (N, C, ...) and target (N, ...) of integers in [0, C)
#   "probs": class probabilities (e.g. one-hot), target shaped like the output
#   "same":  target shaped like the output (an (N, 1) output also takes an (N,) target)
INDEX, PROBS, SAME = "index", "probs", "same"


class Loss:
    """A loss from the registry: ``loss(output, target, reduction="mean")``.

    Attributes:
        name: the name it was asked for (used in error messages and logs).
        target_kind: INDEX, PROBS or SAME (see above).
    """

    def __init__(self, name, function_name, target_kind):
        self.name = name
        self.function_name = function_name
        self.target_kind = target_kind

    @functools.cached_property
    def _function(self):
        from ember.nn import functional  # noqa: PLC0415  (ember.nn imports this package)

        fn = getattr(functional, self.function_name, None)
        if fn is None:
            raise errors.EmberError(
                f"loss {self.name!r} needs ember.nn.functional.{self.function_name}, which this "
                "build of ember does not have"
            )
        return fn

    def __call__(self, output, target, reduction="mean"):
        if self.target_kind == SAME and output.ndim == target.ndim + 1 and output.shape[-1] == 1:
            target = target.reshape(output.shape)
        return self._function(output, target, reduction=reduction)

    def __repr__(self):
        return f"Loss({self.name!r})"


# name -> (ember.nn.functional name, target kind). Looked up in F when first called.
_LOSSES = {
    "cross_entropy": ("cross_entropy", INDEX),
    "sparse_categorical_crossentropy": ("cross_entropy", INDEX),
    "categorical_crossentropy": ("cross_entropy", PROBS),
    "binary_crossentropy": ("binary_cross_entropy_with_logits", SAME),
    "binary_cross_entropy_with_logits": ("binary_cross_entropy_with_logits", SAME),
    "mse": ("mse_loss", SAME),
    "mean_squared_error": ("mse_loss", SAME),
    "mse_loss": ("mse_loss", SAME),
    "mae": ("l1_loss", SAME),
    "mean_absolute_error": ("l1_loss", SAME),
    "l1_loss": ("l1_loss", SAME),
    "huber": ("huber_loss", SAME),
    "huber_loss": ("huber_loss", SAME),
    "smooth_l1_loss": ("smooth_l1_loss", SAME),
}


def get_loss(identifier):
    """A ``Loss`` for a name in ``_LOSSES``, or the callable given (``loss(output, target)``
    returning a scalar Tensor, e.g. an ``nn`` loss module)."""
    if isinstance(identifier, str):
        entry = _LOSSES.get(identifier.lower())
        if entry is None:
            raise ValueError(
                f"compile: unknown loss {identifier!r}; known names: "
                f"{', '.join(sorted(_LOSSES))}, or pass a callable loss(output, target)"
            )
        return Loss(identifier.lower(), *entry)
    if callable(identifier):
        return identifier
    raise TypeError(
        f"compile: loss must be a name or a callable loss(output, target), got "
        f"{type(identifier).__name__}"
    )


def get_metrics(identifiers):
    """A list of ember.metrics.Metric from names or instances (``ember.metrics.get``)."""
    if identifiers is None:
        return []
    if isinstance(identifiers, (str, metrics.Metric)):
        identifiers = [identifiers]
    out = []
    for item in identifiers:
        try:
            out.append(metrics.get(item))
        except ValueError as exc:
            raise ValueError(f"compile: {exc}") from None
    names = [m.name for m in out]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(
                f"compile: two metrics are both named {name!r}; give one another name "
                "(metric.name = '...')"
            )
    return out
