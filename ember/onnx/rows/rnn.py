"""Recurrent layers: one ember ``Recurrence`` (one layer, one direction) <-> one ONNX RNN, LSTM
or GRU node.

Gate order differs: torch (and ember) keep LSTM gates as i, f, g, o and GRU gates as r, z, n;
ONNX keeps LSTM as i, o, f, c and GRU as z, r, h. ember's GRU applies the reset gate after the
hidden projection, which is ONNX's ``linear_before_reset=1``. The input projection
``x @ W_ih.T + b_ih`` that ember computes before the recurrence is folded into the ONNX node's
``W`` and ``B`` inputs; the weights are reordered with Split/Concat nodes on the original
initializers, so the file keeps the state_dict names (ONNX Runtime folds those constants).
"""

import numpy

from ember.nn import functional as F
from ember.ops import join
from ember.ops import rnn as RN
from ember.ops import shape as S
from ember.onnx import table
from ember.onnx.rows import shape as shape_rows

_ONNX_OP = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "RNN", "RNN_RELU": "RNN"}
# Block k of the ONNX layout is block _TO_ONNX[mode][k] of the torch layout.
_TO_ONNX = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN_TANH": [0], "RNN_RELU": [0]}
# Block k of the torch layout is block _TO_TORCH[mode][k] of the ONNX layout.
_TO_TORCH = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}


def _reorder(ctx, name, mode):
    """Rows of a stacked-gates weight or bias, reordered to ONNX's gate order."""
    order = _TO_ONNX[mode]
    if len(order) == 1:
        return name
    parts = ctx.add("Split", [name], n_out=len(order), axis=0,
                    num_outputs=len(order)) if ctx.opset >= 18 else \
        ctx.add("Split", [name], n_out=len(order), axis=0)
    return ctx.add("Concat", [parts[k] for k in order], axis=0)


def _unsqueeze0(ctx, name):
    return shape_rows._axes_input_or_attr(ctx, "Unsqueeze", name, [0])


def _squeeze(ctx, name, axis):
    return shape_rows._axes_input_or_attr(ctx, "Squeeze", name, [axis])


def _export_recurrence(ctx, node):
    xg, h0, c0, w_hh, b_hh, w_hr, mode, reverse, batch_sizes = node.args
    if batch_sizes is not None:
        raise shape_rows._unsupported(ctx, node, "a packed sequence (PackedSequence)")
    if w_hr is not None:
        raise shape_rows._unsupported(ctx, node, "an LSTM projection (proj_size > 0)")
    gh, hidden = w_hh.shape
    producer = xg.producer
    if producer is not None and producer.op is F._Linear:
        x, w_ih, b_ih = producer.args
        x_name, w_name = ctx.name(x), ctx.name(w_ih)
        b_ih_name = ctx.name(b_ih) if b_ih is not None else None
    else:  # the projection is not ours to fold: feed xg through an identity W
        x_name = ctx.name(xg)
        w_name = ctx.const(numpy.eye(gh, dtype=xg.dtype), "eye")
        b_ih_name = None
    zeros = ctx.const(numpy.zeros(gh, dtype=w_hh.dtype), "zeros")
    w = _unsqueeze0(ctx, _reorder(ctx, w_name, mode))
    r = _unsqueeze0(ctx, _reorder(ctx, ctx.name(w_hh), mode))
    b = ctx.add("Concat", [_reorder(ctx, b_ih_name or zeros, mode),
                           _reorder(ctx, ctx.name(b_hh) if b_hh is not None else zeros, mode)],
                axis=0)
    ins = [x_name, w, r, _unsqueeze0(ctx, b), "",
           _unsqueeze0(ctx, ctx.name(h0)) if h0 is not None else ""]
    if mode == "LSTM":
        ins.append(_unsqueeze0(ctx, ctx.name(c0)) if c0 is not None else "")
    while ins[-1] == "":
        ins.pop()
    attrs = dict(hidden_size=int(hidden), direction="reverse" if reverse else "forward")
    if mode == "GRU":
        attrs["linear_before_reset"] = 1
    if mode == "RNN_RELU":
        attrs["activations"] = ["Relu"]
    n_out = 3 if mode == "LSTM" else 2
    outs = ctx.add(_ONNX_OP[mode], ins, n_out=n_out, **attrs)
    return [_squeeze(ctx, outs[0], 1)] + [_squeeze(ctx, o, 0) for o in outs[1:]]


