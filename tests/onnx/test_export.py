"""ember -> ONNX: every exported model passes the full ONNX checker, runs in ONNX Runtime with
ember's outputs at the traced batch size and at another one, and loads back into ember with the
same outputs."""

import importlib
import os
import subprocess
import sys

import numpy
import pytest

import ember
import ember.onnx
from ember import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
EX = importlib.import_module("ember.onnx.export")


def _outs(y):
    return [t.detach().numpy() for t in EX._flatten(y)]


def _grown(x, times, axis=0):
    for _ in range(times):
        x = EX._grow(x, axis)
    return x


def roundtrip(tmp_path, model, inputs, opset=18, dynamic_axes=None, grow_axes=None,
              more_inputs=()):
    """Export to a file, then compare ONNX Runtime (two batch sizes, and ``more_inputs``: other
    input lists, e.g. at another sequence length) and ember's reload."""
    path = tmp_path / "m.onnx"
    model.eval()
    ember.onnx.export(model, inputs, path, opset_version=opset, dynamic_axes=dynamic_axes)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    grow_axes = grow_axes or [0] * len(inputs)
    runs = [[_grown(x, times, a) for x, a in zip(inputs, grow_axes)] for times in (0, 3)]
    for xs in runs + [list(m) for m in more_inputs]:
        with ember.no_grad():
            ref = _outs(model(*xs))
        got = sess.run(None, {i.name: x.numpy() for i, x in zip(sess.get_inputs(), xs)})
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            assert g.shape == r.shape
            numpy.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
    back = ember.onnx.load(path)
    with ember.no_grad():
        again = _outs(back(*inputs))
        ref = _outs(model(*inputs))
    for g, r in zip(again, ref):
        numpy.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-6)
    return proto


def x4():
    return ember.randn(2, 3, 8, 8)


