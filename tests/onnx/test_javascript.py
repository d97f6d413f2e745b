"""An ember-exported model runs outside Python: onnxruntime-node (JavaScript) gives the same
outputs as ember. Needs ``node`` and the npm package installed by
``npm ci --ignore-scripts --prefix tests/onnx/js`` (its CPU binaries ship inside the package)."""

import importlib
import json
import pathlib
import shutil
import subprocess

import numpy
import pytest

import ember
from ember import nn

JS_DIR = pathlib.Path(__file__).with_name("js")
ORT_NODE = JS_DIR / "node_modules" / "onnxruntime-node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not ORT_NODE.is_dir(),
    reason="node or onnxruntime-node is missing: install Node.js and run "
           "`npm ci --ignore-scripts --prefix tests/onnx/js`")


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x):
        h = ember.relu(self.conv(x))
        return ember.softmax(self.fc(h.flatten(1)), dim=-1)


def test_exported_model_runs_in_onnxruntime_node(tmp_path):
    pytest.importorskip("onnx", reason="the onnx package (ember[onnx]) is not installed")
    export = importlib.import_module("ember.onnx.export").export
    ember.manual_seed(0)
    model = _Net().eval()
    x = ember.randn(3, 2, 5, 5)
    path = tmp_path / "net.onnx"
    export(model, (x,), path, input_names=["x"], output_names=["probs"])
    with ember.no_grad():
        expected = model(x).numpy()
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"x": {"dims": list(x.shape),
                                        "data": x.numpy().reshape(-1).tolist()}}))
    proc = subprocess.run(["node", str(JS_DIR / "run_model.mjs"), str(path), str(inputs)],
                          capture_output=True, text=True, timeout=120, cwd=JS_DIR)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)["probs"]
    got = numpy.asarray(out["data"], numpy.float32).reshape(out["dims"])
    numpy.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
