"""nn.utils.rnn (PackedSequence, pack_padded_sequence, pad_packed_sequence, pack_sequence,
pad_sequence) against PyTorch, and the variable-length property of the recurrent layers: a
packed batch gives each sequence the outputs, h_n and gradients it gets when run alone."""

import numpy
import pytest
import torch
import torch.nn.utils.rnn as t_rnn

import ember
from ember import errors, nn
from ember.nn.utils import rnn as e_rnn
from tests.nn.test_rnn import twin

LENGTHS = [3, 5, 1, 4]  # unsorted on purpose


def _np(t):
    return t.detach().numpy()


def _padded(rng, lengths=LENGTHS, features=3, batch_first=False, garbage=True):
    """A padded batch whose padding holds large garbage, which must never matter."""
    steps, batch = max(lengths), len(lengths)
    x = rng.standard_normal((steps, batch, features))
    for b, n in enumerate(lengths):
        x[n:, b] = 1e3 if garbage else 0.0
    return x.transpose(1, 0, 2).copy() if batch_first else x


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_pack_and_pad_match_torch(batch_first, enforce_sorted):
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    x = _padded(numpy.random.default_rng(0), lengths, batch_first=batch_first)
    e_x, t_x = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    e_p = e_rnn.pack_padded_sequence(e_x, lengths, batch_first, enforce_sorted)
    t_p = t_rnn.pack_padded_sequence(t_x, lengths, batch_first, enforce_sorted)
    numpy.testing.assert_array_equal(_np(e_p.data), _np(t_p.data))
    assert e_p.batch_sizes.tolist() == t_p.batch_sizes.tolist()
    for e, t in [(e_p.sorted_indices, t_p.sorted_indices),
                 (e_p.unsorted_indices, t_p.unsorted_indices)]:
        assert (e is None and t is None) or e.tolist() == t.tolist()
    e_pad, e_len = e_rnn.pad_packed_sequence(e_p, batch_first, padding_value=-2.0,
                                             total_length=6)
    t_pad, t_len = t_rnn.pad_packed_sequence(t_p, batch_first, padding_value=-2.0,
                                             total_length=6)
    numpy.testing.assert_array_equal(_np(e_pad), _np(t_pad))
    assert e_len.tolist() == t_len.tolist() == list(lengths)
    w = numpy.random.default_rng(1).standard_normal(tuple(t_pad.shape))
    (e_pad * ember.tensor(w)).sum().backward()
    (t_pad * torch.tensor(w)).sum().backward()
    numpy.testing.assert_array_equal(_np(e_x.grad), _np(t_x.grad))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, padding_side):
    rng = numpy.random.default_rng(2)
    seqs = [rng.standard_normal((n, 2)) for n in LENGTHS]
    e_seqs = [ember.tensor(s, requires_grad=True) for s in seqs]
    t_seqs = [torch.tensor(s, requires_grad=True) for s in seqs]
    e_out = e_rnn.pad_sequence(e_seqs, batch_first, 7.0, padding_side)
    t_out = t_rnn.pad_sequence(t_seqs, batch_first, 7.0, padding_side)
    numpy.testing.assert_array_equal(_np(e_out), _np(t_out))
    w = rng.standard_normal(tuple(t_out.shape))
    (e_out * ember.tensor(w)).sum().backward()
    (t_out * torch.tensor(w)).sum().backward()
    for e, t in zip(e_seqs, t_seqs):
        numpy.testing.assert_array_equal(_np(e.grad), _np(t.grad))