ZOO = {
    "linear": lambda: (nn.Linear(4, 3), [ember.randn(2, 4)]),
    "linear_3d": lambda: (nn.Linear(4, 3), [ember.randn(2, 5, 4)]),
    "bilinear": lambda: (nn.Bilinear(4, 5, 3), [ember.randn(2, 4), ember.randn(2, 5)]),
    "conv1d_groups_dilation_same": lambda: (
        nn.Conv1d(3, 6, 3, padding="same", groups=3, dilation=2), [ember.randn(2, 3, 10)]),
    "conv2d_reflect": lambda: (nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), [x4()]),
    "conv2d_replicate": lambda: (nn.Conv2d(3, 4, 3, padding=2, padding_mode="replicate"),
                                 [x4()]),
    "conv3d_stride": lambda: (nn.Conv3d(3, 4, 3, stride=2), [ember.randn(2, 3, 5, 5, 5)]),
    "conv_transpose1d": lambda: (nn.ConvTranspose1d(3, 4, 3, stride=2), [ember.randn(2, 3, 7)]),
    "conv_transpose2d": lambda: (nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1,
                                                    output_padding=1), [x4()]),
    "maxpool2d": lambda: (nn.MaxPool2d(3, 2, 1), [x4()]),
    "maxpool1d": lambda: (nn.MaxPool1d(2), [ember.randn(2, 3, 8)]),
    "maxpool2d_indices": lambda: (nn.MaxPool2d(3, 2, 1, return_indices=True), [x4()]),
    "maxpool1d_indices_dilated_ceil": lambda: (
        nn.MaxPool1d(3, 2, 1, dilation=2, ceil_mode=True, return_indices=True),
        [ember.randn(2, 3, 9)]),
    "avgpool2d": lambda: (nn.AvgPool2d(3, 2, 1), [x4()]),
    "avgpool2d_exclude_pad": lambda: (nn.AvgPool2d(3, 2, 1, count_include_pad=False), [x4()]),
    "avgpool1d": lambda: (nn.AvgPool1d(2), [ember.randn(2, 3, 8)]),
    "adaptive_avg_1": lambda: (nn.AdaptiveAvgPool2d(1), [x4()]),
    "adaptive_avg_4": lambda: (nn.AdaptiveAvgPool2d(4), [x4()]),
    "adaptive_avg_3": lambda: (nn.AdaptiveAvgPool2d(3), [x4()]),
    "adaptive_avg1d": lambda: (nn.AdaptiveAvgPool1d(2), [ember.randn(2, 3, 8)]),
    "adaptive_max_4": lambda: (nn.AdaptiveMaxPool2d(4), [x4()]),
    "batchnorm2d": lambda: (nn.BatchNorm2d(3), [x4()]),
    "batchnorm1d": lambda: (nn.BatchNorm1d(3), [ember.randn(4, 3)]),
    "layernorm": lambda: (nn.LayerNorm(8), [x4()]),
    "layernorm_2d_no_affine": lambda: (nn.LayerNorm([8, 8], elementwise_affine=False), [x4()]),
    "groupnorm": lambda: (nn.GroupNorm(1, 3), [x4()]),
    "instancenorm": lambda: (nn.InstanceNorm2d(3, affine=True), [x4()]),
    "rmsnorm": lambda: (nn.RMSNorm(8), [x4()]),
    "dropout": lambda: (nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3)), [ember.randn(2, 4)]),
    "embedding": lambda: (nn.Embedding(10, 4), [ember.tensor([[1, 2, 9], [3, 4, 0]])]),
    "flatten_unflatten": lambda: (nn.Sequential(nn.Flatten(), nn.Unflatten(1, (3, 64))),
                                  [x4()]),
    "lstm_bi_2layer_batch_first": lambda: (
        nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True),
        [ember.randn(2, 3, 4)]),
    "gru": lambda: (nn.GRU(4, 5), [ember.randn(3, 2, 4)]),
    "gru_bidirectional": lambda: (nn.GRU(4, 5, bidirectional=True), [ember.randn(3, 2, 4)]),
    "rnn_tanh": lambda: (nn.RNN(4, 5, num_layers=2), [ember.randn(3, 2, 4)]),
}
ACTIVATIONS = [
    nn.ReLU, nn.GELU, lambda: nn.GELU("tanh"), nn.SiLU, nn.Mish, nn.SELU, lambda: nn.CELU(0.5),
    nn.ELU, nn.Softplus, lambda: nn.Softplus(2.0, 1.0), nn.Softsign, nn.Hardsigmoid,
    nn.Hardswish, nn.ReLU6, nn.LeakyReLU, lambda: nn.Softmax(1), lambda: nn.LogSoftmax(1),
    lambda: nn.Softmin(1), lambda: nn.Threshold(0.1, 2.0), nn.LogSigmoid, nn.Tanh, nn.Sigmoid,
    lambda: nn.Hardtanh(-2.0, 2.0),
]
for _i, _make in enumerate(ACTIVATIONS):
    ZOO[f"activation_{_i}"] = (lambda make: lambda: (make(), [x4()]))(_make)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_roundtrip(tmp_path, name):
    ember.manual_seed(0)
    model, inputs = ZOO[name]()
    roundtrip(tmp_path, model, inputs)


class _TensorOps(nn.Module):
    """The common tensor ops, in one graph."""

    def forward(self, x):
        a = (x * 2 + 1 - x / 3) ** 2
        b = ember.where(x > 0, x.exp(), -x.abs().sqrt())
        c = ember.cat([a, b], 1).permute(0, 2, 1).reshape(x.shape[0], -1)
        s = x.sum(1) + x.mean(1, keepdim=True).squeeze(1) + x.amax(1) + x.var(1) + x.std(1)
        d = x[:, 1:3, ::2].flatten(1) + x[:, -1, :2].unsqueeze(1).expand(-1, 2, -1).flatten(1)
        e, f = x.split([1, 2], 1)
        g = ember.stack([e.squeeze(1), f.sum(1)], 1).clamp(-0.5, 0.5)
        h = x.max(1).values + x.argmax(1).float() + x.softmax(-1).log_softmax(-1).sum(1)
        k = ember.nn.functional.pad(x, (1, 2)).tanh().sigmoid().sum(-1)
        m = (x @ x.mT).clamp(min=0) + ember.maximum(x[:, :, :3], -x[:, :, :3]).sin().cos()
        n = x.long().float() + ember.minimum(x, x.neg()).floor() + x.round() + x.ceil()
        return c, s, d, g.flatten(1), h, k, m, n, x.t() if x.ndim == 2 else x.transpose(0, 1)


