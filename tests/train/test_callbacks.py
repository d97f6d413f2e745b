"""Each callback's behaviour, driven by scripted logs or by short fits."""

import csv
import math

import numpy
import pytest

import ember
from ember import nn, optim
from ember.train import callbacks
from tests.train import _helpers


def _fit_with_scripted(values, callback, key="val_loss", model=None):
    """Run fit for len(values) epochs on tiny data; a callback placed first writes
    ``values[epoch]`` into the logs under ``key`` before ``callback`` sees them."""
    model = model or _helpers.mlp().compile(optim.SGD(lr=0.1), "cross_entropy")
    x, y = _helpers.blobs(16)

    class Script(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs[key] = values[epoch]

    history = model.fit(x, y, epochs=len(values), verbose=0, callbacks=[Script(), callback])
    return model, history


def test_callback_base_has_keras_hooks_and_gets_model_and_params():
    calls = []
    x, y = _helpers.blobs(32)
    model = _helpers.mlp().compile("sgd", "cross_entropy")

    class Recorder(callbacks.Callback):
        def on_train_begin(self, logs=None):
            calls.append(("train_begin", self.model is model, self.params["epochs"],
                          self.params["steps"]))

    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[Recorder()])
    assert calls == [("train_begin", True, 2, 2)]


def test_lambda_callback_hooks_are_called_in_order():
    events = []
    hooks = {name: (lambda name: lambda *args: events.append(
        (name,) + tuple(a for a in args if isinstance(a, int))))(name)
        for name in ("on_train_begin", "on_epoch_begin", "on_train_batch_begin",
                     "on_train_batch_end", "on_test_begin", "on_test_batch_end", "on_test_end",
                     "on_epoch_end", "on_train_end")}
    model = _helpers.mlp().compile("sgd", "cross_entropy")
    x, y = _helpers.blobs(8)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=(x[:4], y[:4]),
              callbacks=[callbacks.LambdaCallback(**hooks)])
    assert events == [
        ("on_train_begin",), ("on_epoch_begin", 0),
        ("on_train_batch_begin", 0), ("on_train_batch_end", 0),
        ("on_train_batch_begin", 1), ("on_train_batch_end", 1),
        ("on_test_begin",), ("on_test_batch_end", 0), ("on_test_end",),
        ("on_epoch_end", 0), ("on_train_end",),
    ]
    with pytest.raises(TypeError, match="unknown hook 'on_epoch_start'"):
        callbacks.LambdaCallback(on_epoch_start=print)


def test_evaluate_and_predict_call_their_hooks():
    events = []
    cb = callbacks.LambdaCallback(
        on_test_begin=lambda logs: events.append("test_begin"),
        on_test_end=lambda logs: events.append(("test_end", sorted(logs))),
        on_predict_batch_end=lambda batch, logs: events.append(("predict_batch", batch)))
    model = _helpers.mlp().compile("sgd", "cross_entropy", ["accuracy"])
    x, y = _helpers.blobs(10)
    model.evaluate(x, y, verbose=0, callbacks=[cb])
    model.predict(x, batch_size=5, verbose=0, callbacks=[cb])
    assert events == ["test_begin", ("test_end", ["accuracy", "loss"]), ("predict_batch", 0),
                      ("predict_batch", 1)]


# ---- EarlyStopping --------------------------------------------------------------------------


def test_early_stopping_patience():
    stop = callbacks.EarlyStopping(patience=2)
    _, history = _fit_with_scripted([1.0, 0.8, 0.9, 0.85, 0.7, 0.6], stop)
    # best 0.8 at epoch 1; epochs 2 and 3 do not improve: stop after epoch 3.
    assert history.epoch == [0, 1, 2, 3]
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1 and stop.best == 0.8


def test_early_stopping_min_delta_and_mode_max():
    stop = callbacks.EarlyStopping(monitor="val_accuracy", patience=1, min_delta=0.05)
    _, history = _fit_with_scripted([0.5, 0.6, 0.62, 0.9], stop, key="val_accuracy")
    assert stop.mode == "max"
    assert history.epoch == [0, 1, 2]  # +0.02 is below min_delta: no improvement


def test_early_stopping_restores_the_best_weights():
    model = _helpers.mlp().compile(optim.SGD(lr=0.5), "cross_entropy")
    snapshots = []
    keep = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(
        {k: v.numpy().copy() for k, v in model.state_dict().items()}))
    stop = callbacks.EarlyStopping(patience=2, restore_best_weights=True)

    class Script(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = [1.0, 0.5, 0.7, 0.8, 0.1][epoch]

    x, y = _helpers.blobs(16)
    model.fit(x, y, epochs=5, verbose=0, callbacks=[Script(), keep, stop])
    assert stop.stopped_epoch == 3
    final = model.state_dict()
    for key, value in snapshots[1].items():  # the weights after epoch 1, the best one
        numpy.testing.assert_array_equal(final[key].numpy(), value)
    assert not numpy.array_equal(final["0.weight"].numpy(), snapshots[3]["0.weight"])


def test_early_stopping_warns_for_a_missing_key():
    model = _helpers.mlp().compile("sgd", "cross_entropy")
    x, y = _helpers.blobs(8)
    with pytest.warns(UserWarning, match=r"'val_loss' is not in the logs \(available: loss\)"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping()])


