"""Callbacks: code that ``fit``, ``evaluate`` and ``predict`` call at fixed points (Keras's
hooks and names).

A callback subclasses ``Callback`` and overrides the hooks it needs. Each hook gets a ``logs``
dict: the running ``"loss"`` and metrics during an epoch; at ``on_epoch_end`` the epoch's
values plus ``"val_loss"`` and ``"val_<metric>"`` when there is validation data. A callback
reaches the model as ``self.model`` and may stop training by setting
``self.model.stop_training = True``.

    class PrintLoss(ember.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            print(epoch, logs["loss"])

    model.fit(x, y, epochs=5, callbacks=[PrintLoss(), ember.callbacks.EarlyStopping(patience=2)])
"""

import csv
import math
import os
import warnings

from ember import errors
from ember.io import serialization
from ember.train import history as _history

__all__ = [
    "Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
    "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger", "TerminateOnNaN",
    "LambdaCallback", "TensorBoard",
]

_HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end",
)

Callback = _history.Callback
History = _history.History


def __getattr__(name):
    # ProgbarLogger lives in progress.py, which imports tqdm; load it only when asked for.
    if name == "ProgbarLogger":
        from ember.train import progress  # noqa: PLC0415

        return progress.ProgbarLogger
    raise AttributeError(f"module 'ember.callbacks' has no attribute {name!r}")


class CallbackList:
    """Calls a hook on every callback in order. Batch hooks go only to the callbacks that
    override them, so an unused hook costs one empty loop per step."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be ember.callbacks.Callback instances, got "
                    f"{type(cb).__name__}"
                )
            cb.set_model(model)
            cb.set_params(params)
        self._by_hook = {
            hook: [getattr(cb, hook) for cb in self.callbacks
                   if getattr(type(cb), hook) is not getattr(Callback, hook)
                   or hook in cb.__dict__]
            for hook in _HOOKS
        }

    def wants(self, hook):
        """True if some callback overrides ``hook`` (so the caller must build its logs)."""
        return bool(self._by_hook[hook])

    def call(self, hook, *args):
        for fn in self._by_hook[hook]:
            fn(*args)


# ---- helpers shared by the monitoring callbacks ---------------------------------------------

_HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1", "r2")


def _resolve_mode(who, mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.lower().removeprefix("val_")
    return "max" if any(k in name for k in _HIGHER_IS_BETTER) else "min"


def _monitored(who, monitor, logs):
    """The monitored value from ``logs``, or None (with a warning naming what is there)."""
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(
            f"{who}: the monitored value {monitor!r} is not in the logs (available: "
            f"{', '.join(sorted(logs or {})) or 'none'}); pass monitor= one of those, or "
            "validation data for a 'val_' value",
            stacklevel=3,
        )
        return None
    return float(value)


def _improved(mode, value, best, min_delta):
    """True if ``value`` beats ``best`` by more than ``min_delta`` in the direction ``mode``."""
    if mode == "min":
        return value < best - abs(min_delta)
    return value > best + abs(min_delta)


def _optimizer(who, model):
    opt = getattr(model, "optimizer", None)
    if opt is None:
        raise errors.EmberError(f"{who}: the model has no optimizer; call model.compile first")
    return opt


def _snapshot(model):
    """A copy of every parameter and buffer, to restore with ``load_state_dict``."""
    return {k: v.clone() for k, v in model.state_dict().items()}


# ---- stopping ------------------------------------------------------------------------------


class EarlyStopping(Callback):
    """Stop training once ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: the logs key to watch ("val_loss", "val_accuracy", "loss", ...).
        min_delta: a change smaller than this does not count as an improvement.
        patience: epochs without improvement before stopping.
        mode: "min", "max", or "auto" (max for accuracy-like names, else min).
        baseline: the value to beat at first; training stops if it is never beaten within
            ``patience`` epochs.
        restore_best_weights: when training ends, load the weights of the best epoch (if the
            last epoch was not the best).
        start_from_epoch: epochs to wait before watching (warm-up).

    After training, ``stopped_epoch`` is the epoch training stopped at (0 if it ran through)
    and ``best_epoch`` the epoch with the best value.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.mode = _resolve_mode("EarlyStopping", mode, monitor)
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None
        self._last_epoch = None
        self.best = math.inf if self.mode == "min" else -math.inf
        self._reference = self.best if self.baseline is None else self.baseline

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch
        value = _monitored("EarlyStopping", self.monitor, logs)
        if value is None or epoch < self.start_from_epoch:
            return
        self.wait += 1
        if _improved(self.mode, value, self._reference, self.min_delta):
            self.best = self._reference = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = _snapshot(self.model)
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if (self.restore_best_weights and self.best_weights is not None
                and self._last_epoch != self.best_epoch):
            if self.verbose:
                print(f"Restoring the weights of epoch {self.best_epoch + 1}, the best one")
            self.model.load_state_dict(self.best_weights)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


