"""Bad input is caught before the first training step, with messages that say what to fix."""

import re

import numpy
import pytest

from ember import optim
from tests.train import _helpers


def _model(out=10, loss="cross_entropy"):
    return _helpers.mlp(out).compile(optim.SGD(lr=0.1), loss, ["accuracy"])


def _raises_before_training(model, message, **fit_kwargs):
    steps = []
    model.register_forward_hook(lambda m, a, o: steps.append(1) if m.training else None)
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(verbose=0, **fit_kwargs)
    assert steps == []  # no training step ran


def test_length_mismatch():
    x = numpy.zeros((1000, 4), numpy.float32)
    y = numpy.zeros(999, numpy.int64)
    _raises_before_training(_model(), "fit: x has 1000 samples but y has 999", x=x, y=y)
    with pytest.raises(ValueError, match="x has 10 samples but sample_weight has 9"):
        _model().fit(x[:10], y[:10], sample_weight=numpy.ones(9), verbose=0)


def test_labels_out_of_range():
    x = numpy.zeros((200, 4), numpy.float32)
    y = numpy.arange(200) % 13
    _raises_before_training(
        _model(), "fit: labels go up to 12 but the model outputs 10 classes (output shape "
        "(64, 10)); check num classes or the loss", x=x, y=y, batch_size=64)
    with pytest.raises(ValueError, match="labels must be >= 0"):
        _model().fit(x, -(y % 2), verbose=0)


def test_loss_that_does_not_fit_the_output():
    x = numpy.zeros((128, 4), numpy.float32)
    y = numpy.zeros(128, numpy.float32)
    _raises_before_training(
        _model(loss="binary_crossentropy"),
        "fit: loss 'binary_crossentropy' expects outputs and targets of the same shape, got "
        "output (64, 10) and target (64,)", x=x, y=y, batch_size=64)
    with pytest.raises(ValueError, match=r"'mse' expects outputs and targets of the same shape"):
        _model(out=3, loss="mse").fit(x, numpy.zeros((128, 2)), verbose=0)
    with pytest.raises(ValueError, match="use 'categorical_crossentropy'"):
        _model(loss="sparse_categorical_crossentropy").fit(x, numpy.zeros((128, 10)), verbose=0)
    with pytest.raises(ValueError, match="for class labels use 'sparse_categorical"):
        _model(loss="categorical_crossentropy").fit(x, y.astype(numpy.int64), verbose=0)
    with pytest.raises(ValueError, match="takes integer class labels"):
        _model().fit(x, y + 0.5, verbose=0)


def test_validation_data_is_checked_too():
    x = numpy.zeros((20, 4), numpy.float32)
    y = numpy.zeros(20, numpy.int64)
    with pytest.raises(ValueError, match="labels go up to 11"):
        _model().fit(x, y, validation_data=(x, y + 11), verbose=0)
    with pytest.raises(ValueError, match=r"validation_data must be \(x_val, y_val\)"):
        _model().fit(x, y, validation_data=x, verbose=0)


def test_argument_errors():
    x = numpy.zeros((20, 4), numpy.float32)
    y = numpy.zeros(20, numpy.int64)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        _model().fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\)"):
        _model().fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="no targets"):
        _model().fit(x, verbose=0)


def test_loss_callable_must_return_a_scalar():
    model = _helpers.mlp(3).compile("sgd", lambda out, target: (out - 0).sum(1))
    with pytest.raises(ValueError, match=r"must return a scalar Tensor, got shape \(20,\)"):
        model.fit(numpy.zeros((20, 4), numpy.float32), numpy.zeros(20), verbose=0)
