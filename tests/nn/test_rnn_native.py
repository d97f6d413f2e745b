"""The LSTM's native time loops (ember/ops/_lstm_native.py, kernels in ember/backend/native):
float32 layers against PyTorch and against ember's NumPy loops, on padded and packed batches,
both directions, with and without initial states, and for every combination of what the
backward must produce. Each test also checks which loops ran."""

import os
import shutil

import numpy
import pytest
import torch

import ember
from ember import nn
from ember.nn.utils import rnn as e_rnn
from ember.ops import _lstm_native
from ember.ops import rnn as rnn_ops
from tests.nn.test_rnn import compare

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None,
                                reason="no C compiler: ember uses its NumPy loops")


@pytest.fixture
def calls(monkeypatch):
    """Count the native forward and backward loops that run."""
    seen = {"forward": 0, "backward": 0}
    for name in seen:
        original = getattr(_lstm_native, name)

        def spy(*args, _original=original, _name=name):
            seen[_name] += 1
            return _original(*args)

        monkeypatch.setattr(_lstm_native, name, spy)
    return seen


def twin32(**kwargs):
    torch.manual_seed(0)
    t_layer = torch.nn.LSTM(**kwargs)
    e_layer = nn.LSTM(**kwargs)
    e_layer.load_state_dict({k: ember.tensor(v.detach().numpy())
                             for k, v in t_layer.state_dict().items()})
    return e_layer, t_layer


CONFIGS = [
    {},
    {"num_layers": 2, "bidirectional": True},
    {"batch_first": True},
    {"bias": False},
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in
                                                                   c.items()) or "default")
@pytest.mark.parametrize("with_state", [False, True])
def test_float32_lstm_matches_torch(calls, config, with_state):
    e_layer, t_layer = twin32(input_size=5, hidden_size=16, **config)
    rng = numpy.random.default_rng(1)
    seq, batch = 7, 9
    shape = (batch, seq, 5) if config.get("batch_first") else (seq, batch, 5)
    x = (2 * rng.standard_normal(shape)).astype(numpy.float32)
    layers = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    states = None
    if with_state:
        states = [rng.standard_normal((layers, batch, 16)).astype(numpy.float32)
                  for _ in range(2)]
    compare(e_layer, t_layer, x, states, rtol=1e-4, atol=2e-5)
    assert calls["forward"] == calls["backward"] == layers


def test_packed_float32_lstm_matches_torch(calls):
    e_layer, t_layer = twin32(input_size=4, hidden_size=12, bidirectional=True)
    lengths = [3, 7, 1, 5, 7, 2]
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((7, 6, 4)).astype(numpy.float32)
    h0, c0 = (rng.standard_normal((2, 6, 12)).astype(numpy.float32) for _ in range(2))
    e_in = [ember.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    t_in = [torch.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    e_out, (e_h, e_c) = e_layer(e_rnn.pack_padded_sequence(e_in[0], lengths,
                                                           enforce_sorted=False),
                                (e_in[1], e_in[2]))
    t_out, (t_h, t_c) = t_layer(torch.nn.utils.rnn.pack_padded_sequence(
        t_in[0], lengths, enforce_sorted=False), (t_in[1], t_in[2]))
    e_pad, _ = e_rnn.pad_packed_sequence(e_out)
    t_pad, _ = torch.nn.utils.rnn.pad_packed_sequence(t_out)
    weights = [rng.standard_normal(tuple(t.shape)) for t in (t_pad, t_h, t_c)]
    for e, t, w in zip((e_pad, e_h, e_c), (t_pad, t_h, t_c), weights):
        numpy.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), 1e-4, 2e-5)
    sum((e * ember.tensor(w, dtype=ember.float32)).sum()
        for e, w in zip((e_pad, e_h, e_c), weights)).backward()
    sum((t * torch.tensor(w, dtype=torch.float32)).sum()
        for t, w in zip((t_pad, t_h, t_c), weights)).backward()
    for e, t in zip(e_in, t_in):
        numpy.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), 1e-4, 2e-5)
    for name, p in t_layer.named_parameters():
        numpy.testing.assert_allclose(getattr(e_layer, name).grad.numpy(), p.grad.numpy(),
                                      1e-4, 2e-5, err_msg=name)
    assert calls["forward"] == calls["backward"] == 2