class _Roll(nn.Module):
    def forward(self, x):
        return (ember.roll(x, (1, -2), (1, 2)), ember.roll(x, 5), ember.roll(x, 1, 0),
                ember.roll(x, -7, 2))


def test_roll_roundtrip(tmp_path):
    ember.manual_seed(0)
    proto = roundtrip(tmp_path, _Roll(), [ember.randn(3, 4, 5)])
    assert "Concat" in {n.op_type for n in proto.graph.node}


def test_tensor_ops_roundtrip(tmp_path):
    ember.manual_seed(1)
    roundtrip(tmp_path, _TensorOps(), [ember.randn(2, 3, 4)], grow_axes=[0])


def test_gelu_native_at_opset_20_and_circular_pad_at_19(tmp_path):
    ember.manual_seed(0)
    proto = roundtrip(tmp_path, nn.GELU(), [x4()], opset=20)
    assert [n.op_type for n in proto.graph.node if n.op_type == "Gelu"]
    conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")
    proto = roundtrip(tmp_path, conv, [x4()], opset=19)
    assert any(n.op_type == "Pad" for n in proto.graph.node)


def test_lstm_with_initial_state_and_state_axes(tmp_path):
    ember.manual_seed(0)
    rnn = nn.RNN(4, 5, nonlinearity="relu")
    axes = {"input0": {1: "batch"}, "input1": {1: "batch"}}
    proto = roundtrip(tmp_path, rnn, [ember.randn(3, 2, 4), ember.randn(1, 2, 5)],
                      dynamic_axes=axes, grow_axes=[1, 1])
    assert [n.op_type for n in proto.graph.node].count("RNN") == 1


def test_rnn_exports_one_node_per_layer_and_direction(tmp_path):
    lstm = nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True)
    proto = ember.onnx.to_model_proto(lstm, ember.randn(2, 3, 4))
    assert [n.op_type for n in proto.graph.node].count("LSTM") == 4
    # h_n (num_layers * 2, batch, hidden): the batch is axis 1, found by the second trace.
    h_n = proto.graph.output[1].type.tensor_type.shape.dim
    assert h_n[0].dim_value == 4 and h_n[1].dim_param == "batch"


def test_no_dynamic_axes_fixes_every_dim():
    proto = ember.onnx.to_model_proto(nn.Flatten(), x4(), dynamic_axes={})
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 3, 8, 8]


def test_layer_names_and_initializers_follow_state_dict():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    proto = ember.onnx.to_model_proto(model, x4(), input_names=["image"],
                                      output_names=["features"])
    names = {t.name for t in proto.graph.initializer}
    assert {"0.weight", "0.bias", "1.weight", "1.running_mean"} <= names
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["features"]


