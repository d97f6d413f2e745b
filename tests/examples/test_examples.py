"""Every script in examples/ runs as a user would run it (a subprocess, from the repository
root) on small settings, and prints and writes what it promises."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(script, *args):
    """Run examples/<script> with ``args``; return its stdout (failing on a non-zero exit)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, os.path.join("examples", script), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def percent(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the output:\n{text[-2000:]}"
    return float(match.group(1)) / 100


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_quickstart_is_the_readme_snippet_and_learns():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    snippet = re.search(r"## A first model\n\n```python\n(.*?)```", readme, re.S).group(1)
    with open(os.path.join(ROOT, "examples", "quickstart.py"), encoding="utf-8") as f:
        assert f.read() == snippet, "examples/quickstart.py and README's 'A first model' differ"
    out = run("quickstart.py")
    assert percent(r"loss \d+\.\d{3}, accuracy (\d+\.\d)%", out) >= 0.9


def test_train_digits_writes_everything(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator  # noqa: PLC0415

    out = run("train_digits.py", "--epochs", "2", "--out", str(tmp_path))
    assert "Total params: 21,386" in out  # model.summary
    assert "Epoch 2/2" in out  # fit's progress, one line per epoch outside a terminal
    assert percent(r"test accuracy (\d+\.\d+)%", out) >= 0.5
    rows = re.findall(r"^ +(\d): +((?:\d+ +)*\d+)$", out, re.M)
    assert [int(d) for d, _ in rows] == list(range(10))  # the confusion matrix, digit by digit
    assert sum(int(n) for _, row in rows for n in row.split()) == 359  # every test image

    assert os.path.getsize(tmp_path / "digits.safetensors") > 0
    assert is_png(tmp_path / "training_curves.png")
    train = event_accumulator.EventAccumulator(str(tmp_path / "logs" / "train"))
    train.Reload()
    assert [e.step for e in train.Scalars("epoch_loss")] == [0, 1]
    graph = event_accumulator.EventAccumulator(str(tmp_path / "logs" / "model"))
    graph.Reload()
    assert {"0/Conv_0", "0/weight", "7/Linear_7"} <= {n.name for n in graph.Graph().node}
    try:
        import onnx  # noqa: F401,PLC0415
        import onnxruntime  # noqa: F401,PLC0415
    except ImportError:
        assert "ONNX export skipped" in out
    else:
        assert "onnxruntime matches ember" in out
        assert os.path.getsize(tmp_path / "digits.onnx") > 0


def test_handwritten_loop():
    out = run("handwritten_loop.py", "--epochs", "1", "--batch-size", "32")
    assert re.search(r"epoch 1/1: lr 0\.1000, loss \d", out)
    assert percent(r"^test accuracy (\d+\.\d+)%", out.splitlines()[-1]) >= 0.7


def test_lstm_sequences():
    out = run("lstm_sequences.py", "--epochs", "3", "--samples", "300")
    assert "300 training sequences, lengths 3 to 12" in out
    assert percent(r"test accuracy (\d+\.\d+)%", out) >= 0.6


def test_conv_autoencoder(tmp_path):
    out = run("conv_autoencoder.py", "--epochs", "3", "--out", str(tmp_path))
    match = re.search(r"test reconstruction MSE (\d\.\d+) \(mean-image baseline (\d\.\d+)\)", out)
    assert match and float(match.group(1)) < float(match.group(2))
    assert is_png(tmp_path / "reconstructions.png")
    assert os.listdir(tmp_path / "logs")  # the images in TensorBoard


def test_regression():
    out = run("regression.py", "--epochs", "15", "--samples", "400")
    true = re.search(r"true weights: +(.*)", out).group(1).split()
    learned = re.search(r"learned weights: +(.*)", out).group(1).split()
    assert len(true) == len(learned) == 4
    assert max(abs(float(a) - float(b)) for a, b in zip(true, learned)) < 0.15


def test_two_inputs():
    out = run("two_inputs.py", "--epochs", "3")
    assert "Epoch 3/3" in out
    assert percent(r"test accuracy (\d+\.\d+)%", out) >= 0.8
