"""RNN, LSTM, GRU and their cells (ember/nn/layers/rnn.py, ember/ops/rnn.py) against PyTorch
with copied weights: outputs, final states, and the gradients of input, initial states and
every parameter; finite-difference checks of the fused recurrence (first and second order)."""

import numpy
import pytest
import torch

import ember
from ember import errors, nn
from ember.autograd import gradcheck, gradgradcheck
from ember.ops import rnn as rnn_ops

RTOL, ATOL = 1e-7, 1e-9  # float64 throughout


def twin(kind, *args, **kwargs):
    """The same layer in torch and ember (float64), ember's weights loaded from torch's
    state_dict."""
    torch.manual_seed(0)
    t_layer = getattr(torch.nn, kind)(*args, **kwargs).double()
    e_layer = getattr(nn, kind)(*args, **kwargs).double()
    e_layer.load_state_dict({k: ember.tensor(v.detach().numpy())
                             for k, v in t_layer.state_dict().items()})
    return e_layer, t_layer


def _flat(out):
    """(output, h_n) or (output, (h_n, c_n)) -> list of tensors."""
    if isinstance(out, tuple):
        items = []
        for o in out:
            items.extend(_flat(o))
        return items
    return [out]


def _np(t):
    return t.detach().numpy()


def compare(e_layer, t_layer, x, states=None, rtol=RTOL, atol=ATOL):
    """Forward results and all gradients of a random weighting of the results agree."""
    e_x = ember.tensor(x, requires_grad=True)
    t_x = torch.tensor(x, requires_grad=True)
    e_args, t_args = [e_x], [t_x]
    e_states, t_states = [], []
    if states is not None:
        e_states = [ember.tensor(s, requires_grad=True) for s in states]
        t_states = [torch.tensor(s, requires_grad=True) for s in states]
        pack = tuple if len(states) == 2 else (lambda s: s[0])
        e_args.append(pack(e_states))
        t_args.append(pack(t_states))
    e_out, t_out = _flat(e_layer(*e_args)), _flat(t_layer(*t_args))
    assert len(e_out) == len(t_out)
    rng = numpy.random.default_rng(5)
    weights = []
    for e, t in zip(e_out, t_out):
        assert tuple(e.shape) == tuple(t.shape)
        numpy.testing.assert_allclose(_np(e), _np(t), rtol, atol)
        weights.append(rng.standard_normal(tuple(t.shape)))
    e_loss = sum((o * ember.tensor(w)).sum() for o, w in zip(e_out, weights))
    t_loss = sum((o * torch.tensor(w)).sum() for o, w in zip(t_out, weights))
    e_loss.backward()
    t_loss.backward()
    for e, t in zip([e_x, *e_states], [t_x, *t_states]):
        numpy.testing.assert_allclose(_np(e.grad), _np(t.grad), rtol, atol)
    for name, p in t_layer.named_parameters():
        numpy.testing.assert_allclose(_np(getattr(e_layer, name).grad), _np(p.grad), rtol, atol,
                                      err_msg=name)


CONFIGS = [
    {},
    {"num_layers": 2},
    {"bidirectional": True},
    {"num_layers": 2, "bidirectional": True},
    {"batch_first": True},
    {"bias": False},
    {"num_layers": 2, "dropout": 0.5},  # eval mode: no dropout
]


def _states(kind, layers, batch, hidden, proj=0, rng=None):
    h_size = proj or hidden
    lead = (layers,) if batch is None else (layers, batch)
    h0 = rng.standard_normal(lead + (h_size,))
    if kind == "LSTM":
        return [h0, rng.standard_normal(lead + (hidden,))]
    return [h0]


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in
                                                                   c.items()) or "default")
@pytest.mark.parametrize("with_state", [False, True])
def test_layer_matches_torch(kind, config, with_state):
    e_layer, t_layer = twin(kind, 3, 4, **config)
    e_layer.eval()
    t_layer.eval()
    rng = numpy.random.default_rng(0)
    seq, batch = 5, 2
    shape = (batch, seq, 3) if config.get("batch_first") else (seq, batch, 3)
    directions = 2 if config.get("bidirectional") else 1
    layers = config.get("num_layers", 1) * directions
    states = _states(kind, layers, batch, 4, rng=rng) if with_state else None
    compare(e_layer, t_layer, rng.standard_normal(shape), states)


