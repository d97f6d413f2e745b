"""``SummaryWriter``: write ember Tensors, NumPy arrays and numbers to TensorBoard event files.

PyTorch's ``torch.utils.tensorboard.SummaryWriter`` with the same names and arguments, built
on tensorboardX, which owns the event-file format (records, CRCs, protobufs, PNG images,
histogram buckets). This file turns ember values into NumPy arrays, checks them so a mistake
gets a clear message, and converts a traced ember ``Graph`` into TensorBoard's ``GraphDef``.

Events are written by tensorboardX's synchronous ``EventsWriter``, not by its
``SummaryWriter``: the latter hands events to a background thread and its ``flush()`` does not
wait for that thread, so data "flushed" at the end of an epoch could still be missing from
the file. Here ``flush()`` means on disk.

Start TensorBoard on the folder to look at the result: ``tensorboard --logdir runs``.

Needs tensorboardX: ``pip install 'ember[tensorboard]'``; images also need Pillow.
"""

import datetime
import itertools
import numbers
import os
import socket
import sys
import time

import numpy

from ember import errors

_FILE_COUNTER = itertools.count()
_INSTALL_HINT = "pip install 'ember[tensorboard]' (or pip install tensorboardX)"


class _EventFile:
    """One event file: events are buffered and written out every ``max_queue`` events or
    ``flush_secs`` seconds (checked at each write), and at ``flush``/``close``."""

    def __init__(self, tbx, folder, max_queue, flush_secs, filename_suffix):
        os.makedirs(folder, exist_ok=True)
        # tensorboardX names a file by the second and the host only, so two files opened in
        # one second in one folder would collide; PyTorch adds the process id and a counter.
        unique = f".{os.getpid()}.{next(_FILE_COUNTER)}{filename_suffix}"
        self._events = tbx.event_file_writer.EventsWriter(os.path.join(folder, "events"), unique)
        self._event_pb2 = tbx.proto.event_pb2
        self._max_queue = max_queue
        self._flush_secs = flush_secs
        self._pending = 0
        self._last_flush = time.time()

    def add(self, step=None, walltime=None, **fields):
        event = self._event_pb2.Event(wall_time=time.time() if walltime is None else walltime,
                                      **fields)
        if step is not None:
            event.step = step
        self._events.write_event(event)
        self._pending += 1
        if self._pending >= self._max_queue or time.time() - self._last_flush >= self._flush_secs:
            self.flush()

    def flush(self):
        self._events.flush()
        self._pending = 0
        self._last_flush = time.time()

    def close(self):
        self._events.close()


def _tensorboardx():
    """Import tensorboardX lazily, without letting it import torch.

    tensorboardX's writer does ``try: import torch`` at import time only to name a type in
    its annotations; that costs seconds where torch is installed, and ember never loads torch.
    A ``None`` entry in ``sys.modules`` makes that import fail fast, as if torch were absent;
    the entry is removed again at once, so a later ``import torch`` by the user works.
    """
    if "tensorboardX.writer" in sys.modules:
        return sys.modules["tensorboardX"]
    blocked = "torch" not in sys.modules
    if blocked:
        sys.modules["torch"] = None
    try:
        import tensorboardX  # noqa: PLC0415
        import tensorboardX.event_file_writer  # noqa: PLC0415,F401
        import tensorboardX.summary  # noqa: PLC0415,F401
    except ImportError as exc:
        raise ImportError(f"ember.utils.tensorboard needs tensorboardX: {_INSTALL_HINT}") from exc
    finally:
        if blocked and sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return tensorboardX