# ---- checkpoints and logs ------------------------------------------------------------------


class ModelCheckpoint(Callback):
    """Save the model during training, atomically (a crash while saving keeps the last file).

    Args:
        filepath: where to write; may hold ``{epoch}`` and logs keys as format fields, e.g.
            ``"ckpt/model-{epoch:02d}-{val_loss:.3f}.safetensors"`` (``epoch`` counts from 1).
        monitor, mode: the value that decides "best" (see EarlyStopping).
        save_best_only: write only when ``monitor`` improves on the best so far.
        save_weights_only: write the model's state_dict with ``ember.save`` (load it with
            ``model.load_state_dict(ember.load(path))``); otherwise write a training
            checkpoint (model, optimizer, epoch) with ``ember.io.save_checkpoint``.
        save_freq: "epoch", or a number of batches between saves.
        initial_value_threshold: the value to beat for the first save (save_best_only).

    Files are safetensors with JSON metadata: nothing in them can run code when loaded.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(
                f"ModelCheckpoint: save_freq must be 'epoch' or a positive int, got {save_freq!r}"
            )
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = _resolve_mode("ModelCheckpoint", mode, monitor)
        self.save_freq = save_freq
        worst = math.inf if self.mode == "min" else -math.inf
        self.best = worst if initial_value_threshold is None else initial_value_threshold
        self._batches = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches % self.save_freq == 0:
            self._save(self._epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def _save(self, epoch, logs):
        logs = dict(logs or {})
        if self.save_best_only:
            value = _monitored("ModelCheckpoint", self.monitor, logs)
            if value is None or not _improved(self.mode, value, self.best, 0.0):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5g} to "
                      f"{value:.5g}, saving the model")
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            serialization.save(self.model.state_dict(), path)
        else:
            from ember.io import checkpoint  # noqa: PLC0415

            checkpoint.save_checkpoint(path, model=self.model,
                                       optimizer=getattr(self.model, "optimizer", None),
                                       epoch=epoch + 1)
        self.last_saved = path


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file (a header row first).

    Args:
        filename: the CSV file.
        separator: the field separator.
        append: add to an existing file (no second header) instead of overwriting it.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self._file = None
        self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        has_rows = self.append and os.path.exists(self.filename) and os.path.getsize(
            self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer = None
        self._keys = None
        self._header_written = has_rows

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            self._writer = csv.writer(self._file, delimiter=self.sep)
            if not self._header_written:
                self._writer.writerow(["epoch", *self._keys])
        self._writer.writerow([epoch, *(_csv_value(logs.get(k, "NA")) for k in self._keys)])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


def _csv_value(value):
    return f"{value:.10g}" if isinstance(value, float) else value


# ---- learning rate -------------------------------------------------------------------------


def _set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr


class LearningRateScheduler(Callback):
    """Change the learning rate every epoch.

    ``schedule`` is one of:

    - a function ``schedule(epoch, lr) -> new_lr`` (Keras), called before each epoch with the
      current lr of the first param group; the result is set in every group;
    - an ember scheduler (``ember.optim.lr_scheduler.StepLR(model.optimizer, 10)``), stepped
      after each epoch, as in a PyTorch loop;
    - a scheduler class and its arguments, ``LearningRateScheduler(StepLR, step_size=10)``,
      built on the model's optimizer when training begins (handy before ``compile`` binds it).

    The epoch's lr is added to the logs as ``"learning_rate"``.
    """

    def __init__(self, schedule, verbose=0, **scheduler_kwargs):
        super().__init__()
        from ember.optim import lr_scheduler  # noqa: PLC0415

        self._scheduler_types = (lr_scheduler.LRScheduler, lr_scheduler.ReduceLROnPlateau)
        is_class = isinstance(schedule, type) and issubclass(schedule, self._scheduler_types)
        if scheduler_kwargs and not is_class:
            raise TypeError(
                "LearningRateScheduler: keyword arguments are for building a scheduler class, "
                f"got them with {type(schedule).__name__}"
            )
        if not (is_class or callable(schedule) or isinstance(schedule, self._scheduler_types)):
            raise TypeError(
                "LearningRateScheduler: schedule must be a function (epoch, lr) -> lr, an "
                f"ember.optim.lr_scheduler scheduler or scheduler class, got {schedule!r}"
            )
        self.schedule = schedule
        self.scheduler_kwargs = scheduler_kwargs
        self.verbose = verbose
        self.scheduler = schedule if isinstance(schedule, self._scheduler_types) else None

    def on_train_begin(self, logs=None):
        if isinstance(self.schedule, type):
            self.scheduler = self.schedule(_optimizer("LearningRateScheduler", self.model),
                                           **self.scheduler_kwargs)

    def on_epoch_begin(self, epoch, logs=None):
        if self.scheduler is not None:
            return
        opt = _optimizer("LearningRateScheduler", self.model)
        lr = self.schedule(epoch, opt.param_groups[0]["lr"])
        if not isinstance(lr, (int, float)) or not math.isfinite(lr):
            raise ValueError(
                f"LearningRateScheduler: the schedule returned {lr!r} for epoch {epoch}; it "
                "must return a finite number"
            )
        _set_lr(opt, float(lr))
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting the learning rate to {lr}")

    def on_epoch_end(self, epoch, logs=None):
        opt = _optimizer("LearningRateScheduler", self.model)
        if logs is not None:
            logs["learning_rate"] = float(opt.param_groups[0]["lr"])
        if self.scheduler is not None:
            self.scheduler.step()


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (Keras's counting: the cut comes on the ``patience``-th epoch
    without improvement), then wait ``cooldown`` epochs before counting again.

    Args:
        monitor, mode, min_delta: what "improved" means (see EarlyStopping).
        factor: the multiplier, in (0, 1).
        patience: epochs without improvement before a cut.
        cooldown: epochs after a cut during which no bad epochs are counted.
        min_lr: the lr never goes below this.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__()
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = _resolve_mode("ReduceLROnPlateau", mode, monitor)
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.cooldown_counter = 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        opt = _optimizer("ReduceLROnPlateau", self.model)
        if logs is not None:
            logs["learning_rate"] = float(opt.param_groups[0]["lr"])
        value = _monitored("ReduceLROnPlateau", self.monitor, logs)
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if _improved(self.mode, value, self.best, self.min_delta):
            self.best = value
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        for group in opt.param_groups:
            old = group["lr"]
            new = max(old * self.factor, self.min_lr)
            if old - new > 1e-12 * max(old, 1.0):
                group["lr"] = new
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing the learning rate "
                          f"to {new:.4g}")
        self.cooldown_counter = self.cooldown
        self.wait = 0


# ---- small ones ----------------------------------------------------------------------------


class LambdaCallback(Callback):
    """A callback from functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``.

    Any hook name (``on_train_begin``, ``on_train_batch_end``, ``on_test_end``, ...) may be
    given; each function takes the same arguments as the hook.
    """

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if name not in _HOOKS:
                raise TypeError(
                    f"LambdaCallback: unknown hook {name!r}; hooks are {', '.join(_HOOKS)}"
                )
            if fn is not None:
                setattr(self, name, fn)


class TensorBoard(Callback):
    """Write the epoch logs to TensorBoard event files under ``log_dir``.

    Training values go to ``log_dir/train`` and validation values to ``log_dir/validation``,
    tagged ``epoch_loss``, ``epoch_accuracy``, ... (so TensorBoard draws the two runs on one
    chart). With ``update_freq`` an int, the running batch values are also written every that
    many batches (tags ``batch_loss``, ...).

    Needs ``ember.utils.tensorboard.SummaryWriter`` (``pip install 'ember[tensorboard]'``).
    """

    def __init__(self, log_dir="logs", update_freq="epoch"):
        super().__init__()
        if update_freq != "epoch" and not (isinstance(update_freq, int) and update_freq > 0):
            raise ValueError(
                f"TensorBoard: update_freq must be 'epoch' or a positive int, got {update_freq!r}"
            )
        self.log_dir = os.fspath(log_dir)
        self.update_freq = update_freq
        self._writers = {}
        self._step = 0

    def _writer(self, which):
        if which not in self._writers:
            from ember.utils import tensorboard  # noqa: PLC0415

            self._writers[which] = tensorboard.SummaryWriter(os.path.join(self.log_dir, which))
        return self._writers[which]

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self.update_freq == "epoch" or self._step % self.update_freq:
            return
        for key, value in (logs or {}).items():
            self._writer("train").add_scalar("batch_" + key, value, self._step)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            which, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._writer(which).add_scalar("epoch_" + name, value, epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