def test_rnn_relu_matches_torch():
    e_layer, t_layer = twin("RNN", 3, 4, num_layers=2, nonlinearity="relu", bidirectional=True)
    rng = numpy.random.default_rng(1)
    compare(e_layer, t_layer, rng.standard_normal((6, 3, 3)), [rng.standard_normal((4, 3, 4))])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_proj_size_matches_torch(bidirectional):
    e_layer, t_layer = twin("LSTM", 3, 5, num_layers=2, proj_size=2,
                            bidirectional=bidirectional)
    rng = numpy.random.default_rng(2)
    d = 2 if bidirectional else 1
    states = [rng.standard_normal((2 * d, 3, 2)), rng.standard_normal((2 * d, 3, 5))]
    compare(e_layer, t_layer, rng.standard_normal((4, 3, 3)), states)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_unbatched_input_matches_torch(kind):
    e_layer, t_layer = twin(kind, 3, 4, num_layers=2, bidirectional=True)
    rng = numpy.random.default_rng(3)
    compare(e_layer, t_layer, rng.standard_normal((5, 3)),
            _states(kind, 4, None, 4, rng=rng))


def test_float32_layer_matches_torch():
    torch.manual_seed(0)
    t_layer = torch.nn.LSTM(3, 4, num_layers=2)
    e_layer = nn.LSTM(3, 4, num_layers=2)
    e_layer.load_state_dict({k: ember.tensor(v.detach().numpy())
                             for k, v in t_layer.state_dict().items()})
    x = numpy.random.default_rng(4).standard_normal((6, 2, 3)).astype(numpy.float32)
    compare(e_layer, t_layer, x, rtol=1e-4, atol=1e-5)


def test_inter_layer_dropout_only_between_layers():
    # dropout=1 zeroes the input of layer 2 in training and is deterministic, so torch and
    # ember must agree exactly; the output itself is not dropped.
    e_layer, t_layer = twin("LSTM", 3, 4, num_layers=2, dropout=1.0)
    x = numpy.random.default_rng(6).standard_normal((5, 2, 3))
    compare(e_layer, t_layer, x)
    out, _ = e_layer(ember.tensor(x))
    assert numpy.abs(_np(out)).min() > 0


def test_dropout_active_in_training_only():
    layer = nn.GRU(3, 8, num_layers=2, dropout=0.5).double()
    x = ember.tensor(numpy.random.default_rng(7).standard_normal((5, 2, 3)))
    train_out = _np(layer(x)[0])
    layer.eval()
    eval_a, eval_b = _np(layer(x)[0]), _np(layer(x)[0])
    numpy.testing.assert_array_equal(eval_a, eval_b)
    assert not numpy.allclose(train_out, eval_a)


# ---- the fused recurrence: finite differences, composed reference, double backward --------------


def _recurrence_args(mode, proj, packed, rng):
    gates, hidden = rnn_ops.GATES[mode], 3
    state = proj or hidden
    sizes = (3, 3, 2, 1) if packed else None
    xg_shape = (sum(sizes), gates * hidden) if packed else (4, 3, gates * hidden)

    def t(*shape, scale=1.0):
        return ember.tensor(rng.standard_normal(shape) * scale, requires_grad=True)

    args = [t(*xg_shape), t(3, state), t(3, hidden) if mode == "LSTM" else None,
            t(gates * hidden, state, scale=0.5), t(gates * hidden),
            t(state, hidden) if proj else None]
    return args, sizes


def _bind(args, mode, reverse, sizes, fn=rnn_ops.recurrence):
    present = [i for i, a in enumerate(args) if a is not None]

    def run(*xs):
        full = list(args)
        for i, x in zip(present, xs):
            full[i] = x
        return fn(*full, mode, reverse, sizes)

    return run, [args[i] for i in present]


MODES = [("LSTM", 0), ("LSTM", 2), ("GRU", 0), ("RNN_TANH", 0), ("RNN_RELU", 0)]