def _array(value, who, tag):
    """An ember Tensor (on any device), NumPy array, list or number as a host NumPy array."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(
            f"SummaryWriter.{who}({tag!r}): expected a Tensor, a NumPy array or a number, "
            f"got {type(value).__name__}"
        )
    data = getattr(value, "_data", value)  # an ember Tensor's array, host or device
    if hasattr(data, "get") and not isinstance(data, numpy.ndarray):
        data = data.get()  # a CuPy array: copy to the host
    try:
        arr = numpy.asarray(data)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"SummaryWriter.{who}({tag!r}): cannot read {type(value).__name__} as an array"
        ) from exc
    if arr.dtype == object or not (arr.dtype.kind in "biuf"):
        raise TypeError(
            f"SummaryWriter.{who}({tag!r}): expected numbers, got an array of dtype {arr.dtype}"
        )
    return arr


def _scalar(value, who, tag):
    arr = _array(value, who, tag)
    if arr.size != 1:
        raise errors.ShapeError(
            f"SummaryWriter.{who}({tag!r}): a scalar needs one value, got shape "
            f"{errors.shape_str(arr.shape)}; log a reduction such as tensor.mean()"
        )
    return float(arr.reshape(()))


def _step(global_step):
    """None or an int: steps are integers in the event format."""
    if global_step is None:
        return None
    if isinstance(global_step, bool) or not isinstance(global_step, numbers.Integral):
        step = _array(global_step, "global_step", "step")
        if step.size != 1 or step.dtype.kind not in "iu":
            raise TypeError(f"SummaryWriter: global_step must be an int, got {global_step!r}")
        return int(step.reshape(()))
    return int(global_step)


def _check_tag(tag, who):
    if not isinstance(tag, str) or not tag:
        raise TypeError(f"SummaryWriter.{who}: tag must be a non-empty str, got {tag!r}")


class SummaryWriter:
    """Writes entries to event files in ``log_dir`` for TensorBoard to read.

    Args:
        log_dir: the folder to write to; by default ``runs/<date>_<time>_<host><comment>``,
            a new folder for every run.
        comment: appended to the default ``log_dir`` (ignored when ``log_dir`` is given).
        purge_step: after a crash at step T+X and a restart at step T, the events with
            step >= T are hidden in TensorBoard (use the same ``log_dir``).
        max_queue: pending entries before an ``add_*`` call forces a write to disk.
        flush_secs: the longest time, in seconds, an entry waits before it is written (checked
            at each ``add_*`` call; ``flush()`` and ``close()`` write everything at once).
        filename_suffix: appended to every event file's name.

    Example::

        with SummaryWriter("runs/exp1") as writer:
            for step in range(100):
                writer.add_scalar("loss", loss.item(), step)
            writer.add_graph(model, example_batch)
    """

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10,
                 flush_secs=120, filename_suffix=""):
        self._tbx = _tensorboardx()
        for name, value in (("max_queue", max_queue), ("flush_secs", flush_secs)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
                raise ValueError(f"SummaryWriter: {name} must be a positive number, got {value!r}")
        if not log_dir:
            stamp = datetime.datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = os.fspath(log_dir)
        self._options = (max_queue, flush_secs, filename_suffix)
        self._purge_step = _step(purge_step)
        self._files = {}  # folder -> _EventFile: log_dir, and add_scalars' sub-folders
        self._file(self.log_dir)  # the event file exists from here on, as with PyTorch

    def _file(self, folder):
        """The event file of ``folder``, opened on first use (and anew after ``close``)."""
        if folder not in self._files:
            self._files[folder] = _EventFile(self._tbx, folder, *self._options)
            if folder == self.log_dir and self._purge_step is not None:
                # TensorBoard drops earlier events with steps >= purge_step when it reads this
                # restart marker.
                session_log = self._tbx.proto.event_pb2.SessionLog
                self._files[folder].add(step=self._purge_step, file_version="brain.Event:2")
                self._files[folder].add(step=self._purge_step,
                                        session_log=session_log(status=session_log.START))
        return self._files[folder]

    def _summary(self, summary, global_step, walltime, folder=None):
        self._file(folder or self.log_dir).add(_step(global_step), walltime, summary=summary)

    def get_logdir(self):
        """The folder the event files are written to."""
        return self.log_dir

    # ---- values ---------------------------------------------------------------------------

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None):
        """Log one number (a float, a one-element Tensor or array) under ``tag`` at a step."""
        _check_tag(tag, "add_scalar")
        value = _scalar(scalar_value, "add_scalar", tag)
        self._summary(self._tbx.summary.scalar(tag, value), global_step, walltime)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Log several numbers drawn on one chart: each ``{name: value}`` goes to its own
        run folder ``log_dir/<main_tag>_<name>`` under the tag ``main_tag``."""
        _check_tag(main_tag, "add_scalars")
        if not isinstance(tag_scalar_dict, dict):
            raise TypeError(
                f"SummaryWriter.add_scalars({main_tag!r}): tag_scalar_dict must be a dict "
                f"{{name: value}}, got {type(tag_scalar_dict).__name__}"
            )
        values = {str(k): _scalar(v, "add_scalars", f"{main_tag}/{k}")
                  for k, v in tag_scalar_dict.items()}
        for name, value in values.items():
            # PyTorch's folder names (tensorboardX nests main_tag/name instead).
            folder = os.path.join(self.log_dir, main_tag.replace("/", "_") + "_" + name)
            self._summary(self._tbx.summary.scalar(main_tag, value), global_step, walltime,
                          folder)

    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None,
                      max_bins=None):
        """Log the distribution of ``values`` (e.g. a layer's weights). ``bins`` is
        "tensorflow" (TensorBoard's exponential buckets) or anything ``numpy.histogram``
        takes."""
        _check_tag(tag, "add_histogram")
        arr = _array(values, "add_histogram", tag).astype(numpy.float64).ravel()
        if arr.size == 0:
            raise errors.ShapeError(f"SummaryWriter.add_histogram({tag!r}): values are empty")
        if not numpy.isfinite(arr).all():
            raise ValueError(
                f"SummaryWriter.add_histogram({tag!r}): values hold NaN or inf; a histogram "
                "needs finite values"
            )
        if isinstance(bins, str) and bins == "tensorflow":
            bins = _tensorflow_bins()
        summary = self._tbx.summary.histogram(tag, arr, bins, max_bins=max_bins)
        self._summary(summary, global_step, walltime)

    def add_image(self, tag, img_tensor, global_step=None, walltime=None, dataformats="CHW"):
        """Log one image: floats in [0, 1] or uint8 in [0, 255], laid out as ``dataformats``
        says: "CHW" (default), "HWC" or "HW"; C is 1 (grey), 3 (RGB) or 4 (RGBA)."""
        self._image("add_image", tag, img_tensor, global_step, walltime, dataformats,
                    ("CHW", "HWC", "HW"))

    def add_images(self, tag, img_tensor, global_step=None, walltime=None, dataformats="NCHW"):
        """Log a batch of images, tiled into one grid: layout "NCHW" (default) or "NHWC"."""
        self._image("add_images", tag, img_tensor, global_step, walltime, dataformats,
                    ("NCHW", "NHWC"))

    def _image(self, who, tag, img, global_step, walltime, dataformats, allowed):
        _check_tag(tag, who)
        fmt = dataformats.upper() if isinstance(dataformats, str) else dataformats
        if fmt not in allowed:
            raise ValueError(
                f"SummaryWriter.{who}({tag!r}): dataformats must be one of "
                f"{', '.join(allowed)}, got {dataformats!r}"
            )
        arr = _array(img, who, tag)
        if arr.ndim != len(fmt):
            raise errors.ShapeError(
                f"SummaryWriter.{who}({tag!r}): dataformats={fmt!r} needs a {len(fmt)}-d "
                f"image, got shape {errors.shape_str(arr.shape)}"
            )
        if "C" in fmt and arr.shape[fmt.index("C")] not in (1, 3, 4):
            raise errors.ShapeError(
                f"SummaryWriter.{who}({tag!r}): an image has 1, 3 or 4 channels, got "
                f"{arr.shape[fmt.index('C')]} in shape {errors.shape_str(arr.shape)} "
                f"(dataformats={fmt!r}); is the layout right?"
            )
        if arr.dtype == numpy.bool_ or arr.dtype.kind in "iu" and arr.dtype != numpy.uint8:
            arr = arr.astype(numpy.float32) / 255.0  # integer pixels count in [0, 255]
        try:
            import PIL  # noqa: PLC0415,F401
        except ImportError as exc:
            raise ImportError(
                f"SummaryWriter.{who} encodes PNG with Pillow: pip install pillow"
            ) from exc
        self._summary(self._tbx.summary.image(tag, arr, dataformats=fmt), global_step, walltime)

    def add_text(self, tag, text_string, global_step=None, walltime=None):
        """Log a string (Markdown in TensorBoard's text tab)."""
        _check_tag(tag, "add_text")
        if not isinstance(text_string, str):
            raise TypeError(
                f"SummaryWriter.add_text({tag!r}): text_string must be a str, got "
                f"{type(text_string).__name__}"
            )
        self._summary(self._tbx.summary.text(tag, text_string), global_step, walltime)

    # ---- graph and hyperparameters --------------------------------------------------------

    def add_graph(self, model, input_to_model=None, verbose=False, use_strict_trace=True):
        """Log the op graph of one forward run of ``model`` on ``input_to_model`` (a Tensor,
        or a tuple of Tensors for several inputs), as ``ember.graph.trace`` records it.

        Every op is a node named ``<layer path>/<Op>_<index>`` and every parameter
        ``<layer path>/<name>``, so TensorBoard folds each layer into one box; edges follow
        the data, and each node carries its output shapes. ``verbose`` prints the graph.
        ``use_strict_trace`` is accepted for PyTorch's signature and changes nothing: ember's
        tracer follows lists, dicts and nested tuples of outputs anyway.
        """
        graph = _trace(model, input_to_model)
        if verbose:
            print(graph)
        graph_def = _graph_def(self._tbx, graph)
        self._file(self.log_dir).add(graph_def=graph_def.SerializeToString())

    def add_hparams(self, hparam_dict, metric_dict, hparam_domain_discrete=None, run_name=None,
                    global_step=None):
        """Log one run's hyperparameters and its resulting metrics for TensorBoard's HParams
        tab. They go to a sub-folder ``run_name`` (default: the current time) of ``log_dir``.

        Args:
            hparam_dict: ``{name: value}`` with bool, int, float, str or one-element Tensor
                values.
            metric_dict: ``{tag: value}``; each is also written as a scalar. Use tags that
                ``add_scalar`` does not use elsewhere.
            hparam_domain_discrete: ``{name: [all values it can take]}``, for the filter UI.
        """
        hparams, metrics = self._check_hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        exp, ssi, sei = self._tbx.summary.hparams(hparams, metrics)
        if hparam_domain_discrete:
            _add_domains(self._tbx, exp, hparam_domain_discrete)
        run = _EventFile(self._tbx, os.path.join(self.log_dir, run_name or str(time.time())),
                         *self._options)
        for summary in (exp, ssi, sei):
            run.add(summary=summary)
        for tag, value in metrics.items():
            run.add(_step(global_step), summary=self._tbx.summary.scalar(tag, value))
        run.close()

    @staticmethod
    def _check_hparams(hparam_dict, metric_dict, domains):
        if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
            raise TypeError(
                "SummaryWriter.add_hparams: hparam_dict and metric_dict must be dicts, got "
                f"{type(hparam_dict).__name__} and {type(metric_dict).__name__}"
            )
        hparams = {}
        for key, value in hparam_dict.items():
            if value is None or isinstance(value, (bool, str, int, float)):
                hparams[key] = value
            elif hasattr(value, "shape") or isinstance(value, numbers.Number):
                hparams[key] = _scalar(value, "add_hparams", key)
            else:
                raise TypeError(
                    f"SummaryWriter.add_hparams: hparam {key!r} must be a bool, int, float, str "
                    f"or one-element Tensor, got {type(value).__name__}"
                )
        metrics = {k: _scalar(v, "add_hparams", k) for k, v in metric_dict.items()}
        if domains is not None and not isinstance(domains, dict):
            raise TypeError(
                "SummaryWriter.add_hparams: hparam_domain_discrete must be a dict "
                f"{{name: [values]}}, got {type(domains).__name__}"
            )
        for key, values in (domains or {}).items():
            if key not in hparams or not isinstance(values, (list, tuple)):
                raise ValueError(
                    f"SummaryWriter.add_hparams: hparam_domain_discrete[{key!r}] must be a list "
                    "of the values of a hyperparameter in hparam_dict"
                )
        return hparams, metrics

    # ---- files ----------------------------------------------------------------------------

    def flush(self):
        """Write every pending entry to disk now."""
        for file in self._files.values():
            file.flush()

    def close(self):
        """Flush and close the event files. A later ``add_*`` opens a new file."""
        for file in self._files.values():
            file.close()
        self._files = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"SummaryWriter(log_dir={self.log_dir!r})"