# ---- ModelCheckpoint ------------------------------------------------------------------------


def test_model_checkpoint_save_best_only(tmp_path):
    path = tmp_path / "best.safetensors"
    saved = []
    ckpt = callbacks.ModelCheckpoint(str(path), save_best_only=True, save_weights_only=True)

    class Watch(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved.append(path.stat().st_mtime_ns if path.exists() else None)
            if path.exists():
                self.last = {k: v.numpy() for k, v in ember.load(str(path)).items()}

    watch = Watch()
    model, _ = _fit_with_scripted([0.9, 0.5, 0.7, 0.4, 0.6], _Chain(ckpt, watch))
    written = [i for i in range(5) if saved[i] is not None and (i == 0 or saved[i] != saved[i - 1])]
    assert written == [0, 1, 3]
    loaded = ember.load(str(path))
    fresh = _helpers.mlp()
    fresh.load_state_dict(loaded)  # a lazy model takes the stored shapes
    assert ckpt.best == 0.4


class _Chain(callbacks.Callback):
    """Runs two callbacks in order inside one (so Watch sees the file ckpt just wrote)."""

    def __init__(self, *inner):
        super().__init__()
        self.inner = inner

    def set_model(self, model):
        for cb in self.inner:
            cb.set_model(model)

    def set_params(self, params):
        for cb in self.inner:
            cb.set_params(params)

    def on_train_begin(self, logs=None):
        for cb in self.inner:
            cb.on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        for cb in self.inner:
            cb.on_epoch_end(epoch, logs)


def test_model_checkpoint_every_epoch_with_formatted_names(tmp_path):
    model = _helpers.mlp().compile("sgd", "cross_entropy")
    x, y = _helpers.blobs(16)
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{loss:.2f}.safetensors")
    model.fit(x, y, epochs=3, verbose=0, callbacks=[callbacks.ModelCheckpoint(pattern,
                                                                              monitor="loss")])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert [f[:7] for f in files] == ["ckpt-01", "ckpt-02", "ckpt-03"]
    state = ember.io.load_checkpoint(str(tmp_path / files[-1]), model=_helpers.mlp())
    assert state["epoch"] == 3
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp files left


# ---- learning rate --------------------------------------------------------------------------


def _lrs_per_epoch(callback, epochs, optimizer=None):
    model = _helpers.mlp().compile(optimizer or optim.SGD(lr=0.1), "cross_entropy")
    lrs = []
    seen = callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: lrs.append(model.optimizer.param_groups[0]["lr"]))
    x, y = _helpers.blobs(8)
    history = model.fit(x, y, epochs=epochs, verbose=0, callbacks=[callback, seen])
    return lrs, history


def test_learning_rate_scheduler_with_a_function():
    schedule = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    lrs, history = _lrs_per_epoch(schedule, 3)
    assert lrs == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert history.history["learning_rate"] == pytest.approx(lrs)


def test_learning_rate_scheduler_wraps_ember_schedulers():
    lrs, _ = _lrs_per_epoch(callbacks.LearningRateScheduler(
        optim.lr_scheduler.StepLR, step_size=2, gamma=0.5), 5)
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    opt = optim.SGD(lr=0.1)
    model = _helpers.mlp()
    model.build(ember.zeros(1, 4))
    opt.bind(model.parameters())
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    lrs, _ = _lrs_per_epoch(callbacks.LearningRateScheduler(sched), 3, optimizer=opt)
    assert lrs == pytest.approx([0.1, 0.05, 0.025])


def test_reduce_lr_on_plateau():
    cb = callbacks.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.02)
    values = [1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.94, 0.96]
    model = _helpers.mlp().compile(optim.SGD(lr=0.1), "cross_entropy")
    lrs = []
    seen = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: lrs.append(model.optimizer.param_groups[0]["lr"]))
    _fit_with_scripted(values, _Chain(cb, seen), model=model)
    # Best 0.9 at epoch 1; epochs 2 and 3 are bad -> cut to 0.05 after epoch 3; 4 and 5 are
    # bad -> 0.025; 6 and 7 -> 0.0125 is below min_lr, so 0.02.
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02])


# ---- logging and stopping -------------------------------------------------------------------


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    model = _helpers.mlp().compile("sgd", "cross_entropy", ["accuracy"])
    x, y = _helpers.blobs(32)
    history = model.fit(x, y, epochs=3, verbose=0, validation_split=0.25,
                        callbacks=[callbacks.CSVLogger(str(path))])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert [float(r[2]) for r in rows[1:]] == pytest.approx(history.history["loss"])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(str(path), append=True)])
    rows = list(csv.reader(path.open()))
    assert len(rows) == 5 and rows[4][0] == "0"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan():
    model = nn.Sequential(nn.Linear(4, 3)).compile(optim.SGD(lr=1e30), "mse")
    x = numpy.full((64, 4), 1e10, numpy.float32)
    y = numpy.zeros((64, 3), numpy.float32)
    batches = []
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[
        callbacks.TerminateOnNaN(),
        callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(logs["loss"]))])
    assert not math.isfinite(batches[-1]) and len(batches) < 8
    assert history.epoch == [0]