@pytest.mark.parametrize("mode,proj", MODES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_recurrence_gradcheck_and_composed(mode, proj, reverse, packed):
    args, sizes = _recurrence_args(mode, proj, packed, numpy.random.default_rng(8))
    fused, inputs = _bind(args, mode, reverse, sizes)
    reference, _ = _bind(args, mode, reverse, sizes, rnn_ops.composed)
    for a, b in zip(fused(*inputs), reference(*inputs)):
        numpy.testing.assert_allclose(_np(a), _np(b), 1e-12, 1e-12)
    assert gradcheck(fused, inputs)


# a cell state (c0) exists only for the LSTM
STATE_CASES = [(mode, proj, states) for mode, proj in MODES
               for states in ("none", "h0", "c0", "both-no-grad")
               if states != "c0" or mode == "LSTM"]


@pytest.mark.parametrize("mode,proj,states", STATE_CASES)
@pytest.mark.parametrize("packed", [False, True])
def test_recurrence_optional_initial_states(mode, proj, states, packed):
    """The kernels skip the first step's product for a zero initial state and the last step's
    state gradients nobody asked for: gradients must still match the composed reference."""
    args, sizes = _recurrence_args(mode, proj, packed, numpy.random.default_rng(10))
    if states in ("none", "c0"):
        args[1] = None
    if states in ("none", "h0") or mode != "LSTM":
        args[2] = None
    if states == "both-no-grad":
        args[1] = args[1].detach()
        args[2] = args[2].detach() if args[2] is not None else None
    for reverse in (False, True):
        fused, inputs = _bind(args, mode, reverse, sizes)
        reference, _ = _bind(args, mode, reverse, sizes, rnn_ops.composed)
        wrt = [x for x in inputs if x.requires_grad]
        outs = [fused(*inputs), reference(*inputs)]
        for a, b in zip(*outs):
            numpy.testing.assert_allclose(_np(a), _np(b), 1e-12, 1e-12)
        weights = [ember.tensor(numpy.random.default_rng(11).standard_normal(tuple(o.shape)))
                   for o in outs[0]]
        got, want = (ember.autograd.grad(list(o), wrt, weights) for o in outs)
        for a, b in zip(got, want):
            numpy.testing.assert_allclose(_np(a), _np(b), 1e-10, 1e-12)
    if states == "none":
        assert gradcheck(fused, inputs)


@pytest.mark.parametrize("packed", [False, True])
def test_lstm_backward_over_several_factor_blocks_matches_torch(packed):
    """The backward's factor passes run in row blocks of ``_FACTOR_ROWS``: a sequence of 960
    rows (packed: fewer, the last block partial) must match torch everywhere."""
    rng = numpy.random.default_rng(12)
    e_layer, t_layer = twin("LSTM", 6, 8, bidirectional=True)
    x = rng.standard_normal((40, 24, 6))
    lengths = sorted(rng.integers(20, 41, size=24).tolist(), reverse=True)
    lengths[0] = 40
    assert 24 * 40 > 3 * rnn_ops._FACTOR_ROWS
    ex = ember.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    if packed:
        e_in = nn.utils.rnn.pack_padded_sequence(ex, lengths)
        t_in = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths)
    else:
        e_in, t_in = ex, tx
    e_out, (e_h, e_c) = e_layer(e_in)
    t_out, (t_h, t_c) = t_layer(t_in)
    e_out, t_out = (e_out.data, t_out.data) if packed else (e_out, t_out)
    (e_out.sum() + (e_h * e_h).sum() + e_c.sum()).backward()
    (t_out.sum() + (t_h * t_h).sum() + t_c.sum()).backward()
    numpy.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), 1e-9, 1e-11)
    for (name, p), q in zip(e_layer.named_parameters(), t_layer.parameters()):
        numpy.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), 1e-9, 1e-11, err_msg=name)


FINAL_STATE_CASES = [("LSTM", {}), ("LSTM", {"bidirectional": True, "batch_first": True}),
                     ("LSTM", {"proj_size": 3}), ("LSTM", {"packed": True}),
                     ("GRU", {"packed": True}), ("RNN", {"bidirectional": True})]


@pytest.mark.parametrize("kind,config", FINAL_STATE_CASES,
                         ids=lambda c: c if isinstance(c, str) else ",".join(c) or "plain")
def test_gradient_through_final_states_only_matches_torch(kind, config):
    """W4 uses only ``h_n``: the engine then passes zeros for ``output`` and the backward loops
    skip adding them (ops/rnn.py); the gradients must still match torch's."""
    config = dict(config)
    packed = config.pop("packed", False)
    e_layer, t_layer = twin(kind, 3, 5, **config)
    rng = numpy.random.default_rng(13)
    x = rng.standard_normal((4, 6, 3) if config.get("batch_first") else (6, 4, 3))
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    e_in, t_in = ex, tx
    if packed:
        e_in = nn.utils.rnn.pack_padded_sequence(ex, [6, 5, 3, 2])
        t_in = torch.nn.utils.rnn.pack_padded_sequence(tx, [6, 5, 3, 2])
    w = rng.standard_normal((4, 5))
    e_h, t_h = e_layer(e_in)[1], t_layer(t_in)[1]
    if kind == "LSTM":
        e_h, t_h = e_h[0], t_h[0]
    (e_h[-1] * ember.tensor(w[:, :e_h.shape[-1]])).sum().backward()
    (t_h[-1] * torch.tensor(w[:, :t_h.shape[-1]])).sum().backward()
    numpy.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), RTOL, ATOL)
    for (name, p), q in zip(e_layer.named_parameters(), t_layer.parameters()):
        numpy.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), RTOL, ATOL, err_msg=name)