class _CumProd(nn.Module):
    """cumprod has no ONNX op (ONNX has CumSum only)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return ember.cumprod(self.fc(x), 1)


def test_unsupported_op_names_op_layer_and_opset_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.onnx"
    model = nn.Sequential(nn.ReLU(), _CumProd())
    with pytest.raises(ember.onnx.ExportError) as info:
        ember.onnx.export(model, ember.randn(2, 4), path, opset_version=17)
    msg = str(info.value)
    assert "Cumprod" in msg and "'1'" in msg and "opset 17" in msg
    assert not path.exists() and os.listdir(tmp_path) == []


def test_failed_export_keeps_the_previous_file(tmp_path):
    path = tmp_path / "m.onnx"
    ember.onnx.export(nn.Linear(4, 4), ember.randn(2, 4), path)
    before = path.read_bytes()
    with pytest.raises(ember.onnx.ExportError):
        ember.onnx.export(_CumProd(), ember.randn(2, 4), path)
    assert path.read_bytes() == before


def test_bad_names_are_clear_errors():
    with pytest.raises(ValueError, match="output_names"):
        ember.onnx.to_model_proto(nn.Linear(4, 4), ember.randn(2, 4), output_names=["a", "b"])
    with pytest.raises(ValueError, match="dynamic_axes names 'nope'"):
        ember.onnx.to_model_proto(nn.Linear(4, 4), ember.randn(2, 4),
                                  dynamic_axes={"nope": [0]})


def test_import_ember_does_not_import_onnx():
    code = "import ember, ember.onnx, sys; assert 'onnx' not in sys.modules, 'onnx imported'"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# ---- attention and Transformer layers --------------------------------------------------------
# Exported with the batch and the sequence lengths dynamic: ONNX Runtime runs each at the
# traced sizes, at batch + 3, and at other sequence lengths. Causal masks built in forward for
# the input's length (generate_square_subsequent_mask, is_causal) become Trilu nodes.


def _causal(n):
    return nn.Transformer.generate_square_subsequent_mask(n)


class _SelfAttention(nn.Module):
    """MultiheadAttention on one input (plus an optional float key_padding_mask input)."""

    def __init__(self, batch_first, need_weights=True, causal=None, average=True, **kw):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=batch_first, **kw)
        self.need_weights, self.causal, self.average = need_weights, causal, average

    def forward(self, x, key_padding_mask=None):
        n = x.shape[1 if self.mha.batch_first else 0]
        mask = None
        if self.causal == "float":
            mask = _causal(n)
        elif self.causal == "bool":
            mask = ember.ones(n, n).triu(1).bool()
        return self.mha(x, x, x, key_padding_mask=key_padding_mask, attn_mask=mask,
                        need_weights=self.need_weights, average_attn_weights=self.average)


class _CrossAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, kdim=6, vdim=4)

    def forward(self, q, k, v, key_padding_mask):
        return self.mha(q, k, v, key_padding_mask=key_padding_mask, need_weights=False)


class _Encoder(nn.Module):
    def __init__(self, layer, causal=True):
        super().__init__()
        self.layer, self.causal = layer, causal

    def forward(self, src):
        first = getattr(self.layer, "layers", [self.layer])[0]
        n = src.shape[1 if first.self_attn.batch_first else 0]
        if not self.causal:
            return self.layer(src)
        if isinstance(self.layer, nn.TransformerEncoder):
            return self.layer(src, mask=_causal(n), is_causal=True)
        return self.layer(src, src_mask=_causal(n), is_causal=True)


class _Decoder(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, tgt, memory):
        first = getattr(self.layer, "layers", [self.layer])[0]
        n = tgt.shape[1 if first.self_attn.batch_first else 0]
        return self.layer(tgt, memory, tgt_mask=_causal(n), tgt_is_causal=True)


def _seq_axes(names, batch_first, outputs=("output",), seq=None):
    """dynamic_axes with the batch and each input's sequence axis symbolic."""
    b, s = (0, 1) if batch_first else (1, 0)
    seq = seq or {n: f"len_{n}" for n in names}
    axes = {n: {b: "batch", s: seq[n]} for n in names}
    axes.update({o: {b: "batch", s: seq[names[0]]} for o in outputs})
    return axes


def _seq_grow(x, batch_first, by=2):
    return _grown(x, by, 1 if batch_first else 0)


def _enc(**kw):
    return nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, **kw)


def _dec(**kw):
    return nn.TransformerDecoderLayer(8, 2, 16, dropout=0.1, **kw)


def _check_encoder(tmp_path, model, batch_first):
    x = ember.randn(2, 5, 8) if batch_first else ember.randn(5, 2, 8)
    roundtrip(tmp_path, model, [x], dynamic_axes=_seq_axes(["input"], batch_first),
              grow_axes=[0 if batch_first else 1],
              more_inputs=[[_seq_grow(x, batch_first)]])


ENCODERS = {
    "encoder_layer_relu_post_norm": (lambda: _Encoder(_enc()), False),
    "encoder_layer_gelu_pre_norm_batch_first": (
        lambda: _Encoder(_enc(activation="gelu", norm_first=True, batch_first=True)), True),
    "encoder_layer_no_mask_batch_first": (
        lambda: _Encoder(_enc(batch_first=True), causal=False), True),
    "encoder_2_layers_final_norm": (
        lambda: _Encoder(nn.TransformerEncoder(_enc(batch_first=True), 2,
                                               norm=nn.LayerNorm(8))), True),
}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_transformer_encoder_roundtrip(tmp_path, name):
    ember.manual_seed(0)
    make, batch_first = ENCODERS[name]
    _check_encoder(tmp_path, make(), batch_first)


