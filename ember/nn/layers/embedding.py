"""Embedding (a lookup table of learnable vectors, indexed by integers) and EmbeddingBag
(sums, means or maxima of bags of them)."""

from ember import creation, errors
from ember.autograd import grad_mode
from ember.nn import functional as F
from ember.nn import init
from ember.nn import module as _module
from ember.nn.parameter import Parameter

__all__ = ["Embedding", "EmbeddingBag"]


class Embedding(_module.Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``; the input holds
    integer indices into it.

    Args:
        num_embeddings (int): size of the table.
        embedding_dim (int): size of each vector.
        padding_idx (int, optional): this row gets no gradient (and is initialized to zeros);
            a negative value counts from the end.
        max_norm (float, optional): looked-up rows with a larger ``norm_type``-norm are
            rescaled to norm ``max_norm`` in place.
        norm_type (float): the p of the norm for ``max_norm``. Default: 2.
        scale_grad_by_freq (bool): divide each row's gradient by its index's count in the
            batch. Default: False.
        sparse (bool): sparse gradients are not supported; must be False.
        _weight (Tensor, optional): use this as the initial table.
        _freeze (bool): with ``_weight``: do not train the table. Default: False.
        device, dtype: where and in which dtype to create the table.

    Shape:
        Input: integer tensor ``(*)``. Output: ``(*, embedding_dim)``.

    Attributes:
        weight: ``(num_embeddings, embedding_dim)`` from N(0, 1).

    Example::

        >>> emb = nn.Embedding(10, 3, padding_idx=0)
        >>> emb(ember.tensor([[0, 2, 4], [4, 3, 9]])).shape
        ember.Size([2, 3, 3])
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__()
        for arg, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Embedding: {arg} must be a non-negative integer. "
                                 f"Received: {arg}={value!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be within num_embeddings "
                                 f"({num_embeddings}). Received: padding_idx={padding_idx}")
            padding_idx %= num_embeddings
        if sparse:
            raise NotImplementedError(
                "Embedding: sparse=True (sparse gradients) is not supported by ember; use "
                "sparse=False"
            )
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = Parameter(creation.empty(num_embeddings, embedding_dim, device=device,
                                                   dtype=dtype), requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise errors.ShapeError(
                    f"Embedding: _weight has shape {errors.shape_str(_weight.shape)}, expected "
                    f"({num_embeddings}, {embedding_dim})"
                )
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        """weight ~ N(0, 1); the padding row is zero."""
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self):
        if self.padding_idx is not None:
            with grad_mode.no_grad():
                self.weight._data[self.padding_idx] = 0
                self.weight._bump_version()

    def forward(self, input):
        try:
            return F.embedding(input, self.weight, self.padding_idx, self.max_norm,
                               self.norm_type, self.scale_grad_by_freq, self.sparse)
        except (errors.ShapeError, errors.DTypeError) as exc:
            shape = errors.shape_str(input.shape) if hasattr(input, "shape") else "?"
            raise type(exc)(f"{self._layer_label()} with input of shape {shape}: {exc}") \
                from None

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An Embedding whose table is ``embeddings`` (2-D); ``freeze`` (default True) keeps it
        from being trained.

        Example::

            >>> emb = nn.Embedding.from_pretrained(ember.tensor([[1.0, 2.3], [4.0, 5.1]]))
            >>> emb(ember.tensor([1]))
            tensor([[4.0000, 5.1000]])
        """
        if embeddings.ndim != 2:
            raise errors.ShapeError(
                f"Embedding.from_pretrained: embeddings must be 2-D (num_embeddings, "
                f"embedding_dim), got {errors.shape_str(embeddings.shape)}"
            )
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s


class EmbeddingBag(_module.Module):
    """Sums, means or maxima of bags of embeddings, without building the per-entry lookup.

    Args:
        num_embeddings (int): size of the table. embedding_dim (int): size of each vector.
        max_norm (float, optional), norm_type (float), scale_grad_by_freq (bool): as in
            ``Embedding``.
        mode (str): 'sum', 'mean' or 'max'. Default: 'mean'.
        sparse (bool): must be False.
        include_last_offset (bool): ``offsets`` ends with the input's length. Default: False.
        padding_idx (int, optional): entries equal to it are left out of their bag.
        device, dtype: where and in which dtype to create the table.

    Shape:
        ``forward(input, offsets=None, per_sample_weights=None)``: ``input`` is (B, L)
        fixed-size bags, or 1-D indices cut at ``offsets`` (B,); output (B, embedding_dim).

    Example::

        >>> bag = nn.EmbeddingBag(10, 3, mode="sum")
        >>> bag(ember.tensor([1, 2, 4, 5, 4, 3, 2, 9]), ember.tensor([0, 4])).shape
        ember.Size([2, 3])
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, device=None, dtype=None):
        super().__init__()
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max'. Received: "
                             f"mode={mode!r}")
        table = Embedding(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                          scale_grad_by_freq, sparse, _weight, False, device, dtype)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset
        self.padding_idx = table.padding_idx
        self.weight = table.weight

    def reset_parameters(self):
        """weight ~ N(0, 1); the padding row is zero."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with grad_mode.no_grad():
                self.weight._data[self.padding_idx] = 0
                self.weight._bump_version()

    def forward(self, input, offsets=None, per_sample_weights=None):
        try:
            return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                                   self.scale_grad_by_freq, self.mode, self.sparse,
                                   per_sample_weights, self.include_last_offset,
                                   self.padding_idx)
        except (errors.ShapeError, errors.DTypeError) as exc:
            shape = errors.shape_str(input.shape) if hasattr(input, "shape") else "?"
            raise type(exc)(f"{self._layer_label()} with input of shape {shape}: {exc}") \
                from None

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, mode="mean", sparse=False,
                        include_last_offset=False, padding_idx=None):
        """An EmbeddingBag whose table is ``embeddings`` (2-D); ``freeze`` (default True)
        keeps it from being trained."""
        if embeddings.ndim != 2:
            raise errors.ShapeError(
                f"EmbeddingBag.from_pretrained: embeddings must be 2-D, got "
                f"{errors.shape_str(embeddings.shape)}"
            )
        rows, cols = embeddings.shape
        bag = cls(rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                  embeddings, include_last_offset, padding_idx)
        bag.weight.requires_grad_(not freeze)
        return bag

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s