def _add_domains(tbx, exp, domains):
    """Attach each hyperparameter's possible values to the experiment summary, which
    tensorboardX writes without them."""
    from google.protobuf import struct_pb2  # noqa: PLC0415

    plugin = tbx.proto.plugin_hparams_pb2.HParamsPluginData()
    meta = exp.value[0].metadata.plugin_data
    plugin.ParseFromString(meta.content)
    for info in plugin.experiment.hparam_infos:
        for v in domains.get(info.name, ()):
            item = struct_pb2.Value()
            if isinstance(v, bool):
                item.bool_value = v
            elif isinstance(v, str):
                item.string_value = v
            else:
                item.number_value = float(v)
            info.domain_discrete.values.append(item)
    meta.content = plugin.SerializeToString()


_BINS = []


def _tensorflow_bins():
    """TensorBoard's default histogram buckets: edges growing by 10% from 1e-12 to 1e20,
    mirrored for negative values, as TensorFlow's summaries use."""
    if not _BINS:
        edges = []
        v = 1e-12
        while v < 1e20:
            edges.append(v)
            v *= 1.1
        _BINS.extend([-e for e in reversed(edges)] + [0.0] + edges)
    return _BINS


# ---- add_graph: an ember Graph as TensorBoard's GraphDef -----------------------------------