DECODERS = {
    "decoder_layer": (lambda: _Decoder(_dec()), False),
    "decoder_layer_pre_norm_batch_first": (
        lambda: _Decoder(_dec(norm_first=True, activation="gelu", batch_first=True)), True),
    "decoder_2_layers": (lambda: _Decoder(nn.TransformerDecoder(_dec(batch_first=True), 2)),
                         True),
}


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_transformer_decoder_roundtrip(tmp_path, name):
    ember.manual_seed(0)
    make, batch_first = DECODERS[name]
    tgt, mem = ember.randn(2, 4, 8), ember.randn(2, 6, 8)
    if not batch_first:
        tgt, mem = tgt.transpose(0, 1).contiguous(), mem.transpose(0, 1).contiguous()
    axes = _seq_axes(["input0", "input1"], batch_first)
    b = 0 if batch_first else 1
    roundtrip(tmp_path, make(), [tgt, mem], dynamic_axes=axes, grow_axes=[b, b],
              more_inputs=[[_seq_grow(tgt, batch_first, 3), _seq_grow(mem, batch_first, 1)]])


def test_transformer_roundtrip(tmp_path):
    ember.manual_seed(0)
    model = nn.Transformer(8, 2, 1, 1, 16, dropout=0.1, batch_first=True)

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.t = model

        def forward(self, src, tgt):
            return self.t(src, tgt, tgt_mask=_causal(tgt.shape[1]), tgt_is_causal=True)

    src, tgt = ember.randn(2, 6, 8), ember.randn(2, 4, 8)
    roundtrip(tmp_path, Seq2Seq(), [src, tgt], grow_axes=[0, 0],
              dynamic_axes=_seq_axes(["input0", "input1"], True,
                                     seq={"input0": "src_len", "input1": "tgt_len"}) |
              {"output": {0: "batch", 1: "tgt_len"}},
              more_inputs=[[_grown(src, 2, 1), _grown(tgt, 3, 1)]])


MHA = {
    "weights_batch_first": dict(batch_first=True),
    "weights_per_head_float_causal": dict(batch_first=False, causal="float", average=False),
    "bool_causal_no_weights_batch_first": dict(batch_first=True, causal="bool",
                                               need_weights=False),
    "bias_kv_zero_attn": dict(batch_first=True, add_bias_kv=True, add_zero_attn=True),
}


@pytest.mark.parametrize("name", sorted(MHA))
def test_multihead_attention_roundtrip(tmp_path, name):
    ember.manual_seed(0)
    kw = MHA[name]
    batch_first = kw["batch_first"]
    x = ember.randn(2, 5, 8) if batch_first else ember.randn(5, 2, 8)
    outs = ("output0", "output1") if kw.get("need_weights", True) else ("output",)
    axes = _seq_axes(["input"], batch_first, outs)
    if len(outs) == 2:  # weights: (N, L, S) or (N, H, L, S)
        last = 2 if kw.get("average", True) else 3
        axes["output1"] = {0: "batch", last - 1: "len_input", last: "len_input"}
    roundtrip(tmp_path, _SelfAttention(**kw), [x], dynamic_axes=axes,
              grow_axes=[0 if batch_first else 1], more_inputs=[[_seq_grow(x, batch_first)]])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_multihead_attention_float_key_padding_mask_input(tmp_path):
    """A float key_padding_mask is a second graph input; a fully masked row gives zeros."""
    ember.manual_seed(0)
    q, k, v = ember.randn(5, 2, 8), ember.randn(4, 2, 6), ember.randn(4, 2, 4)
    kpm = ember.zeros(2, 4)
    kpm[0, 3] = float("-inf")
    kpm[1, :] = float("-inf")
    axes = {"input0": {0: "L", 1: "batch"}, "input1": {0: "S", 1: "batch"},
            "input2": {0: "S", 1: "batch"}, "input3": {0: "batch", 1: "S"},
            "output": {0: "L", 1: "batch"}}
    roundtrip(tmp_path, _CrossAttention(), [q, k, v, kpm], dynamic_axes=axes,
              grow_axes=[1, 1, 1, 0],
              more_inputs=[[_grown(q, 2), _grown(k, 1), _grown(v, 1), _grown(kpm, 1, 1)]])


