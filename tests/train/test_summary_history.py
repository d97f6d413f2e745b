"""summary() rows and totals; History contents and plot."""

import pytest

import ember
from ember import nn, optim
from tests.train import _helpers


def _rows(text):
    lines = text.splitlines()
    bars = [i for i, line in enumerate(lines) if line.startswith("=")]
    assert len(bars) == 2
    return [line.split() for line in lines[bars[0] + 1:bars[1]]]


def test_summary_rows_and_totals(capsys):
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model[0].weight.requires_grad_(False)
    model.summary(input_shape=(None, 4))
    text = capsys.readouterr().out
    rows = _rows(text)
    assert [r[:2] for r in rows] == [["0", "(Linear)"], ["1", "(BatchNorm1d)"], ["2", "(ReLU)"],
                                     ["3", "(Linear)"]]
    assert [r[2:-1] for r in rows] == [["(None,", "8)"], ["(None,", "8)"], ["(None,", "8)"],
                                       ["(None,", "3)"]]
    # BatchNorm: weight, bias (16) + running mean, var (16) + num_batches_tracked (1).
    bn = sum(t.numel() for t in model[1].state_dict().values())
    assert [r[-1] for r in rows] == ["40", str(bn), "0", "27"]
    assert f"Total params: {40 + bn + 27:,}" in text
    assert f"Trainable params: {8 + 16 + 27}" in text  # frozen weight (32) excluded
    assert f"Non-trainable params: {32 + bn - 16}" in text


def test_summary_of_a_lazy_model_needs_and_uses_an_input_shape(capsys):
    model = nn.Sequential(nn.Conv2d(out_channels=4, kernel_size=3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(out_features=10))
    with pytest.raises(ember.errors.ModuleError, match="pass input_shape"):
        model.summary()
    model.summary(input_shape=(None, 1, 8, 8))
    text = capsys.readouterr().out
    rows = _rows(text)
    assert [" ".join(r[2:-1]) for r in rows] == [
        "(None, 4, 8, 8)", "(None, 4, 8, 8)", "(None, 4, 4, 4)", "(None, 64)", "(None, 10)"]
    assert [r[-1] for r in rows] == ["40", "0", "0", "0", "650"]
    assert "Total params: 690" in text and "Non-trainable params: 0" in text


def test_summary_after_fit_knows_the_input_shapes(capsys):
    x, y = _helpers.blobs(32)
    model = _helpers.mlp().compile("adam", "cross_entropy")
    model.fit(x, y, verbose=0)
    model.summary()
    rows = _rows(capsys.readouterr().out)
    assert rows[-1][2:4] == ["(None,", "3)"]


def test_summary_nested_modules_are_indented(capsys):
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 3)), nn.Linear(3, 1))
    model.summary(input_shape=(5, 2))
    lines = capsys.readouterr().out.splitlines()
    assert any(l.startswith("0 (Sequential)") and l.rstrip().endswith("9") for l in lines)
    assert any(l.startswith("  0 (Linear)") and "(5, 3)" in l for l in lines)


def test_history_contents():
    x, y = _helpers.blobs(40)
    model = _helpers.mlp().compile(optim.Adam(lr=0.01), "cross_entropy", ["accuracy"])
    history = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0)
    assert history.epoch == [0, 1, 2]
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all(isinstance(v, float) for values in history.history.values() for v in values)
    assert history.history["val_loss"][-1] == pytest.approx(
        model.evaluate(x[30:], y[30:], verbose=0)[0], rel=1e-5)


def test_history_plot_writes_a_png(tmp_path):
    x, y = _helpers.blobs(40)
    model = _helpers.mlp().compile("adam", "cross_entropy", ["accuracy"])
    history = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    path = history.plot(tmp_path / "curves.png")
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    with pytest.raises(KeyError, match="no values for"):
        history.plot(tmp_path / "x.png", keys=["f1"])


def test_empty_history_cannot_plot(tmp_path):
    with pytest.raises(ValueError, match="nothing to plot"):
        ember.callbacks.History().plot(tmp_path / "x.png")
