"""Variable-length batches for the recurrent layers, PyTorch's ``torch.nn.utils.rnn``.

A ``PackedSequence`` stores a batch of sequences of different lengths without padding: time
step 0 of every sequence, then step 1 of every sequence still running, and so on, with the
sequences sorted by decreasing length. ``batch_sizes[t]`` says how many sequences are running
at step ``t``. ``nn.RNN``/``nn.LSTM``/``nn.GRU`` take one and return one; padded steps never
enter the computation.

Every conversion here is one gather (``index_select``) on the flattened tensor, so it is
differentiable and costs one op, whatever the batch.

Example::

    >>> x = ember.randn(5, 3, 8)                       # (T, B, features), padded
    >>> packed = nn.utils.rnn.pack_padded_sequence(x, [5, 2, 3], enforce_sorted=False)
    >>> out, h_n = nn.GRU(8, 16)(packed)
    >>> padded, lengths = nn.utils.rnn.pad_packed_sequence(out)
    >>> padded.shape, lengths.tolist()
    (ember.Size([5, 3, 16]), [5, 2, 3])
"""

import collections

import numpy

from ember import creation, errors
from ember.ops import index, join, shape
from ember.tensor import Tensor

__all__ = [
    "PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence",
    "pad_sequence", "unpad_sequence", "unpack_sequence", "invert_permutation",
]

_Fields = collections.namedtuple(
    "PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"]
)


