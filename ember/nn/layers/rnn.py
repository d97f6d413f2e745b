"""Recurrent layers: RNN, LSTM, GRU (multi-layer, bidirectional, packed input) and their
single-step cells, with PyTorch's names, parameter layout, gate order and initialization, so
a torch ``state_dict`` loads as it is.

Each layer and direction runs as: one matmul for the input projection of all time steps
(``F.linear``), then one fused ``ember.ops.rnn.Recurrence`` for the time loop (see that module
for the fused forward/backward and how double backward stays available).
"""

import math

from ember import creation, errors
from ember import random as _random
from ember.nn import functional as F
from ember.nn import init
from ember.nn import module as _module
from ember.nn.parameter import Parameter
from ember.nn.utils import rnn as rnn_utils
from ember.ops import index, join, rnn, shape
from ember.tensor import Tensor

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_MODES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _positive(layer, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive integer. Received: {name}={value!r}")
    return value


def _empty(shape_, device, dtype):
    return Parameter(creation.empty(*shape_, device=device, dtype=dtype))


def _dropout(x, p):
    """Inverted dropout on the output of a non-last layer (training only)."""
    if p >= 1.0:
        return x * 0.0
    keep = _random.rand(*x.shape, dtype=x.dtype, device=x.device) >= p
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


class RNNBase(_module.Module):
    """The machinery shared by RNN, LSTM and GRU (use those).

    ``mode`` is "LSTM", "GRU", "RNN_TANH" or "RNN_RELU". Parameters are registered as torch
    does: for each layer ``k`` and direction (suffix ``_reverse``), ``weight_ih_lk``,
    ``weight_hh_lk``, ``bias_ih_lk``, ``bias_hh_lk`` and, for an LSTM with ``proj_size > 0``,
    ``weight_hr_lk``.
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
                 device=None, dtype=None):
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"RNNBase: unknown mode {mode!r}; expected one of {sorted(_MODES)}")
        name = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(mode, mode)
        self.mode = mode
        self.input_size = _positive(name, "input_size", input_size)
        self.hidden_size = _positive(name, "hidden_size", hidden_size)
        self.num_layers = _positive(name, "num_layers", num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0 <= dropout <= 1:
            raise ValueError(
                f"{name}: dropout must be a number in [0, 1] (the probability of zeroing an "
                f"element). Received: dropout={dropout!r}"
            )
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"{name}: proj_size must be a non-negative integer. Received: "
                             f"proj_size={proj_size!r}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size is supported by LSTM only")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size ({proj_size}) has to be smaller than "
                             f"hidden_size ({hidden_size})")
        self.proj_size = proj_size
        gate_size = _MODES[mode] * hidden_size
        state_size = proj_size or hidden_size
        directions = 2 if self.bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else state_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                params = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, state_size))]
                if self.bias:
                    params += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size:
                    params.append(("weight_hr", (proj_size, hidden_size)))
                for pname, pshape in params:
                    setattr(self, pname + suffix, _empty(pshape, device, dtype))
                    self._flat_weights_names.append(pname + suffix)
        self.reset_parameters()

    def reset_parameters(self):
        """torch's default: every weight and bias from U(-1/sqrt(hidden_size), +1/sqrt(...))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        """The parameters per layer and direction, as torch lists them."""
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional
                                                                     else 1))
        w = self._flat_weights
        return [w[i:i + per] for i in range(0, len(w), per)]

    def flatten_parameters(self):
        """A no-op kept for torch compatibility (ember needs no contiguous weight buffer)."""

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    # ---- forward -----------------------------------------------------------------------------

    def _input_error(self, input):
        order = "(batch, seq_len, {0})" if self.batch_first else "(seq_len, batch, {0})"
        return errors.ShapeError(
            f"{self._layer_label()}: expected input of shape {order.format(self.input_size)} "
            f"or unbatched (seq_len, {self.input_size}), got {errors.shape_str(input.shape)}"
        )

    def _check_state(self, state, expected, what):
        if not isinstance(state, Tensor):
            raise TypeError(f"{self._layer_label()}: {what} must be a Tensor, got "
                            f"{type(state).__name__}")
        if tuple(state.shape) != tuple(expected):
            raise errors.ShapeError(
                f"{self._layer_label()}: expected {what} of shape {errors.shape_str(expected)} "
                f"(num_layers * num_directions, batch, size), got "
                f"{errors.shape_str(state.shape)}"
            )

    def forward(self, input, hx=None):
        """Run the layer over a sequence; see the class docstring for shapes."""
        packed = isinstance(input, rnn_utils.PackedSequence)
        batch_sizes = None
        unbatched = False
        if packed:
            x = input.data
            batch_sizes = tuple(int(b) for b in input.batch_sizes.tolist())
            batch = batch_sizes[0] if batch_sizes else 0
            if x.ndim != 2 or x.shape[-1] != self.input_size:
                raise errors.ShapeError(
                    f"{self._layer_label()}: expected packed data of shape (sum(lengths), "
                    f"{self.input_size}), got {errors.shape_str(x.shape)}"
                )
        else:
            x = input
            if not isinstance(x, Tensor):
                raise TypeError(f"{self._layer_label()}: expected a Tensor or PackedSequence, "
                                f"got {type(x).__name__}")
            if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
                raise self._input_error(x)
            unbatched = x.ndim == 2
            if unbatched:
                x = shape.unsqueeze(x, 1)
            elif self.batch_first:
                x = shape.transpose(x, 0, 1)
            batch = x.shape[1]
        h0, c0 = self._initial_states(hx, batch, unbatched, x)
        if packed and input.sorted_indices is not None:
            h0 = index.index_select(h0, 1, input.sorted_indices) if h0 is not None else None
            c0 = index.index_select(c0, 1, input.sorted_indices) if c0 is not None else None
        out, h_n, c_n = self._run(x, h0, c0, batch_sizes)
        if packed:
            if input.unsorted_indices is not None:
                h_n = index.index_select(h_n, 1, input.unsorted_indices)
                c_n = index.index_select(c_n, 1, input.unsorted_indices) if c_n is not None \
                    else None
            out = input._with_data(out)
        elif unbatched:
            out = shape.squeeze(out, 1)
            h_n = shape.squeeze(h_n, 1)
            c_n = shape.squeeze(c_n, 1) if c_n is not None else None
        elif self.batch_first:
            out = shape.transpose(out, 0, 1)
        return (out, (h_n, c_n)) if self.mode == "LSTM" else (out, h_n)

    def _initial_states(self, hx, batch, unbatched, x):
        if hx is None:
            return None, None
        layers = self.num_layers * (2 if self.bidirectional else 1)
        h_size = self.proj_size or self.hidden_size
        h_shape = (layers, h_size) if unbatched else (layers, batch, h_size)
        c_shape = (layers, self.hidden_size) if unbatched else (layers, batch, self.hidden_size)
        if self.mode == "LSTM":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{self._layer_label()}: hx must be a tuple (h_0, c_0), got "
                                f"{type(hx).__name__}")
            h0, c0 = hx
            self._check_state(h0, h_shape, "h_0")
            self._check_state(c0, c_shape, "c_0")
        else:
            h0, c0 = hx, None
            self._check_state(h0, h_shape, "hx")
        for s in (h0, c0):
            if s is not None and s.dtype != x.dtype:
                raise errors.DTypeError(
                    f"{self._layer_label()}: initial state dtype {s.dtype} does not match the "
                    f"input dtype {x.dtype}"
                )
        if unbatched:
            h0 = shape.unsqueeze(h0, 1)
            c0 = shape.unsqueeze(c0, 1) if c0 is not None else None
        return h0, c0

    def _run(self, x, h0, c0, batch_sizes):
        directions = 2 if self.bidirectional else 1
        weights = self._flat_weights
        per = len(weights) // (self.num_layers * directions)
        lstm = self.mode == "LSTM"
        h_n, c_n = [], []
        # NOTE (measured, 1 thread, CPU time): batch_first input arrives here as a transposed
        # view, and F.linear on a non-contiguous (64, 32, 128) runs NumPy's batched matmul, 64
        # small GEMMs: 5.2 ms against 2.5 ms for one (2048, 128) @ (128, 512) GEMM after a
        # ~0.1 ms copy (a no-op for contiguous input). W4's training step (embedding ->
        # batch_first LSTM -> linear -> CE -> Adam), old and new layer and torch interleaved,
        # 21 rounds: ember 44.2 -> 40.0 ms median, ratio to torch 1.44 -> 1.30.
        layer_input = shape.contiguous(x)
        for layer in range(self.num_layers):
            outs = []
            for direction in range(directions):
                k = layer * directions + direction
                w = weights[k * per:(k + 1) * per]
                w_ih, w_hh = w[0], w[1]
                b_ih, b_hh = (w[2], w[3]) if self.bias else (None, None)
                w_hr = w[-1] if self.proj_size else None
                xg = F.linear(layer_input, w_ih, b_ih)
                result = rnn.recurrence(
                    xg, h0[k] if h0 is not None else None, c0[k] if c0 is not None else None,
                    w_hh, b_hh, w_hr, self.mode, bool(direction), batch_sizes,
                )
                outs.append(result[0])
                h_n.append(result[1])
                if lstm:
                    c_n.append(result[2])
            layer_input = outs[0] if directions == 1 else join.cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = _dropout(layer_input, self.dropout)
        return layer_input, join.stack(h_n, 0), join.stack(c_n, 0) if lstm else None


