"""ONNX -> ember: validation, clear errors, the safety hook, opsets, and fine-tuning."""

import sys
import types

import numpy
import pytest

import ember
import ember.onnx
from ember import nn

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402


def _model(nodes, inputs, outputs, inits=(), opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def _check_against_reference(model, *arrays, rtol=1e-5, atol=1e-6, runtime=False):
    feeds = {i.name: a for i, a in zip(model.graph.input, arrays)}
    if runtime:  # ONNX Runtime (the reference evaluator's legacy Softmax is the opset-13 one)
        import onnxruntime  # noqa: PLC0415

        sess = onnxruntime.InferenceSession(model.SerializeToString(),
                                            providers=["CPUExecutionProvider"])
        ref = sess.run(None, feeds)
    else:
        ref = ReferenceEvaluator(model).run(None, feeds)
    got = ember.onnx.load(model)(*[ember.tensor(a) for a in arrays])
    got = got if isinstance(got, tuple) else (got,)
    for g, r in zip(got, ref):
        numpy.testing.assert_allclose(g.detach().numpy(), r, rtol=rtol, atol=atol)


def _any(name, rank):
    """An output of unknown sizes."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                         [f"{name}{i}" for i in range(rank)])


def _ints(name, values):
    return numpy_helper.from_array(numpy.asarray(values, numpy.int64), name)


def test_unsupported_op_names_op_opset_and_node(monkeypatch):
    from ember.onnx import importer

    real = importer.table.import_row
    # Pretend Shrink has no row (whatever rows exist today), to test the message itself.
    monkeypatch.setattr(importer.table, "import_row",
                        lambda op, opset, domain="": None if op == "Shrink" else
                        real(op, opset, domain))
    model = _model([helper.make_node("Shrink", ["x"], ["y"], name="the_node")],
                   [_vi("x", [3, 3])], [_vi("y", [3, 3])], opset=13)
    with pytest.raises(ember.onnx.OnnxImportError) as info:
        ember.onnx.load(model)
    msg = str(info.value)
    assert "Shrink" in msg and "the_node" in msg and "opset 13" in msg


def test_invalid_model_is_rejected_before_running():
    model = _model([helper.make_node("Relu", ["missing"], ["y"])], [_vi("x", [2])],
                   [_vi("y", [2])])
    with pytest.raises(ember.onnx.OnnxImportError, match="not valid ONNX"):
        ember.onnx.load(model)


def test_safety_hook_sees_the_proto_and_folder_first(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    ember.onnx.export(nn.Linear(3, 2), ember.randn(2, 3), path)
    seen = []
    fake = types.ModuleType("ember.onnx.safety")

    def check(proto, base_dir):
        seen.append((type(proto).__name__, base_dir))
        raise ValueError("refused by the safety check")

    fake.check = check
    monkeypatch.setitem(sys.modules, "ember.onnx.safety", fake)
    with pytest.raises(ValueError, match="refused"):
        ember.onnx.load(path)
    assert seen == [("ModelProto", str(tmp_path))]


def test_initializers_become_parameters_and_buffers():
    w = numpy_helper.from_array(numpy.ones((3, 2), numpy.float32), "layer.0/weight:0")
    shape = _ints("shape", [-1, 4])
    nodes = [helper.make_node("MatMul", ["x", "layer.0/weight:0"], ["h"]),
             helper.make_node("Reshape", ["h", "shape"], ["y"])]
    model = _model(nodes, [_vi("x", [4, 3])], [_vi("y", [None, 4])], [w, shape])
    m = ember.onnx.load(model)
    params = dict(m.named_parameters())
    buffers = dict(m.named_buffers())
    assert list(params) == [m.onnx_names["layer.0/weight:0"]] and "." not in list(params)[0]
    assert m.onnx_names["shape"] in buffers
    assert m(ember.ones(4, 3)).shape == (2, 4)


def test_opset_decides_softmax_semantics():
    x = numpy.random.default_rng(0).standard_normal((2, 3, 4)).astype(numpy.float32)
    for opset in (11, 13):
        model = _model([helper.make_node("Softmax", ["x"], ["y"], axis=1)],
                       [_vi("x", [2, 3, 4])], [_vi("y", [2, 3, 4])], opset=opset)
        _check_against_reference(model, x, runtime=True)


def test_ops_against_the_onnx_reference_evaluator():
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 6)).astype(numpy.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(numpy.float32)
    inits = [numpy_helper.from_array(w, "w"), _ints("starts", [1, -1]),
             _ints("ends", [4, -7]), _ints("axes", [2, 3]), _ints("steps", [2, -2]),
             _ints("pads", [0, 0, 1, 2, 0, 0, 2, 1]), _ints("idx", [[0, -1], [1, 2]]),
             _ints("ax1", [1]), _ints("shape", [2, 1, 1, 1]), _ints("split", [1, 2])]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 0, 2, 1], strides=[2, 1]),
        helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["s"]),
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"),
        helper.make_node("Gather", ["x", "idx"], ["g"], axis=3),
        helper.make_node("Unsqueeze", ["x", "ax1"], ["u"]),
        helper.make_node("Squeeze", ["u", "ax1"], ["q"]),
        helper.make_node("Expand", ["x", "shape"], ["e"]),
        helper.make_node("Split", ["x", "split"], ["a", "b"], axis=1),
        helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[2, 2], pads=[0, 0, 1, 1]),
        helper.make_node("AveragePool", ["x"], ["v"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["x"], ["f"], axis=2),
        helper.make_node("ReduceMean", ["x", "ax1"], ["r"], keepdims=0),
    ]
    outs = ["c", "s", "p", "g", "q", "e", "a", "b", "m", "v", "f", "r"]
    ranks = [4, 4, 4, 5, 4, 4, 4, 4, 4, 4, 2, 3]
    model = _model(nodes, [_vi("x", list(x.shape))], [_any(o, r) for o, r in zip(outs, ranks)],
                   inits)
    _check_against_reference(model, x, runtime=True)


def test_rnns_against_the_reference_evaluator():
    rng = numpy.random.default_rng(0)
    t, b, i, h = 4, 2, 3, 5
    x = rng.standard_normal((t, b, i)).astype(numpy.float32)
    for op, gates, extra in [("LSTM", 4, {}), ("GRU", 3, {"linear_before_reset": 1}),
                             ("RNN", 1, {})]:
        inits = [numpy_helper.from_array(rng.standard_normal((2, gates * h, i)).astype(
                     numpy.float32), "W"),
                 numpy_helper.from_array(rng.standard_normal((2, gates * h, h)).astype(
                     numpy.float32), "R"),
                 numpy_helper.from_array(rng.standard_normal((2, 2 * gates * h)).astype(
                     numpy.float32), "B")]
        n_out = 3 if op == "LSTM" else 2
        outs = ["y", "yh", "yc"][:n_out]
        node = helper.make_node(op, ["x", "W", "R", "B"], outs, hidden_size=h,
                                direction="bidirectional", **extra)
        model = _model([node], [_vi("x", [t, b, i])],
                       [_any(o, r) for o, r in zip(outs, [4, 3, 3])], inits)
        _check_against_reference(model, x, rtol=1e-4, atol=1e-5)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        h = self.conv(x).relu().permute(0, 2, 3, 1)
        return self.fc(self.norm(h).flatten(1))


def test_imported_model_fine_tunes_with_the_native_gradients(tmp_path):
    ember.manual_seed(0)
    native = _Net()
    x = ember.randn(5, 2, 4, 4)
    target = ember.randn(5, 3)
    path = tmp_path / "net.onnx"
    ember.onnx.export(native, x, path)
    imported = ember.onnx.load(path)
    native.zero_grad()
    ((native(x) - target) ** 2).mean().backward()
    loss = ((imported(x) - target) ** 2).mean()
    loss.backward()
    native_grads = {k: p.grad.numpy() for k, p in native.named_parameters()}
    for onnx_name, attr in imported.onnx_names.items():
        if onnx_name in native_grads:
            numpy.testing.assert_allclose(getattr(imported, attr).grad.numpy(),
                                          native_grads[onnx_name], rtol=1e-5, atol=1e-6)
    assert set(native_grads) <= set(imported.onnx_names)
    opt = ember.optim.SGD(imported.parameters(), lr=0.05)
    first = float(loss.item())
    for _ in range(5):
        opt.zero_grad()
        loss = ((imported(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
    assert float(((imported(x) - target) ** 2).mean().item()) < first