class PackedSequence(_Fields):
    """A batch of variable-length sequences, packed (build it with ``pack_padded_sequence``
    or ``pack_sequence``, not directly).

    Attributes:
        data (Tensor): ``(sum(lengths), *)``, the steps of all sequences, time-major.
        batch_sizes (Tensor): int64 ``(max_len,)``, sequences running at each step.
        sorted_indices (Tensor or None): int64 ``(B,)``, the original index of each packed
            sequence (None when the input was already sorted).
        unsorted_indices (Tensor or None): its inverse, which restores the original order.
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise TypeError(
                "PackedSequence needs batch_sizes; build one with "
                "nn.utils.rnn.pack_padded_sequence or pack_sequence"
            )
        batch_sizes = _int64(batch_sizes)
        sorted_indices = _int64(sorted_indices) if sorted_indices is not None else None
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        elif unsorted_indices is not None:
            unsorted_indices = _int64(unsorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _with_data(self, data):
        return type(self)(data, self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def to(self, *args, **kwargs):
        """A PackedSequence whose ``data`` went through ``Tensor.to(*args, **kwargs)``."""
        data = self.data.to(*args, **kwargs)
        return self if data is self.data else self._with_data(data)

    def float(self):
        return self._with_data(self.data.float())

    def double(self):
        return self._with_data(self.data.double())

    def cpu(self):
        return self._with_data(self.data.cpu())

    def cuda(self, device=None):
        return self._with_data(self.data.cuda(device))

    @property
    def is_cuda(self):
        return self.data.is_cuda

    def is_pinned(self):
        return False


def _int64(values):
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    return creation.tensor(numpy.asarray(values, dtype=numpy.int64).reshape(-1))


def _host_ints(values):
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    return [int(v) for v in numpy.asarray(values).reshape(-1)]


def invert_permutation(permutation):
    """The permutation that undoes ``permutation`` (None stays None)."""
    if permutation is None:
        return None
    perm = numpy.asarray(_host_ints(permutation), dtype=numpy.int64)
    inverse = numpy.empty_like(perm)
    inverse[perm] = numpy.arange(perm.size, dtype=numpy.int64)
    return creation.tensor(inverse)


def _batch_sizes(lengths):
    """How many of the (sorted, decreasing) lengths exceed each step."""
    lengths = numpy.asarray(lengths, dtype=numpy.int64)
    steps = numpy.arange(int(lengths.max()) if lengths.size else 0)
    return (lengths[None, :] > steps[:, None]).sum(1).astype(numpy.int64)


def _device_index(like, positions):
    return creation.tensor(numpy.asarray(positions, dtype=numpy.int64), device=like.device)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch of variable-length sequences.

    Args:
        input (Tensor): ``(T, B, *)``, or ``(B, T, *)`` with ``batch_first=True``.
        lengths (Tensor or list of int): the length of each sequence (on the CPU), all >= 1.
        batch_first (bool): the input is ``(B, T, *)``. Default: False.
        enforce_sorted (bool): require ``lengths`` sorted in decreasing order; with False the
            batch is sorted here and the order is restored by ``pad_packed_sequence`` and by
            the ``h_n`` of the recurrent layers. Default: True.

    Returns:
        a ``PackedSequence``.

    Example::

        >>> p = pack_padded_sequence(ember.zeros(4, 2, 3), [4, 2])
        >>> p.data.shape, p.batch_sizes.tolist()
        (ember.Size([6, 3]), [2, 2, 1, 1])
    """
    lengths = _host_ints(lengths)
    if input.ndim < 2:
        raise errors.ShapeError(
            f"pack_padded_sequence: expected input of shape (T, B, *) (or (B, T, *) with "
            f"batch_first=True), got {errors.shape_str(input.shape)}"
        )
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    if len(lengths) != batch:
        raise errors.ShapeError(
            f"pack_padded_sequence: expected {batch} lengths (one per sequence of the input "
            f"{errors.shape_str(input.shape)}), got {len(lengths)}"
        )
    if lengths and (min(lengths) < 1 or max(lengths) > steps):
        raise ValueError(
            f"pack_padded_sequence: every length must be between 1 and the padded length "
            f"{steps}; got lengths {lengths}"
        )
    if enforce_sorted:
        if any(a < b for a, b in zip(lengths, lengths[1:])):
            raise ValueError(
                f"pack_padded_sequence: lengths {lengths} are not sorted in decreasing order; "
                "sort the batch, or pass enforce_sorted=False"
            )
        order = list(range(batch))
        sorted_indices = None
    else:
        order = sorted(range(batch), key=lambda b: -lengths[b])  # stable, like torch
        sorted_indices = creation.tensor(numpy.asarray(order, dtype=numpy.int64))
    sizes = _batch_sizes([lengths[b] for b in order])
    # Row (t, order[k]) of the flattened (T * B, *) input for each packed position.
    positions = []
    for t, size in enumerate(sizes):
        if batch_first:
            positions.extend(order[k] * steps + t for k in range(size))
        else:
            positions.extend(t * batch + order[k] for k in range(size))
    flat = shape.reshape(input, (steps * batch,) + tuple(input.shape[2:]))
    data = index.index_select(flat, 0, _device_index(input, positions))
    return PackedSequence(data, sizes, sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo ``pack_padded_sequence``: a padded batch and the length of each sequence.

    Args:
        sequence (PackedSequence): the batch to pad.
        batch_first (bool): return ``(B, T, *)`` instead of ``(T, B, *)``. Default: False.
        padding_value (float): the value of padded elements. Default: 0.0.
        total_length (int, optional): pad to this length (at least the longest sequence),
            e.g. to match the input of a DataParallel model.

    Returns:
        ``(padded, lengths)``: the padded Tensor, and an int64 Tensor of lengths in the
        original batch order.
    """
    data, sizes = sequence.data, _host_ints(sequence.batch_sizes)
    steps = len(sizes)
    batch = sizes[0] if sizes else 0
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                f"pad_packed_sequence: total_length={total_length} is smaller than the longest "
                f"sequence ({steps} steps)"
            )
        steps = total_length
    lengths = numpy.zeros(batch, dtype=numpy.int64)
    for size in sizes:
        lengths[:size] += 1
    unsorted = _host_ints(sequence.unsorted_indices) if sequence.unsorted_indices is not None \
        else list(range(batch))
    offsets = numpy.concatenate([[0], numpy.cumsum(sizes)]).astype(numpy.int64)
    pad_row = int(data.shape[0])  # the position of the padding row appended below
    positions = numpy.full((steps, batch), pad_row, dtype=numpy.int64)
    for b_out, k in enumerate(unsorted):  # packed sequence k goes to column b_out
        n = int(lengths[k])
        positions[:n, b_out] = offsets[:n] + k
    if batch_first:
        positions = positions.T
    feature = tuple(data.shape[1:])
    pad = creation.full((1,) + feature, padding_value, dtype=data.dtype, device=data.device)
    table = join.cat([data, pad], 0)
    out = index.index_select(table, 0, _device_index(data, positions.reshape(-1)))
    out = shape.reshape(out, positions.shape + feature)
    return out, creation.tensor(lengths[unsorted])


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack sequences of different lengths into one padded Tensor.

    Args:
        sequences (list of Tensor): each ``(L_i, *)`` with the same trailing dims.
        batch_first (bool): return ``(B, T, *)`` instead of ``(T, B, *)``. Default: False.
        padding_value (float): the value of padded elements. Default: 0.0.
        padding_side (str): pad on the "right" (default) or the "left".

    Returns:
        ``(T, B, *)`` (or ``(B, T, *)``) with ``T`` the longest length.

    Example::

        >>> pad_sequence([ember.ones(3, 2), ember.ones(1, 2)]).shape
        ember.Size([3, 2, 2])
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got "
                         f"{padding_side!r}")
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence: received an empty list of sequences")
    feature = tuple(sequences[0].shape[1:])
    for i, s in enumerate(sequences):
        if s.ndim == 0 or tuple(s.shape[1:]) != feature:
            raise errors.ShapeError(
                f"pad_sequence: every sequence must be (L, *) with the trailing dims of the "
                f"first, {feature}; sequence {i} has shape {errors.shape_str(s.shape)}"
            )
    lengths = [int(s.shape[0]) for s in sequences]
    steps, batch = max(lengths), len(sequences)
    first = sequences[0]
    pad = creation.full((1,) + feature, padding_value, dtype=first.dtype, device=first.device)
    table = join.cat(sequences + [pad], 0)
    pad_row = sum(lengths)
    positions = numpy.full((steps, batch), pad_row, dtype=numpy.int64)
    start = 0
    for b, n in enumerate(lengths):
        lo = 0 if padding_side == "right" else steps - n
        positions[lo:lo + n, b] = numpy.arange(start, start + n)
        start += n
    if batch_first:
        positions = positions.T
    out = index.index_select(table, 0, _device_index(first, positions.reshape(-1)))
    return shape.reshape(out, positions.shape + feature)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """Split a padded batch back into a list of sequences of the given lengths."""
    lengths = _host_ints(lengths)
    x = padded_sequences if batch_first else shape.transpose(padded_sequences, 0, 1)
    return [x[b, :n] for b, n in enumerate(lengths)]


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of sequences ``(L_i, *)`` of different lengths (see
    ``pack_padded_sequence``; with ``enforce_sorted=True`` they must come longest first).

    Example::

        >>> p = pack_sequence([ember.ones(3), ember.ones(2), ember.ones(1)])
        >>> p.batch_sizes.tolist()
        [3, 2, 1]
    """
    lengths = [int(s.shape[0]) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths,
                                enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """Unpack a PackedSequence into the list of its sequences, in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