_COMMON_ARGS = """
        input_size (int): the number of features of the input ``x``.
        hidden_size (int): the number of features of the hidden state ``h``.
        num_layers (int): stacked recurrent layers, each taking the previous one's output.
            Default: 1.
        bias (bool): use ``bias_ih`` and ``bias_hh``. Default: True.
        batch_first (bool): input and output are ``(batch, seq, feature)`` instead of
            ``(seq, batch, feature)`` (not the states). Default: False.
        dropout (float): dropout probability on the outputs of every layer but the last,
            in training mode only. Default: 0.
        bidirectional (bool): add a layer running from the end backwards; outputs are
            concatenated (forward first). Default: False.
        device, dtype: where and in which dtype to create the parameters."""


class RNN(RNNBase):
    __doc__ = """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` per layer.

    Args:
        nonlinearity (str): "tanh" or "relu". Default: "tanh".""" + _COMMON_ARGS + """

    Inputs: ``input, hx``
        input: ``(L, N, H_in)`` (``(N, L, H_in)`` with batch_first), ``(L, H_in)`` unbatched,
            or a ``PackedSequence``.
        hx: ``(D * num_layers, N, H_out)`` (or ``(D * num_layers, H_out)``); default zeros.

    Outputs: ``output, h_n``
        output: ``(L, N, D * H_out)`` (batch_first: ``(N, L, D * H_out)``), or a
            PackedSequence for packed input; h_n: ``(D * num_layers, N, H_out)``, the state
            after each sequence's own last step.

    Example::

        >>> rnn = nn.RNN(10, 20, 2)
        >>> output, hn = rnn(ember.randn(5, 3, 10), ember.randn(2, 3, 20))
        >>> output.shape, hn.shape
        (ember.Size([5, 3, 20]), ember.Size([2, 3, 20]))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; expected 'tanh' or "
                             "'relu'")
        self.nonlinearity = nonlinearity
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)


class LSTM(RNNBase):
    __doc__ = """Long short-term memory, torch's gates per layer (i, f, g, o order)::

        i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (x_t W_ih^T + b_ih + h W_hh^T + b_hh)
        c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)   (then h_t W_hr^T with proj_size)

    Args:""" + _COMMON_ARGS + """
        proj_size (int): if > 0, project ``h_t`` to this size with ``weight_hr``. Default: 0.

    Inputs: ``input, (h_0, c_0)``
        input: ``(L, N, H_in)`` (``(N, L, H_in)`` with batch_first), ``(L, H_in)`` unbatched,
            or a ``PackedSequence``.
        h_0: ``(D * num_layers, N, H_out)`` with ``H_out = proj_size or hidden_size``;
        c_0: ``(D * num_layers, N, hidden_size)``; both default to zeros.

    Outputs: ``output, (h_n, c_n)``, shaped like the inputs' counterparts; ``h_n``/``c_n``
        are the states after each sequence's own last step.

    Example::

        >>> lstm = nn.LSTM(10, 20, 2)
        >>> output, (hn, cn) = lstm(ember.randn(5, 3, 10))
        >>> output.shape, hn.shape, cn.shape
        (ember.Size([5, 3, 20]), ember.Size([2, 3, 20]), ember.Size([2, 3, 20]))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    __doc__ = """Gated recurrent unit, torch's gates per layer (r, z, n order)::

        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
        z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn));   h_t = (1 - z) * n + z * h

    Args:""" + _COMMON_ARGS + """

    Inputs and outputs: as ``nn.RNN``.

    Example::

        >>> gru = nn.GRU(10, 20, 2, batch_first=True)
        >>> output, hn = gru(ember.randn(3, 5, 10))
        >>> output.shape, hn.shape
        (ember.Size([3, 5, 20]), ember.Size([2, 3, 20]))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)


# ---- cells -------------------------------------------------------------------------------------


class RNNCellBase(_module.Module):
    """One time step of a recurrent layer (use RNNCell, LSTMCell or GRUCell)."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = _positive(name, "input_size", input_size)
        self.hidden_size = _positive(name, "hidden_size", hidden_size)
        self.bias = bool(bias)
        gates = num_chunks * hidden_size
        self.weight_ih = _empty((gates, input_size), device, dtype)
        self.weight_hh = _empty((gates, hidden_size), device, dtype)
        if self.bias:
            self.bias_ih = _empty((gates,), device, dtype)
            self.bias_hh = _empty((gates,), device, dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _step(self, mode, input, states):
        """Check shapes, run one step through the fused recurrence, unbatch if needed."""
        if not isinstance(input, Tensor) or input.ndim not in (1, 2) \
                or input.shape[-1] != self.input_size:
            got = errors.shape_str(input.shape) if isinstance(input, Tensor) \
                else type(input).__name__
            raise errors.ShapeError(
                f"{self._layer_label()}: expected input of shape (batch, {self.input_size}) "
                f"or ({self.input_size},), got {got}"
            )
        unbatched = input.ndim == 1
        x = shape.unsqueeze(input, 0) if unbatched else input
        expected = (x.shape[0], self.hidden_size)
        prepared = []
        for name, s in states:
            if s is not None:
                want = expected[1:] if unbatched else expected
                if not isinstance(s, Tensor) or tuple(s.shape) != want:
                    got = errors.shape_str(s.shape) if isinstance(s, Tensor) \
                        else type(s).__name__
                    raise errors.ShapeError(
                        f"{self._layer_label()}: expected {name} of shape "
                        f"{errors.shape_str(want)}, got {got}"
                    )
                s = shape.unsqueeze(s, 0) if unbatched else s
            prepared.append(s)
        h0 = prepared[0]
        c0 = prepared[1] if len(prepared) > 1 else None
        xg = shape.unsqueeze(F.linear(x, self.weight_ih, self.bias_ih), 0)
        result = rnn.recurrence(xg, h0, c0, self.weight_hh, self.bias_hh, None, mode)
        states = result[1:]
        if unbatched:
            states = tuple(shape.squeeze(s, 0) for s in states)
        return states


class RNNCell(RNNCellBase):
    """One step of an Elman RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    Args:
        input_size (int), hidden_size (int), bias (bool, default True),
        nonlinearity (str): "tanh" (default) or "relu".

    Shape:
        input ``(N, H_in)`` or ``(H_in,)``; hx ``(N, H_out)`` or ``(H_out,)`` (default
        zeros); output h' of hx's shape.

    Example::

        >>> cell = nn.RNNCell(10, 20)
        >>> cell(ember.randn(3, 10)).shape
        ember.Size([3, 20])
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; expected 'tanh' "
                             "or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input, hx=None):
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        return self._step(mode, input, [("hx", hx)])[0]


class LSTMCell(RNNCellBase):
    """One step of an LSTM (gates i, f, g, o as in ``nn.LSTM``).

    Args:
        input_size (int), hidden_size (int), bias (bool, default True).

    Shape:
        input ``(N, H_in)`` or ``(H_in,)``; hx = (h_0, c_0), each ``(N, H)`` or ``(H,)``
        (default zeros); output (h_1, c_1) of the same shapes.

    Example::

        >>> cell = nn.LSTMCell(10, 20)
        >>> h, c = cell(ember.randn(3, 10))
        >>> h.shape, c.shape
        (ember.Size([3, 20]), ember.Size([3, 20]))
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        if hx is None:
            hx = (None, None)
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"{self._layer_label()}: hx must be a tuple (h_0, c_0)")
        h, c = self._step("LSTM", input, [("h_0", hx[0]), ("c_0", hx[1])])
        return h, c


class GRUCell(RNNCellBase):
    """One step of a GRU (gates r, z, n as in ``nn.GRU``).

    Args:
        input_size (int), hidden_size (int), bias (bool, default True).

    Shape:
        input ``(N, H_in)`` or ``(H_in,)``; hx ``(N, H)`` or ``(H,)`` (default zeros);
        output h' of hx's shape.

    Example::

        >>> cell = nn.GRUCell(10, 20)
        >>> cell(ember.randn(3, 10), ember.zeros(3, 20)).shape
        ember.Size([3, 20])
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        return self._step("GRU", input, [("hx", hx)])[0]
