"""The loops behind ``Module.compile / fit / evaluate / predict / train_on_batch``.

One training step is forward, loss, backward, optimizer step, metric update (``_train_step``);
everything else a run does (history, progress, early stopping, checkpoints, schedules) is a
callback. Before the first step the data and the loss are checked against one forward pass of
the first batch, so a wrong label range or a loss that does not fit the output is an error
naming both shapes, not a NaN an hour later.

Keras's semantics, spelled out:
    - the loss of a batch with sample weights (``sample_weight``, ``class_weight``) is
      ``mean_i(w_i * loss_i)``: weights scale the per-sample losses, the divisor stays the
      batch size;
    - the epoch's ``loss`` is the mean over its samples of the batch losses (the running value
      the progress bar shows); metrics are computed over all samples of the epoch, unweighted;
    - ``validation_split`` takes the last fraction of the arrays, before shuffling.
"""

import math

import numpy

from ember import errors
from ember.autograd import grad_mode
from ember.backend import devices, numpy_backend
from ember.nn import parameter as _parameter
from ember.train import callbacks as _callbacks
from ember.train import history as _history
from ember.train import inputs, registry


class NotCompiledError(errors.EmberError, RuntimeError):
    """fit/evaluate/train_on_batch on a model that was not compiled."""


def call_model(model, x):
    """Run the model on a batch: a tuple of inputs is passed as positional arguments, a dict
    as keyword arguments, anything else as the one argument."""
    if isinstance(x, dict):
        return model(**x)
    if isinstance(x, tuple):
        return model(*x)
    return model(x)