@pytest.mark.parametrize("mode,proj", [("LSTM", 0), ("GRU", 0), ("LSTM", 2), ("RNN_TANH", 0)])
@pytest.mark.parametrize("packed", [False, True])
def test_recurrence_double_backward(mode, proj, packed):
    args, sizes = _recurrence_args(mode, proj, packed, numpy.random.default_rng(9))
    fused, inputs = _bind(args, mode, True, sizes)
    assert gradgradcheck(fused, inputs)


def test_layer_double_backward_gradient_penalty_matches_torch():
    e_layer, t_layer = twin("GRU", 2, 3)
    x = numpy.random.default_rng(10).standard_normal((3, 2, 2))
    e_x, t_x = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (e_g,) = ember.autograd.grad(e_layer(e_x)[0].sum(), e_x, create_graph=True)
    (t_g,) = torch.autograd.grad(t_layer(t_x)[0].sum(), t_x, create_graph=True)
    (e_g * e_g).sum().backward()
    (t_g * t_g).sum().backward()
    numpy.testing.assert_allclose(_np(e_x.grad), _np(t_x.grad), RTOL, ATOL)
    for name, p in t_layer.named_parameters():
        numpy.testing.assert_allclose(_np(getattr(e_layer, name).grad), _np(p.grad), RTOL,
                                      ATOL, err_msg=name)


# ---- cells -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,kwargs", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}),
                                         ("LSTMCell", {}), ("GRUCell", {}),
                                         ("GRUCell", {"bias": False})])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_cell_matches_torch(kind, kwargs, batched, with_state):
    e_cell, t_cell = twin(kind, 3, 4, **kwargs)
    rng = numpy.random.default_rng(11)
    lead = (2,) if batched else ()
    states = None
    if with_state:
        states = [rng.standard_normal(lead + (4,))]
        if kind == "LSTMCell":
            states.append(rng.standard_normal(lead + (4,)))
    compare(e_cell, t_cell, rng.standard_normal(lead + (3,)), states)


def test_cell_gradcheck():
    cell = nn.LSTMCell(2, 3).double()
    x = ember.tensor(numpy.random.default_rng(12).standard_normal((2, 2)), requires_grad=True)
    h = ember.zeros(2, 3, dtype=ember.float64, requires_grad=True)
    c = ember.zeros(2, 3, dtype=ember.float64, requires_grad=True)
    assert gradcheck(lambda x, h, c: cell(x, (h, c)), [x, h, c])


# ---- parameters, state_dict, init --------------------------------------------------------------


def test_parameter_names_shapes_and_state_dict_from_torch():
    t_layer = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    e_layer = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    t_sd = t_layer.state_dict()
    e_sd = e_layer.state_dict()
    assert list(e_sd) == list(t_sd)
    for k in t_sd:
        assert tuple(e_sd[k].shape) == tuple(t_sd[k].shape), k
    result = e_layer.load_state_dict({k: ember.tensor(v.numpy()) for k, v in t_sd.items()})
    assert not result.missing_keys and not result.unexpected_keys
    x = numpy.random.default_rng(13).standard_normal((4, 2, 3)).astype(numpy.float32)
    e_out, (e_h, e_c) = e_layer(ember.tensor(x))
    t_out, (t_h, t_c) = t_layer(torch.tensor(x))
    for e, t in [(e_out, t_out), (e_h, t_h), (e_c, t_c)]:
        numpy.testing.assert_allclose(_np(e), _np(t), 1e-5, 1e-6)


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTMCell"])
def test_default_init_is_uniform_in_torch_bounds(kind):
    layer = getattr(nn, kind)(4, 16)
    bound = 1 / 16 ** 0.5
    values = numpy.concatenate([_np(p).ravel() for p in layer.parameters()])
    assert numpy.abs(values).max() <= bound
    assert numpy.abs(values).max() > 0.8 * bound and values.std() > 0.4 * bound


def test_repr_and_defaults_follow_torch():
    layer = nn.LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True)
    assert repr(layer) == repr(torch.nn.LSTM(10, 20, num_layers=2, batch_first=True,
                                             bidirectional=True))
    assert repr(nn.RNN(3, 4, nonlinearity="relu")) == repr(torch.nn.RNN(3, 4,
                                                                        nonlinearity="relu"))


# ---- errors ------------------------------------------------------------------------------------


