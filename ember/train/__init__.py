"""Keras-style training for every ``nn.Module``: ``compile``, ``fit``, ``evaluate``,
``predict``, ``train_on_batch``, ``test_on_batch``, ``summary`` (see ``TrainingMixin``).

Files: ``mixin.py`` (the Module methods), ``trainer.py`` (the loops and input checks),
``inputs.py`` (arrays / Datasets / DataLoaders into batches), ``registry.py`` (optimizer and
loss names), ``callbacks.py`` (``ember.callbacks``), ``history.py`` (Callback, History),
``progress.py`` (the progress bar), ``summary.py``.

Only light modules are imported here: ``ember.nn.module`` imports this package, and the loops
load on the first ``compile``/``fit``/``predict``.
"""

from ember.train import callbacks, history, mixin  # noqa: F401
from ember.train.history import Callback, History
from ember.train.mixin import TrainingMixin

__all__ = ["Callback", "History", "TrainingMixin", "callbacks"]