class _EvalMode:
    """``with _EvalMode(model):`` eval mode and no gradient recording, flags restored after."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        self.no_grad = grad_mode.no_grad()
        self.no_grad.__enter__()

    def __exit__(self, *exc):
        self.no_grad.__exit__(*exc)
        for m, flag in self.flags:
            m.__dict__["training"] = flag
        return False


def model_float_dtype(model):
    for p in model.parameters():
        if p.dtype.kind == "f":
            return p.dtype
    from ember import dtypes  # noqa: PLC0415

    return dtypes.get_default_dtype()


def model_device(model):
    for p in model.parameters():
        if not _parameter.is_lazy(p):
            return p.device
    return None


def _verbosity(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return verbose


def _shape(shape):
    return str(tuple(int(s) for s in shape))


class Trainer:
    """What ``compile`` sets up (optimizer, loss, metrics) and the loops that use them."""

    def __init__(self, model, optimizer="rmsprop", loss=None, metrics=None):
        self.model = model
        self.optimizer = registry.get_optimizer(optimizer)
        self.loss = None if loss is None else registry.get_loss(loss)
        self.metrics = registry.get_metrics(metrics)
        self._loss_name = getattr(self.loss, "name", type(self.loss).__name__)
        self._per_sample_loss = None
        self._onehot_targets = False
        self._batch_checked = False
        self._reset()

    # ---- the step ---------------------------------------------------------------------------

    def _train_step(self, x, y, w):
        output = call_model(self.model, x)
        loss = self._loss_value(output, y, w)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self._track(loss, output, y)

    def _test_step(self, x, y, w):
        output = call_model(self.model, x)
        self._track(self._loss_value(output, y, w), output, y)

    def _loss_value(self, output, y, w):
        if w is None:
            return self.loss(output, y)
        per_sample = self._per_sample(output, y)
        if per_sample.ndim > 1:
            per_sample = per_sample.reshape(per_sample.shape[0], -1).mean(1)
        return (per_sample * w).mean()

    def _track(self, loss, output, y):
        n = y.shape[0]
        self._loss_sum = self._loss_sum + loss._data * n  # stays on the device: no sync
        self._seen += n
        if self.metrics:
            out = output._data
            target = y._data
            labels = target.argmax(-1) if self._onehot_targets else target
            for metric, classify in self._metric_kinds:
                metric.update(out, labels if classify else target)

    def _reset(self):
        self._loss_sum = 0.0
        self._seen = 0
        for metric in self.metrics:
            metric.reset()
        self._metric_kinds = [(m, _is_classification(m)) for m in self.metrics]

    def _logs(self):
        logs = {"loss": float(self._loss_sum) / self._seen if self._seen else math.nan}
        for metric in self.metrics:
            value = metric.compute()
            logs[metric.name] = float(value) if numpy.ndim(value) == 0 else value
        return logs

    # ---- fit --------------------------------------------------------------------------------

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        who = "fit"
        verbose = _verbosity(verbose)
        batch_size = _check_batch_size(who, batch_size)
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise ValueError(f"fit: steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self._require_loss(who)
        train = self._source(who, x, y, sample_weight, batch_size, shuffle, class_weight)
        val = None
        if validation_split:
            if not isinstance(train, inputs.ArraySource):
                raise ValueError(
                    "fit: validation_split works on arrays; with a Dataset or DataLoader pass "
                    "validation_data instead"
                )
            train, val = train.split(validation_split)
        if validation_data is not None:
            val = self._validation_source(validation_data, validation_batch_size or batch_size)
        self._prepare_run(who, train)
        if val is not None:
            self._check_batch(who, val, "validation_data")

        steps = steps_per_epoch or train.steps
        history = _history.History()
        cbs = self._callback_list(callbacks, verbose, history,
                                  {"epochs": epochs, "steps": steps, "verbose": verbose})
        model = self.model
        model.stop_training = False
        stream = inputs.forever(train) if steps_per_epoch else None
        flags = [(m, m.training) for m in model.modules()]
        want_begin = cbs.wants("on_train_batch_begin")
        want_end = cbs.wants("on_train_batch_end")
        cbs.call("on_train_begin", None)
        epoch_logs = None
        try:
            for epoch in range(initial_epoch, epochs):
                self._reset()
                model.train()
                cbs.call("on_epoch_begin", epoch, None)
                batches = stream if stream is not None else train.epoch()
                for step in range(steps) if steps else _count():
                    batch = next(batches, None)
                    if batch is None:
                        break
                    if want_begin:
                        cbs.call("on_train_batch_begin", step, None)
                    self._train_step(*batch)
                    if want_end:
                        cbs.call("on_train_batch_end", step, self._logs())
                    if model.stop_training:
                        break
                epoch_logs = self._logs()
                if val is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._test_loop(val, cbs, validation_steps)
                    epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
                cbs.call("on_epoch_end", epoch, epoch_logs)
                if model.stop_training:
                    break
        finally:
            for m, flag in flags:
                m.__dict__["training"] = flag
        cbs.call("on_train_end", epoch_logs)
        model.history = history
        return history

    # ---- evaluate / predict -----------------------------------------------------------------

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        who = "evaluate"
        verbose = _verbosity(verbose)
        batch_size = _check_batch_size(who, batch_size)
        self._require_loss(who)
        source = self._source(who, x, y, sample_weight, batch_size, False, None)
        self._prepare_run(who, source)
        cbs = self._callback_list(callbacks, verbose, None,
                                  {"steps": steps or source.steps, "verbose": verbose})
        logs = self._test_loop(source, cbs, steps)
        return self._result(logs, return_dict)

    def _test_loop(self, source, cbs, steps):
        want_begin = cbs.wants("on_test_batch_begin")
        want_end = cbs.wants("on_test_batch_end")
        with _EvalMode(self.model):
            self._reset()
            cbs.call("on_test_begin", None)
            for step, batch in enumerate(source.epoch()):
                if steps is not None and step >= steps:
                    break
                if want_begin:
                    cbs.call("on_test_batch_begin", step, None)
                self._test_step(*batch)
                if want_end:
                    cbs.call("on_test_batch_end", step, self._logs())
            logs = self._logs()
            cbs.call("on_test_end", logs)
        return logs

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One optimizer step on one batch; returns that batch's loss (and metrics)."""
        who = "train_on_batch"
        self._require_loss(who)
        source = self._source(who, x, y, sample_weight, None, False, class_weight)
        if not self._batch_checked:  # a custom loop calls this every step: check once
            self._prepare_run(who, source)
            self._batch_checked = True
        flags = [(m, m.training) for m in self.model.modules()]
        self.model.train()
        try:
            self._reset()
            self._train_step(*source.first())
        finally:
            for m, flag in flags:
                m.__dict__["training"] = flag
        return self._result(self._logs(), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without training."""
        who = "test_on_batch"
        self._require_loss(who)
        source = self._source(who, x, y, sample_weight, None, False, None)
        if not self._batch_checked:
            self._prepare_run(who, source)
            self._batch_checked = True
        with _EvalMode(self.model):
            self._reset()
            self._test_step(*source.first())
        return self._result(self._logs(), return_dict)

    def _result(self, logs, return_dict):
        if return_dict:
            return logs
        if not self.metrics:
            return logs["loss"]
        return [logs["loss"], *(logs[m.name] for m in self.metrics)]

    # ---- setup and checks -------------------------------------------------------------------

    def _require_loss(self, who):
        if self.loss is None:
            raise NotCompiledError(
                f"{who}: the model was compiled without a loss; call "
                "model.compile(optimizer=..., loss=...) with one"
            )

    def _callback_list(self, callbacks, verbose, history, params):
        from ember.train import progress  # noqa: PLC0415  (imports tqdm)

        cbs = list(callbacks or [])
        if history is not None:
            cbs.append(history)
        if verbose:
            cbs.append(progress.ProgbarLogger(verbose))
        return _callbacks.CallbackList(cbs, self.model, params)

    def _source(self, who, x, y, sample_weight, batch_size, shuffle, class_weight):
        """A batch source for x/y (arrays) or a Dataset/DataLoader in x."""
        if x is None:
            raise ValueError(f"{who}: x is None; pass the inputs (and targets in y)")
        device = model_device(self.model)
        if inputs.is_loader(x):
            if y is not None or sample_weight is not None:
                raise ValueError(
                    f"{who}: x is a {type(x).__name__}, which yields (x, y[, sample_weight]) "
                    "itself; do not pass y or sample_weight beside it"
                )
            prepare = self._preparer(who, class_weight)
            return inputs.LoaderSource(x, batch_size, shuffle, device, prepare, who)
        xs = inputs.as_arrays(x, who, "x")
        ys = None if y is None else inputs.to_array(y, who, "y")
        ws = None if sample_weight is None else inputs.to_array(sample_weight, who,
                                                                 "sample_weight")
        inputs.count([("x", xs), ("y", ys), ("sample_weight", ws)], who)
        xs, ys, ws = self._preparer(who, class_weight)(xs, ys, ws)
        n = inputs.count([("x", xs)], who)
        return inputs.ArraySource(xs, ys, ws, batch_size or n, shuffle, device, who)

    def _validation_source(self, data, batch_size):
        who = "fit"
        if inputs.is_loader(data):
            return self._source(who, data, None, None, batch_size, False, None)
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise ValueError(
                "fit: validation_data must be (x_val, y_val), (x_val, y_val, sample_weight), "
                f"a Dataset or a DataLoader; got {type(data).__name__}"
                + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
            )
        x, y, w = (*data, None)[:3]
        return self._source(who, x, y, w, batch_size, False, None)

    def _preparer(self, who, class_weight):
        """A function that converts the arrays of the data (whole arrays, or each batch of a
        DataLoader): floating inputs to the model's dtype, targets to what the loss takes,
        class weights folded into the sample weights."""
        float_dtype = model_float_dtype(self.model)
        kind = getattr(self.loss, "target_kind", None)
        if class_weight is not None and not isinstance(class_weight, dict):
            raise TypeError(
                f"{who}: class_weight must be a dict from class index to weight, got "
                f"{type(class_weight).__name__}"
            )

        def cast_float(arr):
            return arr.astype(float_dtype) if arr.dtype.kind == "f" and arr.dtype != float_dtype \
                else arr

        def prepare(x, y, w):
            x = inputs.map_structure(cast_float, x)
            if y is not None:
                y = self._prepare_targets(who, y, kind, float_dtype)
            if w is not None:
                w = w.astype(float_dtype).reshape(len(w), *w.shape[1:])
                if w.ndim != 1:
                    raise ValueError(
                        f"{who}: sample_weight must have one weight per sample (shape (N,)), "
                        f"got shape {_shape(w.shape)}"
                    )
            if class_weight is not None:
                if y is None:
                    raise ValueError(f"{who}: class_weight needs targets y")
                cw = _class_weights(who, class_weight, y).astype(float_dtype)
                w = cw if w is None else w * cw
            return x, y, w

        return prepare

    def _prepare_targets(self, who, y, kind, float_dtype):
        if kind == registry.INDEX:
            if y.dtype.kind == "f":
                if not bool((y == y.round()).all()):
                    raise ValueError(
                        f"{who}: loss {self._loss_name!r} takes integer class labels, but y has "
                        "fractional values; for probability targets use "
                        "'categorical_crossentropy'"
                    )
            if y.dtype.kind == "b" or y.dtype.kind == "f" or y.dtype != numpy.int64:
                y = y.astype(numpy.int64)
            return y
        if kind in (registry.SAME, registry.PROBS):
            return y.astype(float_dtype) if y.dtype != float_dtype else y
        return y.astype(float_dtype) if y.dtype.kind == "f" and y.dtype != float_dtype else y

    def _prepare_run(self, who, source):
        """Build a lazy model and bind the optimizer (first run), then check the first batch
        against the loss; label ranges are checked over all of y when it is an array."""
        x, y, w = source.first()
        with _EvalMode(self.model):
            output = call_model(self.model, x)
        from ember.train import summary  # noqa: PLC0415

        self.model.__dict__["_input_spec"] = summary.input_spec(x)
        if not self.optimizer.is_bound:
            params = [p for p in self.model.parameters() if p.requires_grad]
            if not params:
                raise ValueError(f"{who}: the model has no trainable parameters to optimize")
            self.optimizer.bind(params)
        self._check_batch(who, source, "y", (x, y, w), output)

    def _check_batch(self, who, source, y_name, batch=None, output=None):
        x, y, w = source.first() if batch is None else batch
        if y is None:
            raise ValueError(
                f"{who}: no targets; pass y (or a Dataset/DataLoader yielding (x, y)) to "
                "compute the loss"
            )
        if output is None:
            with _EvalMode(self.model):
                output = call_model(self.model, x)
        all_y = source.y if isinstance(source, inputs.ArraySource) else y._data
        self._check_loss_fits(who, output, y, all_y, y_name)
        try:
            with _EvalMode(self.model):
                value = self._loss_value(output, y, w)
        except errors.EmberError as exc:
            raise type(exc)(f"{who}: the loss {self._loss_name!r} failed on the first batch "
                            f"(output {_describe(output)}, target {_describe(y)}): {exc}") from exc
        if not hasattr(value, "_data") or value.ndim != 0:
            raise ValueError(
                f"{who}: the loss must return a scalar Tensor, got {_describe(value)}; reduce "
                "it (e.g. .mean())"
            )
        if self.metrics and not hasattr(output, "_data"):
            raise ValueError(
                f"{who}: metrics need a model with one output Tensor, got {_describe(output)}"
            )
        self._onehot_targets = (
            hasattr(output, "_data") and getattr(self.loss, "target_kind", None) != registry.SAME
            and output.ndim >= 2 and output.shape[-1] > 1 and tuple(y.shape) == tuple(output.shape)
        )

    def _check_loss_fits(self, who, output, y, all_y, y_name):
        kind = getattr(self.loss, "target_kind", None)
        name = self._loss_name
        if kind is None:
            return
        if not hasattr(output, "_data"):
            raise ValueError(
                f"{who}: loss {name!r} needs the model to return one Tensor, got "
                f"{_describe(output)}; pass a loss callable for several outputs"
            )
        out_shape, y_shape = tuple(output.shape), tuple(y.shape)
        if out_shape[:1] != y_shape[:1]:
            raise ValueError(
                f"{who}: the model returned {out_shape[0] if out_shape else 'a scalar'} rows "
                f"(output {_shape(out_shape)}) for a batch of {y_shape[0]} targets"
            )
        if kind == registry.INDEX:
            if y_shape == out_shape and name == "cross_entropy":
                return  # class probabilities, as F.cross_entropy accepts
            expected = out_shape[:1] + out_shape[2:]
            if len(out_shape) < 2 or y_shape not in (expected, expected + (1,)):
                hint = ("; for one-hot targets use 'categorical_crossentropy'"
                        if y_shape == out_shape else "")
                raise ValueError(
                    f"{who}: loss {name!r} expects outputs (N, C, ...) and class labels "
                    f"(N, ...), got output {_shape(out_shape)} and target {_shape(y_shape)}"
                    + hint
                )
            lo, hi = int(all_y.min()), int(all_y.max())
            classes = out_shape[1]
            if hi >= classes:
                raise ValueError(
                    f"{who}: labels go up to {hi} but the model outputs {classes} classes "
                    f"(output shape {_shape(out_shape)}); check num classes or the loss"
                )
            if lo < 0:
                raise ValueError(f"{who}: labels must be >= 0, but {y_name} holds {lo}")
        elif kind == registry.PROBS:
            if y_shape != out_shape:
                raise ValueError(
                    f"{who}: loss {name!r} expects one-hot (or probability) targets shaped like "
                    f"the output, got output {_shape(out_shape)} and target {_shape(y_shape)}; "
                    "for class labels use 'sparse_categorical_crossentropy'"
                )
        elif y_shape != out_shape and not (out_shape == y_shape + (1,)):
            raise ValueError(
                f"{who}: loss {name!r} expects outputs and targets of the same shape, got "
                f"output {_shape(out_shape)} and target {_shape(y_shape)}"
            )

    def _per_sample(self, output, y):
        if self._per_sample_loss is None:
            self._per_sample_loss = _per_sample_fn(self.loss)
        return self._per_sample_loss(output, y)


# ---- predict (needs no compile) ---------------------------------------------------------


def predict(model, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
    """The model's outputs for ``x``, computed in batches in eval mode without gradients, as
    NumPy arrays (a tuple or dict of them for a model with several outputs)."""
    who = "predict"
    verbose = _verbosity(verbose)
    batch_size = _check_batch_size(who, batch_size)
    device = model_device(model)
    float_dtype = model_float_dtype(model)

    def cast(arr):
        return arr.astype(float_dtype) if arr.dtype.kind == "f" and arr.dtype != float_dtype \
            else arr

    if inputs.is_loader(x):
        source = inputs.LoaderSource(
            x, batch_size, False, device,
            lambda xs, ys, ws: (inputs.map_structure(cast, xs), None, None), who)
    else:
        xs = inputs.map_structure(cast, inputs.as_arrays(x, who, "x"))
        source = inputs.ArraySource(xs, None, None, batch_size, False, device, who)
    from ember.train import progress  # noqa: PLC0415

    cbs = list(callbacks or [])
    if verbose:
        cbs.append(progress.ProgbarLogger(verbose))
    cbs = _callbacks.CallbackList(cbs, model, {"steps": steps or source.steps,
                                               "verbose": verbose})
    want_end = cbs.wants("on_predict_batch_end")
    parts = []
    with _EvalMode(model):
        cbs.call("on_predict_begin", None)
        for step, (xb, _, _) in enumerate(source.epoch()):
            if steps is not None and step >= steps:
                break
            cbs.call("on_predict_batch_begin", step, None)
            out = call_model(model, xb)
            parts.append(inputs.map_structure(_to_host, out))
            if want_end:
                cbs.call("on_predict_batch_end", step, {"outputs": out})
        cbs.call("on_predict_end", None)
    if not parts:
        raise ValueError(f"{who}: x holds no samples")
    return _concatenate(parts)


def _to_host(value):
    return value.numpy(force=True) if hasattr(value, "numpy") else numpy.asarray(value)


def _concatenate(parts):
    first = parts[0]
    if isinstance(first, dict):
        return {k: _concatenate([p[k] for p in parts]) for k in first}
    if isinstance(first, tuple):
        return tuple(_concatenate([p[i] for p in parts]) for i in range(len(first)))
    return numpy.concatenate(parts, axis=0)


# ---- small helpers --------------------------------------------------------------------------


def _count():
    step = 0
    while True:
        yield step
        step += 1


def _check_batch_size(who, batch_size):
    if batch_size is None:
        return 32
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"{who}: batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def _has_lazy(model):
    return any(_parameter.is_lazy(p) for p in model.parameters())


def _is_classification(metric):
    from ember import metrics  # noqa: PLC0415

    return isinstance(metric, (metrics.Accuracy, metrics.ConfusionMatrix, metrics.AUROC))


def _describe(value):
    if hasattr(value, "shape"):
        return f"shape {_shape(value.shape)}"
    return type(value).__name__


def _class_weights(who, class_weight, y):
    """Per-sample weights from a {class: weight} dict and targets (labels or one-hot)."""
    labels = y.argmax(-1) if y.ndim >= 2 and y.shape[-1] > 1 else y.reshape(len(y))
    labels = numpy_backend.to_host(labels).round().astype(numpy.int64)
    classes = numpy.unique(labels)
    missing = [int(c) for c in classes if int(c) not in class_weight]
    if missing:
        raise ValueError(
            f"{who}: class_weight has no weight for class(es) {missing}; give every class in y "
            "a weight"
        )
    table = numpy.ones(int(max(max(class_weight), classes.max())) + 1, dtype=numpy.float64)
    for c, weight in class_weight.items():
        table[int(c)] = float(weight)
    return devices.get_array_module(y).asarray(table[labels])


def _per_sample_fn(loss):
    """The loss with one value per sample, for sample and class weights."""
    if isinstance(loss, registry.Loss):
        return lambda output, target: loss(output, target, reduction="none")
    if hasattr(loss, "reduction"):  # an nn loss module
        import copy  # noqa: PLC0415

        unreduced = copy.copy(loss)
        unreduced.reduction = "none"
        return unreduced
    import inspect  # noqa: PLC0415

    try:
        takes_reduction = "reduction" in inspect.signature(loss).parameters
    except (TypeError, ValueError):
        takes_reduction = False
    if takes_reduction:
        return lambda output, target: loss(output, target, reduction="none")
    raise ValueError(
        "sample_weight and class_weight need a loss that gives one value per sample: pass a "
        "loss name, an nn loss module, or a callable that takes reduction='none'"
    )
