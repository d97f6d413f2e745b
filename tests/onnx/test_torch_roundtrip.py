"""Models exported by PyTorch (torch.onnx.export, TorchScript exporter: ``dynamo=False``; the
dynamo exporter needs onnxscript, which is not a dependency) load into ember and give torch's
outputs."""

import io
import warnings

import numpy
import pytest

import ember
import ember.onnx

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")


class _Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b1 = torch.nn.BatchNorm2d(c)
        self.c2 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b2 = torch.nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))


class _ResNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
                                        torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                        torch.nn.MaxPool2d(2))
        self.blocks = torch.nn.Sequential(_Block(8), _Block(8))
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


class _BiLSTM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(6, 8, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = torch.nn.Linear(16, 3)

    def forward(self, x):
        y, (h, c) = self.lstm(x)
        return self.fc(y), h, c


def _transformer():
    layer = torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True)
    return torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


def _randomize_batchnorm(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


CASES = {
    "resnet_batchnorm": (_ResNet, (2, 3, 16, 16)),
    "bidirectional_lstm": (_BiLSTM, (2, 5, 6)),
    "transformer_encoder": (_transformer, (2, 7, 16)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_export_loads_with_torch_outputs(name):
    torch.manual_seed(0)
    make, shape = CASES[name]
    model = make().eval()
    _randomize_batchnorm(model)
    x = torch.randn(*shape)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=17, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
    imported = ember.onnx.load(onnx.load_from_string(buf.getvalue()))
    for batch in (2, 3):
        xb = torch.randn(batch, *shape[1:])
        with torch.no_grad():
            ref = model(xb)
        ref = ref if isinstance(ref, tuple) else (ref,)
        with ember.no_grad():
            got = imported(ember.tensor(xb.numpy()))
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            numpy.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-5, atol=1e-6)