def _run(layer, x, states, grad_x, grad_states, use, packed_lengths=None):
    """Outputs and gradients of one forward+backward; ``use`` picks what the loss reads."""
    e_x = ember.tensor(x, requires_grad=grad_x)
    e_states = [ember.tensor(s, requires_grad=grad_states) for s in states] if states else []
    inp = e_x
    if packed_lengths is not None:
        inp = e_rnn.pack_padded_sequence(e_x, packed_lengths, enforce_sorted=False)
    out, (h, c) = layer(inp, tuple(e_states)) if e_states else layer(inp)
    if packed_lengths is not None:
        out, _ = e_rnn.pad_packed_sequence(out)
    rng = numpy.random.default_rng(3)
    parts = {"out": out, "h": h, "c": c}
    loss = sum((parts[k] * ember.tensor(rng.standard_normal(tuple(parts[k].shape)),
                                        dtype=ember.float32)).sum() for k in use)
    loss.backward()
    grads = [t.grad for t in [e_x, *e_states]] + [p.grad for p in layer.parameters()]
    results = [out, h, c] + [g for g in grads if g is not None]
    layer.zero_grad()
    return [r.detach().numpy() for r in results]


@pytest.mark.parametrize("use", [("out",), ("h",), ("c",), ("out", "h", "c")])
@pytest.mark.parametrize("grad_x, grad_states", [(True, True), (False, True), (True, False),
                                                  (False, False)])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("hidden", [10, 32])  # 32: the kernels' own products (n % 32 == 0)
@pytest.mark.parametrize("parts", [1, 3])  # row ranges run side by side (3: more than workers)
def test_native_loops_match_numpy_loops(monkeypatch, use, grad_x, grad_states, packed, hidden,
                                        parts):
    monkeypatch.setattr(_lstm_native, "_parts", lambda batch: min(parts, batch))
    ember.manual_seed(4)
    layer = nn.LSTM(6, hidden, num_layers=2, bidirectional=True)
    rng = numpy.random.default_rng(5)
    x = (2 * rng.standard_normal((8, 11, 6))).astype(numpy.float32)
    states = [rng.standard_normal((4, 11, hidden)).astype(numpy.float32) for _ in range(2)]
    lengths = [8, 3, 5, 8, 1, 2, 7, 6, 4, 8, 2] if packed else None
    native = _run(layer, x, states, grad_x, grad_states, use, lengths)
    monkeypatch.setattr(_lstm_native, "kernels", lambda *args: None)
    reference = _run(layer, x, states, grad_x, grad_states, use, lengths)
    assert len(native) == len(reference)
    for a, b in zip(native, reference):
        numpy.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_numpy_loops_where_the_kernels_do_not_apply(calls):
    # float64 (every gradient check), and LSTM with a projection, keep the NumPy loops
    layer = nn.LSTM(3, 4).double()
    out, _ = layer(ember.tensor(numpy.ones((2, 1, 3))))
    out.sum().backward()
    layer = nn.LSTM(3, 5, proj_size=2)
    out, _ = layer(ember.tensor(numpy.ones((2, 1, 3), dtype=numpy.float32)))
    out.sum().backward()
    assert calls == {"forward": 0, "backward": 0}


def test_mixed_dtypes_keep_the_numpy_loops(calls):
    # the C loops read float32 memory: a float64 recurrent weight must not reach them
    rng = numpy.random.default_rng(6)
    xg = ember.tensor(rng.standard_normal((3, 2, 16)).astype(numpy.float32))
    w64 = rng.standard_normal((16, 4))
    mixed, _, _ = rnn_ops.recurrence(xg, None, None, ember.tensor(w64), None, None, "LSTM")
    assert calls == {"forward": 0, "backward": 0}
    same, _, _ = rnn_ops.recurrence(xg, None, None, ember.tensor(w64.astype(numpy.float32)),
                                    None, None, "LSTM")
    assert calls["forward"] == 1
    numpy.testing.assert_allclose(mixed.numpy(), same.numpy(), rtol=1e-5, atol=1e-6)


