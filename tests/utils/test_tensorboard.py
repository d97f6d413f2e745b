"""ember.utils.tensorboard.SummaryWriter, checked by reading the event files back with
TensorBoard's own reader (EventAccumulator), as TensorBoard itself would."""

import os
import subprocess
import sys

import numpy
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

import ember
from ember import errors, nn
from ember.utils.tensorboard import SummaryWriter


def _read(folder):
    """Everything TensorBoard would show for one run folder (no sampling: size 0 = keep all)."""
    keep_all = {kind: 0 for kind in (event_accumulator.SCALARS, event_accumulator.IMAGES,
                                     event_accumulator.HISTOGRAMS, event_accumulator.TENSORS,
                                     event_accumulator.GRAPH)}
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance=keep_all)
    acc.Reload()
    return acc


def _scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_scalars_from_tensors_arrays_and_numbers(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("loss", ember.tensor(2.5), 0)
        w.add_scalar("loss", numpy.float32(1.25), 1)
        w.add_scalar("loss", numpy.array([0.5]), 2)
        w.add_scalar("loss", 0.25, global_step=ember.tensor(3))
        w.add_scalar("grad", ember.tensor([4.0], requires_grad=True), 7)
    acc = _read(tmp_path)
    assert _scalars(acc, "loss") == [(0, 2.5), (1, 1.25), (2, 0.5), (3, 0.25)]
    assert _scalars(acc, "grad") == [(7, 4.0)]


def test_add_scalars_writes_one_run_per_name(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(3):
            w.add_scalars("loss", {"train": 1.0 / (step + 1), "val": ember.tensor(2.0)}, step)
    train = _read(tmp_path / "loss_train")
    assert [s for s, _ in _scalars(train, "loss")] == [0, 1, 2]
    assert [v for _, v in _scalars(train, "loss")] == pytest.approx([1.0, 0.5, 1 / 3])
    assert _scalars(_read(tmp_path / "loss_val"), "loss") == [(0, 2.0), (1, 2.0), (2, 2.0)]


def test_histogram_counts(tmp_path):
    values = ember.randn(1000)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("weights", values, 5)
        w.add_histogram("ints", numpy.arange(10), 6, bins="auto")
    acc = _read(tmp_path)
    (event,) = acc.Histograms("weights")
    h = event.histogram_value
    assert event.step == 5
    assert h.num == 1000 and sum(h.bucket) == 1000
    assert h.min == pytest.approx(float(values.min()))
    assert h.max == pytest.approx(float(values.max()))
    assert h.sum == pytest.approx(float(values.sum()), abs=1e-3)
    ints = acc.Histograms("ints")[0].histogram_value
    assert ints.num == 10 and ints.sum == 45


def test_image_layouts_and_sizes(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_image("chw", ember.rand(3, 8, 12), 0)
        w.add_image("grey", ember.rand(1, 8, 12), 0)
        w.add_image("hwc", (numpy.random.rand(5, 7, 3) * 255).astype(numpy.uint8), 1,
                    dataformats="HWC")
        w.add_image("hw", numpy.zeros((4, 6)), 2, dataformats="HW")
        w.add_images("batch", ember.rand(4, 1, 8, 8), 3)
    acc = _read(tmp_path)
    sizes = {tag: (acc.Images(tag)[0].height, acc.Images(tag)[0].width)
             for tag in ("chw", "grey", "hwc", "hw")}
    assert sizes == {"chw": (8, 12), "grey": (8, 12), "hwc": (5, 7), "hw": (4, 6)}
    assert acc.Images("hwc")[0].step == 1
    assert acc.Images("chw")[0].encoded_image_string[:4] == b"\x89PNG"
    batch = acc.Images("batch")[0]
    assert batch.height >= 8 and batch.width >= 4 * 8  # four 8x8 images tiled in one row


def test_text(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_text("notes", "# run 1\nlr = 0.1", 4)
    (event,) = _read(tmp_path).Tensors("notes/text_summary")
    assert event.step == 4
    assert event.tensor_proto.string_val[0].decode() == "# run 1\nlr = 0.1"


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def _graph(tmp_path, model, inputs):
    with SummaryWriter(tmp_path) as w:
        w.add_graph(model, inputs)
    graph = _read(tmp_path).Graph()
    return {n.name: n for n in graph.node}


def _shapes(node):
    return [[d.size for d in s.dim] for s in node.attr["_output_shapes"].list.shape]


def test_graph_nodes_are_grouped_by_layer(tmp_path):
    nodes = _graph(tmp_path, _Encoder(), ember.randn(2, 1, 8, 8))
    conv = [n for name, n in nodes.items() if name.startswith("features/0/Conv")]
    relu = [n for name, n in nodes.items() if name.startswith("features/1/ReLU")]
    linear = [n for name, n in nodes.items() if name.startswith("head/Linear")]
    assert len(conv) == len(relu) == len(linear) == 1
    conv, relu, linear = conv[0], relu[0], linear[0]
    assert conv.op == "Conv" and relu.op == "ReLU" and linear.op == "Linear"
    assert list(conv.input) == ["input", "features/0/weight", "features/0/bias"]
    assert list(relu.input) == [conv.name]
    assert list(linear.input)[1:] == ["head/weight", "head/bias"]
    assert nodes["features/0/weight"].op == "Parameter"
    assert _shapes(nodes["features/0/weight"]) == [[4, 1, 3, 3]]
    assert _shapes(conv) == [[2, 4, 8, 8]] and _shapes(linear) == [[2, 10]]
    assert nodes["input"].op == "IO Node" and _shapes(nodes["input"]) == [[2, 1, 8, 8]]
    assert list(nodes["output"].input) == [linear.name]
    assert b"padding=(1, 1)" in conv.attr["attr"].s  # the op's attributes ride along
    # every edge names a node that exists
    assert all(i.split(":")[0] in nodes for n in nodes.values() for i in n.input)


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(2, 4)

    def forward(self, x, y):
        return ember.cat([self.a(x), self.b(y)], 1)


def test_graph_with_two_inputs_and_nested_outputs(tmp_path):
    inputs = (ember.randn(5, 3), numpy.ones((5, 2), numpy.float32))  # a Tensor and an array
    nodes = _graph(tmp_path / "two", _TwoInputs(), inputs)
    (cat,) = [n for n in nodes.values() if n.op == "Cat"]
    assert sorted(i.split("/")[0] for i in cat.input) == ["a", "b"]  # cat's list of tensors
    assert {"input0", "input1"} <= set(nodes) and _shapes(cat) == [[5, 8]]

    lstm = nn.LSTM(4, 6, batch_first=True)
    nodes = _graph(tmp_path / "lstm", lstm, ember.randn(2, 3, 4))
    (rec,) = [n for n in nodes.values() if n.op == "Recurrence"]
    assert _shapes(rec)[1:] == [[2, 6], [2, 6]]  # h and c of the last step
    assert {"output0", "output1", "output2"} <= set(nodes)  # out, (h, c) flattened
    assert any(i == rec.name + ":1" for n in nodes.values() for i in n.input)


def test_hparams(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_hparams({"lr": 0.01, "optimizer": "adam", "batch": 32, "bn": True},
                      {"hparam/accuracy": ember.tensor(0.9)},
                      hparam_domain_discrete={"optimizer": ["adam", "sgd"]}, run_name="trial1")
    acc = _read(tmp_path / "trial1")
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = start.session_start_info.hparams
    assert values["lr"].number_value == 0.01 and values["batch"].number_value == 32
    assert values["optimizer"].string_value == "adam" and values["bn"].bool_value is True
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    infos = {i.name: i for i in exp.experiment.hparam_infos}
    assert [v.string_value for v in infos["optimizer"].domain_discrete.values] == ["adam", "sgd"]
    assert [m.name.tag for m in exp.experiment.metric_infos] == ["hparam/accuracy"]
    assert _scalars(acc, "hparam/accuracy") == [(0, pytest.approx(0.9))]


def test_writer_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_lr0.1", filename_suffix=".ember")
    w.add_scalar("x", 1.0, 0)
    w.close()
    folder = w.get_logdir()
    assert folder.startswith("runs" + os.sep) and folder.endswith("_lr0.1")
    (name,) = os.listdir(folder)
    assert name.startswith("events.out.tfevents.") and name.endswith(".ember")
    w.add_scalar("x", 2.0, 1)  # after close, a new event file is opened
    w.flush()
    assert _scalars(_read(folder), "x") == [(0, 1.0), (1, 2.0)]


def test_purge_step_hides_later_steps(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(5):
            w.add_scalar("loss", float(step), step)
    with SummaryWriter(tmp_path, purge_step=3) as w:  # restarted from step 3
        w.add_scalar("loss", 30.0, 3)
    assert _scalars(_read(tmp_path), "loss") == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0)]


def test_bad_input_gets_a_clear_error(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(errors.ShapeError, match=r"add_scalar\('loss'\).*shape \(3,\)"):
            w.add_scalar("loss", ember.ones(3), 0)
        with pytest.raises(TypeError, match="expected a Tensor"):
            w.add_scalar("loss", "high", 0)
        with pytest.raises(TypeError, match="tag must be a non-empty str"):
            w.add_scalar(3, 1.0)
        with pytest.raises(TypeError, match="global_step must be an int"):
            w.add_scalar("loss", 1.0, 1.5)
        with pytest.raises(ValueError, match="dataformats must be one of CHW, HWC, HW"):
            w.add_image("img", ember.rand(3, 4, 4), dataformats="CWH2")
        with pytest.raises(errors.ShapeError, match="1, 3 or 4 channels, got 8"):
            w.add_image("img", ember.rand(8, 8, 3))  # an HWC image read as CHW
        with pytest.raises(errors.ShapeError, match="needs a 3-d image"):
            w.add_image("img", ember.rand(8, 8))
        with pytest.raises(errors.ShapeError, match="values are empty"):
            w.add_histogram("h", numpy.zeros(0))
        with pytest.raises(ValueError, match="NaN or inf"):
            w.add_histogram("h", numpy.array([1.0, numpy.nan]))
        with pytest.raises(TypeError, match="text_string must be a str"):
            w.add_text("t", 3)
        with pytest.raises(ValueError, match="input_to_model is needed"):
            w.add_graph(nn.Linear(2, 2))
        with pytest.raises(TypeError, match="must be an ember nn.Module"):
            w.add_graph("model", ember.ones(2))
        with pytest.raises(TypeError, match="hparam 'opt' must be"):
            w.add_hparams({"opt": object()}, {})
        with pytest.raises(ValueError, match="max_queue must be a positive"):
            SummaryWriter(tmp_path, max_queue=0)


def test_tensorboard_callback_writes_epoch_scalars_during_fit(tmp_path):
    x, y = ember.data.datasets.make_classification(n_samples=64, n_features=3, n_classes=2)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_data=(x, y),
                        callbacks=[ember.callbacks.TensorBoard(tmp_path / "logs", update_freq=2)])
    train = _read(tmp_path / "logs" / "train")
    assert [s for s, _ in _scalars(train, "epoch_loss")] == [0, 1, 2]
    assert [v for _, v in _scalars(train, "epoch_loss")] == pytest.approx(
        history.history["loss"], rel=1e-6)
    assert [s for s, _ in _scalars(train, "batch_loss")] == [2, 4, 6, 8, 10, 12]
    val = _read(tmp_path / "logs" / "validation")
    assert [v for _, v in _scalars(val, "epoch_accuracy")] == pytest.approx(
        history.history["val_accuracy"], rel=1e-6)


def test_import_does_not_load_torch(tmp_path):
    """tensorboardX would import torch where it is installed; ember keeps it out."""
    code = ("import sys, importlib.util; from ember.utils.tensorboard import SummaryWriter; "
            f"SummaryWriter({str(tmp_path)!r}).close(); "
            "assert 'torch' not in sys.modules, 'torch was imported or left blocked'; "
            "print('ok' if importlib.util.find_spec('torch') else 'no torch')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"  # still importable by the user afterwards