def test_error_wrong_input_size_names_layer_and_shapes():
    layer = nn.LSTM(8, 16)
    with pytest.raises(errors.ShapeError) as info:
        layer(ember.zeros(4, 5, 9))
    msg = str(info.value)
    assert "LSTM(8, 16)" in msg and "(seq_len, batch, 8)" in msg and "(4, 5, 9)" in msg
    with pytest.raises(errors.ShapeError, match=r"\(batch, seq_len, 8\)"):
        nn.GRU(8, 16, batch_first=True)(ember.zeros(4, 5, 9))


def test_error_wrong_input_rank():
    with pytest.raises(errors.ShapeError, match=r"got \(2, 3, 4, 8\)"):
        nn.RNN(8, 16)(ember.zeros(2, 3, 4, 8))
    with pytest.raises(errors.ShapeError, match=r"got \(8,\)"):
        nn.GRU(8, 16)(ember.zeros(8))


def test_error_wrong_initial_state_shape():
    x = ember.zeros(4, 5, 8)
    with pytest.raises(errors.ShapeError, match=r"h_0 of shape \(2, 5, 16\).*got \(2, 4, 16\)"):
        nn.LSTM(8, 16, num_layers=2)(x, (ember.zeros(2, 4, 16), ember.zeros(2, 5, 16)))
    with pytest.raises(errors.ShapeError, match=r"c_0 of shape \(1, 5, 16\)"):
        nn.LSTM(8, 16)(x, (ember.zeros(1, 5, 16), ember.zeros(1, 5, 15)))
    with pytest.raises(errors.ShapeError, match=r"hx of shape \(2, 5, 16\)"):
        nn.GRU(8, 16, bidirectional=True)(x, ember.zeros(1, 5, 16))
    with pytest.raises(TypeError, match=r"\(h_0, c_0\)"):
        nn.LSTM(8, 16)(x, ember.zeros(1, 5, 16))


def test_error_cells_and_constructor_arguments():
    with pytest.raises(errors.ShapeError, match=r"LSTMCell\(3, 4\).*\(batch, 3\).*\(2, 5\)"):
        nn.LSTMCell(3, 4)(ember.zeros(2, 5))
    with pytest.raises(errors.ShapeError, match=r"hx of shape \(2, 4\)"):
        nn.GRUCell(3, 4)(ember.zeros(2, 3), ember.zeros(3, 4))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size"):
        nn.GRU(3, 0)


# ---- fused kernels: aliasing and the BLAS thread switch -----------------------------------------


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_inplace_change_of_output_before_backward_is_an_error(kind):
    """The fused forward returns its output as a view of the state history it saves for
    backward; changing the output in place must raise, not give a wrong gradient."""
    layer = getattr(nn, kind)(3, 4)
    x = ember.tensor(numpy.random.default_rng(11).standard_normal((5, 2, 3)), dtype=ember.float32,
                     requires_grad=True)
    out = layer(x)[0]
    with ember.no_grad():
        out.add_(1.0)
    with pytest.raises(errors.AutogradError, match="modified by an in-place operation"):
        out.sum().backward()


def test_time_loop_runs_blas_on_one_thread_and_restores_the_count():
    fns = rnn_ops._openblas_threads()
    if fns is None:
        pytest.skip("NumPy's BLAS is not a bundled OpenBLAS")
    get, put = fns
    before = get()
    seen = []
    try:
        put(2)
        with rnn_ops._blas_one_thread(numpy):
            seen.append(get())
        seen.append(get())
    finally:
        put(before)
    assert seen == [1, 2]


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])  # float32 LSTM: the native loops
def test_empty_batch_matches_torch(kind, dtype):
    torch.manual_seed(0)
    t_layer = getattr(torch.nn, kind)(3, 32).to(getattr(torch, dtype))
    e_layer = getattr(nn, kind)(3, 32).to(getattr(ember, dtype))
    e_layer.load_state_dict({k: ember.tensor(v.detach().numpy())
                             for k, v in t_layer.state_dict().items()})
    x = numpy.zeros((5, 0, 3), dtype=dtype)
    e_x, t_x = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    e_out, t_out = _flat(e_layer(e_x)), _flat(t_layer(t_x))
    for e, t in zip(e_out, t_out):
        assert tuple(e.shape) == tuple(t.shape)
    sum(o.sum() for o in e_out).backward()
    sum(o.sum() for o in t_out).backward()
    assert tuple(e_x.grad.shape) == tuple(t_x.grad.shape)
    for name, p in t_layer.named_parameters():
        numpy.testing.assert_array_equal(_np(getattr(e_layer, name).grad), _np(p.grad))
