"""The Callback base class and History, the record of a ``fit`` run.

They live together because History is the one callback every ``fit`` adds: ``model.fit``
returns it, and ``history.history`` maps each logs key to its per-epoch values::

    history = model.fit(x, y, epochs=3, validation_split=0.2)
    history.history["val_loss"]        # [0.61, 0.43, 0.37]
    history.plot("curves.png")
"""

import os


class Callback:
    """Base class of callbacks; override the hooks you need (all do nothing here).

    Attributes set by ``fit``/``evaluate``/``predict`` before the first hook:
        model: the Module being trained.
        params: {"epochs", "steps", "verbose"} of the run.

    Hooks (Keras's names): ``on_train_begin/end(logs)``, ``on_epoch_begin/end(epoch, logs)``,
    ``on_train_batch_begin/end(batch, logs)``, and the same for ``test`` (evaluate and the
    validation pass of fit) and ``predict``. ``epoch`` and ``batch`` count from 0.
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """Records the logs of every epoch.

    Attributes:
        history: dict from logs key ("loss", "accuracy", "val_loss", ...) to a list with one
            value per epoch.
        epoch: the epoch indices that ran (they start at ``initial_epoch``).
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            values = self.history.setdefault(key, [])
            # A key that first appears late (e.g. validation every other epoch) is padded so
            # every list lines up with self.epoch.
            values.extend([float("nan")] * (len(self.epoch) - 1 - len(values)))
            values.append(value)

    def __repr__(self):
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}])"

    def plot(self, path, keys=None, dpi=100):
        """Draw the curves into a PNG at ``path``: one panel per quantity, training and
        validation together (``loss`` with ``val_loss``, ...). Returns ``path``.

        Args:
            keys: the training keys to draw (default: every key without a ``val_`` prefix).

        Needs matplotlib (``pip install 'ember[plot]'``); nothing is shown on screen and the
        global pyplot state is not touched.
        """
        try:
            from matplotlib.backends import backend_agg  # noqa: PLC0415
            from matplotlib import figure  # noqa: PLC0415
        except ImportError as exc:
            raise ImportError(
                "History.plot needs matplotlib: pip install 'ember[plot]' (or pip install "
                "matplotlib)"
            ) from exc
        if not self.epoch:
            raise ValueError("History.plot: there is nothing to plot; no epoch has finished")
        if keys is None:
            keys = [k for k in self.history if not k.startswith("val_")]
            keys += [k[4:] for k in self.history if k.startswith("val_") and k[4:] not in keys]
        missing = [k for k in keys if k not in self.history and "val_" + k not in self.history]
        if missing:
            raise KeyError(
                f"History.plot: no values for {missing}; recorded: {sorted(self.history)}"
            )
        epochs = [e + 1 for e in self.epoch]
        fig = figure.Figure(figsize=(4.5 * len(keys), 3.5), dpi=dpi)
        backend_agg.FigureCanvasAgg(fig)
        for i, key in enumerate(keys):
            ax = fig.add_subplot(1, len(keys), i + 1)
            for name, label in ((key, "train"), ("val_" + key, "validation")):
                if name in self.history:
                    ax.plot(epochs, self.history[name], marker="o", markersize=3, label=label)
            ax.set_title(key)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        path = os.fspath(path)
        fig.savefig(path, format="png")
        return path