def test_pack_sequence_and_unpack_match_torch():
    rng = numpy.random.default_rng(3)
    seqs = [rng.standard_normal((n, 2)) for n in LENGTHS]
    e_p = e_rnn.pack_sequence([ember.tensor(s) for s in seqs], enforce_sorted=False)
    t_p = t_rnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    numpy.testing.assert_array_equal(_np(e_p.data), _np(t_p.data))
    assert e_p.batch_sizes.tolist() == t_p.batch_sizes.tolist()
    for e, s in zip(e_rnn.unpack_sequence(e_p), seqs):
        numpy.testing.assert_array_equal(_np(e), s)
    assert isinstance(e_p, tuple) and e_p._fields == t_p._fields


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_packed_batch_equals_each_sequence_alone_and_torch(kind):
    e_layer, t_layer = twin(kind, 3, 4, num_layers=2, bidirectional=True)
    rng = numpy.random.default_rng(4)
    x = _padded(rng)
    # ember, packed batch
    e_x = ember.tensor(x, requires_grad=True)
    e_packed = e_rnn.pack_padded_sequence(e_x, LENGTHS, enforce_sorted=False)
    e_out, e_state = e_layer(e_packed)
    assert isinstance(e_out, e_rnn.PackedSequence)
    e_pad, _ = e_rnn.pad_packed_sequence(e_out)
    e_h = e_state[0] if kind == "LSTM" else e_state
    # torch, packed batch
    t_x = torch.tensor(x, requires_grad=True)
    t_out, t_state = t_layer(t_rnn.pack_padded_sequence(t_x, LENGTHS, enforce_sorted=False))
    t_pad, _ = t_rnn.pad_packed_sequence(t_out)
    t_h = t_state[0] if kind == "LSTM" else t_state
    numpy.testing.assert_allclose(_np(e_pad), _np(t_pad), 1e-7, 1e-9)
    numpy.testing.assert_allclose(_np(e_h), _np(t_h), 1e-7, 1e-9)
    if kind == "LSTM":
        numpy.testing.assert_allclose(_np(e_state[1]), _np(t_state[1]), 1e-7, 1e-9)
    # gradients of one loss, ember vs torch
    w_out = rng.standard_normal(tuple(t_pad.shape))
    w_h = rng.standard_normal(tuple(t_h.shape))
    ((e_pad * ember.tensor(w_out)).sum() + (e_h * ember.tensor(w_h)).sum()).backward()
    ((t_pad * torch.tensor(w_out)).sum() + (t_h * torch.tensor(w_h)).sum()).backward()
    numpy.testing.assert_allclose(_np(e_x.grad), _np(t_x.grad), 1e-7, 1e-9)
    for name, p in t_layer.named_parameters():
        numpy.testing.assert_allclose(_np(getattr(e_layer, name).grad), _np(p.grad), 1e-7,
                                      1e-9, err_msg=name)
    # ember, each sequence alone: same outputs, h_n, and the per-sequence gradient terms add up
    batch_grads = {name: _np(p.grad) for name, p in e_layer.named_parameters()}
    e_layer.zero_grad()
    total = {name: 0.0 for name in batch_grads}
    for b, n in enumerate(LENGTHS):
        xb = ember.tensor(x[:n, b:b + 1], requires_grad=True)
        out_b, state_b = e_layer(xb)
        h_b = state_b[0] if kind == "LSTM" else state_b
        numpy.testing.assert_allclose(_np(out_b)[:, 0], _np(e_pad)[:n, b], 1e-10, 1e-12)
        numpy.testing.assert_allclose(_np(h_b)[:, 0], _np(e_h)[:, b], 1e-10, 1e-12)
        loss = (out_b * ember.tensor(w_out[:n, b:b + 1])).sum() + \
            (h_b * ember.tensor(w_h[:, b:b + 1])).sum()
        loss.backward()
        numpy.testing.assert_allclose(_np(xb.grad), _np(e_x.grad)[:n, b:b + 1], 1e-10, 1e-12)
        for name, p in e_layer.named_parameters():
            total[name] = total[name] + _np(p.grad)
        e_layer.zero_grad()
    for name in batch_grads:
        numpy.testing.assert_allclose(total[name], batch_grads[name], 1e-9, 1e-11, err_msg=name)
    # padding positions got no gradient
    for b, n in enumerate(LENGTHS):
        assert not _np(e_x.grad)[n:, b].any()


def test_packed_lstm_with_initial_state_in_original_order_matches_torch():
    e_layer, t_layer = twin("LSTM", 3, 4, bidirectional=True)
    rng = numpy.random.default_rng(5)
    x = _padded(rng, batch_first=True)
    h0, c0 = rng.standard_normal((2, 4, 4)), rng.standard_normal((2, 4, 4))
    e_in = [ember.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    t_in = [torch.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    e_out, (e_h, e_c) = e_layer(e_rnn.pack_padded_sequence(e_in[0], LENGTHS, True, False),
                                (e_in[1], e_in[2]))
    t_out, (t_h, t_c) = t_layer(t_rnn.pack_padded_sequence(t_in[0], LENGTHS, True, False),
                                (t_in[1], t_in[2]))
    e_loss = (e_out.data * e_out.data).sum() + (e_h * e_c).sum()
    t_loss = (t_out.data * t_out.data).sum() + (t_h * t_c).sum()
    numpy.testing.assert_allclose(e_loss.item(), t_loss.item(), 1e-10)
    e_loss.backward()
    t_loss.backward()
    for e, t in zip(e_in, t_in):
        numpy.testing.assert_allclose(_np(e.grad), _np(t.grad), 1e-7, 1e-9)


def test_packing_errors():
    x = ember.zeros(5, 3, 2)
    with pytest.raises(ValueError, match="enforce_sorted=False"):
        e_rnn.pack_padded_sequence(x, [2, 5, 1])
    with pytest.raises(errors.ShapeError, match="expected 3 lengths"):
        e_rnn.pack_padded_sequence(x, [5, 2])
    with pytest.raises(ValueError, match="between 1 and"):
        e_rnn.pack_padded_sequence(x, [6, 2, 1])
    packed = e_rnn.pack_padded_sequence(x, [5, 2, 1])
    with pytest.raises(ValueError, match="total_length=3"):
        e_rnn.pad_packed_sequence(packed, total_length=3)
    with pytest.raises(errors.ShapeError, match=r"packed data of shape \(sum\(lengths\), 4\)"):
        nn.GRU(4, 3)(packed)
    with pytest.raises(errors.ShapeError, match="trailing dims"):
        e_rnn.pad_sequence([ember.zeros(2, 3), ember.zeros(2, 4)])


def test_packed_sequence_is_reachable_like_torch():
    assert nn.utils.rnn.PackedSequence is e_rnn.PackedSequence
    p = e_rnn.pack_sequence([ember.ones(2, 1), ember.ones(1, 1)])
    assert p.double().data.dtype == ember.float64
