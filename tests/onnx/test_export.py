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


def roundtrip(tmp_path, model, inputs, opset=18, dynamic_axes=None, grow_axes=None):
    """Export to a file, then compare ONNX Runtime (two batch sizes) and ember's reload."""
    path = tmp_path / "m.onnx"
    model.eval()
    ember.onnx.export(model, inputs, path, opset_version=opset, dynamic_axes=dynamic_axes)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    grow_axes = grow_axes or [0] * len(inputs)
    for times in (0, 3):
        xs = [_grown(x, times, a) for x, a in zip(inputs, grow_axes)]
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


class _Rolls(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return ember.roll(self.fc(x), 1, 1)


def test_unsupported_op_names_op_layer_and_opset_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.onnx"
    model = nn.Sequential(nn.ReLU(), _Rolls())
    with pytest.raises(ember.onnx.ExportError) as info:
        ember.onnx.export(model, ember.randn(2, 4), path, opset_version=17)
    msg = str(info.value)
    assert "_Roll" in msg and "'1'" in msg and "opset 17" in msg
    assert not path.exists() and os.listdir(tmp_path) == []


def test_failed_export_keeps_the_previous_file(tmp_path):
    path = tmp_path / "m.onnx"
    ember.onnx.export(nn.Linear(4, 4), ember.randn(2, 4), path)
    before = path.read_bytes()
    with pytest.raises(ember.onnx.ExportError):
        ember.onnx.export(_Rolls(), ember.randn(2, 4), path)
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