class _FlatOutputs:
    """Stands in for a model whose output nests tuples (an LSTM's ``out, (h, c)``) so that
    the tracer, which wants a flat tuple of Tensors, can record it. It forwards what the
    tracer reads (parameters, buffers, layer names, train/eval) to the model itself, so
    names and scopes are the model's own."""

    def __init__(self, model):
        self.model = model
        self.named_parameters = model.named_parameters
        self.named_buffers = model.named_buffers
        self.named_modules = model.named_modules
        self.training = model.training

    def eval(self):
        return self.model.eval()

    def train(self, mode=True):
        return self.model.train(mode)

    def __call__(self, *inputs):
        flat = []
        _flatten(self.model(*inputs), flat)
        return tuple(flat)


def _flatten(out, flat):
    if isinstance(out, (tuple, list)):
        for item in out:
            _flatten(item, flat)
    elif isinstance(out, dict):
        for item in out.values():
            _flatten(item, flat)
    elif out is not None:
        flat.append(out)


def _trace(model, input_to_model):
    from ember import creation  # noqa: PLC0415
    from ember.graph import tracer  # noqa: PLC0415
    from ember.tensor import Tensor  # noqa: PLC0415

    if not (hasattr(model, "named_parameters") and callable(model)):
        raise TypeError(
            f"SummaryWriter.add_graph: model must be an ember nn.Module, got "
            f"{type(model).__name__}"
        )
    if input_to_model is None:
        raise ValueError(
            "SummaryWriter.add_graph: input_to_model is needed: the graph is recorded from one "
            "forward run; pass an example batch (a Tensor, or a tuple for several inputs)"
        )
    inputs = input_to_model if isinstance(input_to_model, (tuple, list)) else (input_to_model,)
    inputs = [x if isinstance(x, Tensor) else creation.tensor(_array(x, "add_graph", "input"))
              for x in inputs]
    return tracer.trace(_FlatOutputs(model), *inputs)