def test_sdpa_gqa_causal_roundtrip(tmp_path):
    ember.manual_seed(0)
    class Attend(nn.Module):
        def forward(self, q, kv):
            return nn.functional.scaled_dot_product_attention(q, kv, kv, is_causal=True,
                                                              enable_gqa=True)

    q, kv = ember.randn(2, 4, 5, 8), ember.randn(2, 2, 5, 8)
    axes = {"input0": {0: "batch", 2: "L"}, "input1": {0: "batch", 2: "L"},
            "output": {0: "batch", 2: "L"}}
    roundtrip(tmp_path, Attend(), [q, kv], dynamic_axes=axes,
              more_inputs=[[_grown(q, 3, 2), _grown(kv, 3, 2)]])


def test_bool_key_padding_mask_input_exports(tmp_path):
    """A bool key_padding_mask given as a model input stays a graph input: ONNX Runtime follows
    whatever mask it is given at run time."""
    import onnxruntime

    ember.manual_seed(0)
    model = _SelfAttention(batch_first=True)
    model.eval()
    x = ember.randn(2, 5, 8)
    path = tmp_path / "m.onnx"
    ember.onnx.export(model, (x, ember.tensor([[False] * 4 + [True], [False] * 5])), path)
    session = onnxruntime.InferenceSession(str(path))
    names = [i.name for i in session.get_inputs()]
    for mask in ([[False] * 4 + [True], [False] * 5], [[False] * 5, [True] + [False] * 4]):
        kpm = ember.tensor(mask)
        expected = model(x, kpm)
        expected = expected[0] if isinstance(expected, tuple) else expected
        got = session.run(None, dict(zip(names, [x.numpy(), kpm.numpy()])))[0]
        numpy.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_attention_dropout_in_training_is_refused():
    def attend(q):
        return nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=0.5)

    with pytest.raises(ember.onnx.ExportError, match="_Attention.*dropout"):
        ember.onnx.to_model_proto(attend, ember.randn(2, 3, 4))


# ---- indexing: gather / scatter / one index tensor ---------------------------------------------


class _Indexing(nn.Module):
    """Index ops with the index as a graph input (int64, shape (N, 3))."""

    def forward(self, x, index):
        g = ember.gather(x, 1, index)
        s = ember.scatter(x, 1, index, g * 2)
        v = x.scatter(1, index, 0.5)
        a = ember.scatter_add(x, 1, index, g)
        picked = x[:, index[0]]  # advanced indexing with one index tensor
        rows = x[index[:, 0]]
        return g, s, v, a, picked, rows


def test_gather_scatter_and_index_tensor_roundtrip(tmp_path):
    ember.manual_seed(0)
    x = ember.randn(2, 5)
    index = ember.tensor([[0, 4, 4], [1, 1, 3]])
    proto = roundtrip(tmp_path, _Indexing(), [x, index])
    ops = {n.op_type for n in proto.graph.node}
    assert {"GatherElements", "ScatterElements", "Gather"} <= ops


def test_bool_mask_index_is_refused():
    class Masked(nn.Module):
        def forward(self, x):
            return x[x > 0]

    with pytest.raises(ember.onnx.ExportError):
        ember.onnx.to_model_proto(Masked(), ember.randn(2, 3))


def test_docs_supported_op_table_is_current():
    """docs/onnx.md's table is generated from the rows: regenerate it with
    ``python docs/gen_onnx_ops.py`` after adding or changing a row."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, os.path.join(root, "docs", "gen_onnx_ops.py"),
                           "--check"], cwd=root)
    assert done.returncode == 0, "docs/onnx.md is stale: run python docs/gen_onnx_ops.py"