def _run_gru(layer, x, h0, grad_x, grad_h, use, packed_lengths=None):
    """_run for a GRU (one state): outputs and gradients of one forward+backward."""
    e_x = ember.tensor(x, requires_grad=grad_x)
    e_h = ember.tensor(h0, requires_grad=grad_h) if h0 is not None else None
    inp = e_x
    if packed_lengths is not None:
        inp = e_rnn.pack_padded_sequence(e_x, packed_lengths, enforce_sorted=False)
    out, h = layer(inp, e_h) if e_h is not None else layer(inp)
    if packed_lengths is not None:
        out, _ = e_rnn.pad_packed_sequence(out)
    rng = numpy.random.default_rng(3)
    parts = {"out": out, "h": h}
    loss = sum((parts[k] * ember.tensor(rng.standard_normal(tuple(parts[k].shape)),
                                        dtype=ember.float32)).sum() for k in use)
    loss.backward()
    grads = [t.grad for t in [e_x, e_h] if t is not None] + [p.grad for p in layer.parameters()]
    results = [out, h] + [g for g in grads if g is not None]
    layer.zero_grad()
    return [r.detach().numpy() for r in results]


@pytest.mark.parametrize("use", [("out",), ("h",), ("out", "h")])
@pytest.mark.parametrize("grad_x, grad_h", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("hidden", [10, 32])  # 32: 3H = 96, the kernels' own products
@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_native_gru_loops_match_numpy_loops(monkeypatch, use, grad_x, grad_h, packed, hidden,
                                            parts, bias):
    monkeypatch.setattr(_lstm_native, "_parts", lambda batch: min(parts, batch))
    seen = []
    for name in ("gru_forward", "gru_backward"):
        real = getattr(_lstm_native, name)
        monkeypatch.setattr(_lstm_native, name,
                            lambda *a, real=real, name=name: seen.append(name) or real(*a))
    ember.manual_seed(4)
    layer = nn.GRU(6, hidden, num_layers=2, bidirectional=True, bias=bias)
    rng = numpy.random.default_rng(5)
    x = (2 * rng.standard_normal((8, 11, 6))).astype(numpy.float32)
    h0 = rng.standard_normal((4, 11, hidden)).astype(numpy.float32) if grad_h else None
    lengths = [8, 3, 5, 8, 1, 2, 7, 6, 4, 8, 2] if packed else None
    native = _run_gru(layer, x, h0, grad_x, grad_h, use, lengths)
    assert seen.count("gru_forward") == 4 and seen.count("gru_backward") == 4
    monkeypatch.setattr(_lstm_native, "kernels", lambda *args: None)
    reference = _run_gru(layer, x, h0, grad_x, grad_h, use, lengths)
    assert len(native) == len(reference)
    for a, b in zip(native, reference):
        numpy.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_native_gru_matches_torch():
    """A float32 GRU on the native loops against PyTorch with copied weights."""
    ember.manual_seed(6)
    layer = nn.GRU(5, 32, batch_first=True)
    t_layer = torch.nn.GRU(5, 32, batch_first=True)
    with torch.no_grad():
        for (name, p), tp in zip(layer.named_parameters(), t_layer.parameters()):
            tp.copy_(torch.from_numpy(p.detach().numpy()))
    rng = numpy.random.default_rng(7)
    x = rng.standard_normal((4, 9, 5)).astype(numpy.float32)
    h0 = rng.standard_normal((1, 4, 32)).astype(numpy.float32)
    g = rng.standard_normal((4, 9, 32)).astype(numpy.float32)
    e_x, e_h = ember.tensor(x, requires_grad=True), ember.tensor(h0, requires_grad=True)
    out, h = layer(e_x, e_h)
    (out * ember.tensor(g)).sum().backward()
    t_x, t_h = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    t_out, t_hn = t_layer(t_x, t_h)
    (t_out * torch.tensor(g)).sum().backward()
    pairs = [(out.detach(), t_out.detach()), (h.detach(), t_hn.detach()), (e_x.grad, t_x.grad),
             (e_h.grad, t_h.grad)] + [(p.grad, tp.grad) for p, tp in
                                      zip(layer.parameters(), t_layer.parameters())]
    for mine, expected in pairs:
        numpy.testing.assert_allclose(mine.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