table.register(table.Row(
    "LSTM", since=7, ember_ops=(RN.Recurrence,), export=_export_recurrence,
    note="nn.RNN/LSTM/GRU: one node per layer and direction (GRU/RNN rows share it)"))

# ---- load -------------------------------------------------------------------------------------


def _to_torch(t, mode):
    """Stacked gate blocks (rows) from ONNX order to torch order."""
    order = _TO_TORCH[mode]
    if len(order) == 1:
        return t
    parts = join.chunk(t, len(order), 0)
    return join.cat([parts[k] for k in order], 0)


def _recurrent_load(onnx_op):
    def load(ctx, node, x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None,
             p=None, activation_alpha=None, activation_beta=None, activations=None, clip=None,
             direction="forward", hidden_size=None, input_forget=0, layout=0,
             linear_before_reset=0):
        mode = onnx_op
        if onnx_op == "RNN":
            acts = [a.lower() for a in (activations or ["Tanh"])]
            if any(a not in ("tanh", "relu") for a in acts) or len(set(acts)) > 1:
                raise ctx.error(f"RNN: activations {activations} are not supported (Tanh or "
                                f"Relu only)")
            mode = "RNN_RELU" if acts[0] == "relu" else "RNN_TANH"
        elif activations is not None:
            default = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"]}[onnx_op]
            if [a.lower() for a in activations][:len(default)] != default:
                raise ctx.error(f"{onnx_op}: activations {activations} are not supported")
        if clip is not None or input_forget or p is not None:
            raise ctx.error(f"{onnx_op}: clip, input_forget and peepholes are not supported")
        if onnx_op == "GRU" and not linear_before_reset:
            raise ctx.error("GRU: linear_before_reset=0 is not supported (export with "
                            "linear_before_reset=1, as PyTorch's exporter does)")
        if sequence_lens is not None:
            lens = numpy.asarray(sequence_lens.detach().numpy()).reshape(-1)
            steps = x.shape[1] if layout else x.shape[0]
            if (lens != steps).any():
                raise ctx.error(f"{onnx_op}: sequence_lens shorter than the sequence are not "
                                f"supported")
        if layout:
            x = S.transpose(x, 0, 1)
            initial_h = S.transpose(initial_h, 0, 1) if initial_h is not None else None
            initial_c = S.transpose(initial_c, 0, 1) if initial_c is not None else None
        key = "RNN" if onnx_op == "RNN" else onnx_op
        dirs = 2 if direction == "bidirectional" else 1
        outs, hs, cs = [], [], []
        for d in range(dirs):
            w_ih = _to_torch(w[d], key)
            w_hh = _to_torch(r[d], key)
            b_ih = b_hh = None
            if b is not None:
                half = b.shape[1] // 2
                b_ih = _to_torch(b[d, :half], key)
                b_hh = _to_torch(b[d, half:], key)
            h0 = initial_h[d] if initial_h is not None else None
            c0 = initial_c[d] if initial_c is not None else None
            reverse = direction == "reverse" or d == 1
            xg = F.linear(x, w_ih, b_ih)
            res = RN.recurrence(xg, h0, c0, w_hh, b_hh, None, mode, reverse)
            outs.append(res[0])
            hs.append(res[1])
            if mode == "LSTM":
                cs.append(res[2])
        y = join.stack(outs, 1)
        y_h = join.stack(hs, 0)
        y_c = join.stack(cs, 0) if cs else None
        if layout:
            y = S.permute(y, (2, 0, 1, 3))
            y_h = S.transpose(y_h, 0, 1)
            y_c = S.transpose(y_c, 0, 1) if y_c is not None else None
        return (y, y_h, y_c) if mode == "LSTM" else (y, y_h)

    return load


table.register(
    table.Row("LSTM", since=7, load=_recurrent_load("LSTM")),
    table.Row("GRU", since=7, load=_recurrent_load("GRU")),
    table.Row("RNN", since=7, load=_recurrent_load("RNN")),
)