def _graph_def(tbx, graph):
    """One NodeDef per graph input, parameter, constant, op and output; an op node's inputs
    name the nodes that made its arguments ("name:i" for the i-th output of a multi-output
    op), as GraphDef does. A "/" in a name is a folder in TensorBoard's view."""
    proto = tbx.proto
    nodes = []
    producer = {}  # Value name -> the "node" or "node:i" string that edges refer to

    def shapes_attr(values):
        shapes = [proto.tensor_shape_pb2.TensorShapeProto(
            dim=[proto.tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in v.shape])
            for v in values]
        return proto.attr_value_pb2.AttrValue(
            list=proto.attr_value_pb2.AttrValue.ListValue(shape=shapes))

    def text_attr(text):
        return proto.attr_value_pb2.AttrValue(s=text.encode("utf-8"))

    def add(name, op, inputs, outputs, extra=None):
        attr = {"_output_shapes": shapes_attr(outputs),
                "dtype": text_attr(", ".join(v.dtype.name for v in outputs))}
        if extra:
            attr["attr"] = text_attr(extra)
        nodes.append(proto.node_def_pb2.NodeDef(name=name, op=op, input=inputs, attr=attr))

    for v in graph.inputs:
        producer[v.name] = v.name
        add(v.name, "IO Node", [], [v])
    for v in graph.params:
        producer[v.name] = v.name.replace(".", "/")
        add(producer[v.name], "Parameter" if v.kind == "param" else "Buffer", [], [v])
    for v in graph.constants:
        producer[v.name] = v.name
        add(v.name, "Constant", [], [v])
    for node in graph.nodes:
        op = node.op_name.lstrip("_") or node.op_name
        prefix = node.scope.replace(".", "/") + "/" if node.scope else ""
        name = f"{prefix}{op}_{node.index}"
        for i, out in enumerate(node.outputs):
            producer[out.name] = name if i == 0 else f"{name}:{i}"
        args, kwargs = node.attributes
        extra = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        add(name, op, [producer[v.name] for v in _value_args(node.args)], node.outputs, extra)
    for i, v in enumerate(graph.outputs):
        add(f"output{i}" if len(graph.outputs) > 1 else "output", "IO Node",
            [producer[v.name]], [v])
    return proto.graph_pb2.GraphDef(node=nodes,
                                    versions=proto.versions_pb2.VersionDef(producer=22))


def _value_args(args):
    """The Values among an op's arguments, including those inside tuples (torch.cat's list)."""
    from ember.graph import ir  # noqa: PLC0415

    found = []
    for a in args:
        if isinstance(a, ir.Value):
            found.append(a)
        elif isinstance(a, tuple):
            found.extend(_value_args(a))
    return found
