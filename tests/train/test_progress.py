"""What fit/evaluate/predict print: lines when stdout is not a terminal, a bar when it is,
nothing with verbose=0."""

import io
import re
import sys

from ember import optim
from tests.train import _helpers


def _model():
    return _helpers.mlp().compile(optim.Adam(lr=0.01), "cross_entropy", ["accuracy"])


def test_one_line_per_epoch_when_not_a_terminal(capsys):
    x, y = _helpers.blobs(64)
    history = _model().fit(x, y, batch_size=16, epochs=3, validation_split=0.25)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines):
        assert line.startswith(f"Epoch {epoch + 1}/3 - 3/3 steps - ")
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            value = float(re.search(rf"(?<![a-z_]){key}: ([0-9.e+-]+)", line).group(1))
            assert abs(value - history.history[key][epoch]) < 1e-4


def test_verbose_zero_prints_nothing(capsys):
    x, y = _helpers.blobs(32)
    model = _model()
    model.fit(x, y, epochs=2, verbose=0, validation_split=0.25)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_verbose_two_prints_lines_even_in_a_terminal(monkeypatch):
    out = _Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    x, y = _helpers.blobs(32)
    _model().fit(x, y, epochs=2, verbose=2)
    lines = out.getvalue().strip().splitlines()
    assert [line[:10] for line in lines] == ["Epoch 1/2 ", "Epoch 2/2 "]


def test_evaluate_prints_one_line(capsys):
    x, y = _helpers.blobs(32)
    _model().evaluate(x, y, batch_size=8)
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.startswith("Evaluate - 4/4 steps") and "accuracy: " in line


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_live_bar_in_a_terminal(monkeypatch):
    out = _Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    x, y = _helpers.blobs(64)
    _model().fit(x, y, batch_size=16, epochs=2, validation_split=0.25)
    text = out.getvalue()
    assert "Epoch 1/2" in text and "Epoch 2/2" in text
    assert "3/3" in text and "step" in text  # tqdm's count and unit
    assert "val_accuracy: " in text  # the finished bar carries the epoch's logs
