"""ProgbarLogger: what ``fit``, ``evaluate`` and ``predict`` print.

- In a terminal (verbose=1): a live tqdm bar per epoch with the step count, ETA, and the
  running loss and metrics; when the epoch ends the bar stays, completed with the validation
  values.
- Not a terminal (logs, CI, a notebook's captured output), or verbose=2: one line per epoch,
  ``Epoch 3/10 - 23/23 steps - 0.4s 17ms/step - loss: 0.1234 - accuracy: 0.9700 - val_...``.
- verbose=0: nothing (fit does not add this callback at all).

The bar is tqdm's; the text goes to ``sys.stdout`` as it is when the run starts.
"""

import sys
import time

import tqdm

from ember.train import history as _history

_REFRESH_S = 0.1


def format_logs(logs):
    """'loss: 0.1234 - accuracy: 0.9700' from a logs dict."""
    return " - ".join(f"{k}: {_number(v)}" for k, v in logs.items())


def _number(value):
    if isinstance(value, float):
        return f"{value:.4e}" if value != 0.0 and abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def _duration(seconds, steps):
    per_step = seconds / steps if steps else 0.0
    unit = f"{per_step * 1e3:.0f}ms/step" if per_step < 1 else f"{per_step:.2f}s/step"
    return f"{seconds:.1f}s {unit}"


class ProgbarLogger(_history.Callback):
    """Prints progress; see the module docstring. ``verbose``: 1 (a bar in a terminal, lines
    otherwise) or 2 (always one line per epoch)."""

    def __init__(self, verbose=1):
        super().__init__()
        self.verbose = verbose
        self._bar = None
        self._in_fit = False

    def set_params(self, params):
        super().set_params(params)
        self._stream = sys.stdout
        isatty = getattr(self._stream, "isatty", None)
        self._live = self.verbose == 1 and isatty is not None and isatty()
        if self._live:
            # Only a live bar needs the per-batch hooks; lines mode leaves them unset so the
            # training loop need not build batch logs for it.
            self.on_train_batch_end = self._batch_end
            self.on_test_batch_end = self._test_batch_end
            self.on_predict_batch_end = self._batch_end

    # ---- fit -------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False
        self._close()

    def on_epoch_begin(self, epoch, logs=None):
        self._start(f"Epoch {epoch + 1}/{self.params.get('epochs')}")

    def on_epoch_end(self, epoch, logs=None):
        self._finish(logs)

    # ---- evaluate / predict ----------------------------------------------------------------

    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._start("Evaluate")

    def on_test_end(self, logs=None):
        if not self._in_fit:
            self._finish(logs)

    def on_predict_begin(self, logs=None):
        self._start("Predict")

    def on_predict_end(self, logs=None):
        self._finish(None)

    # ---- the bar and the lines -------------------------------------------------------------

    def _start(self, title):
        self._title = title
        self._t0 = time.perf_counter()
        self._last_refresh = self._t0
        if self._live:
            self._close()
            self._bar = tqdm.tqdm(total=self.params.get("steps"), desc=title, unit="step",
                                  file=self._stream, leave=True, dynamic_ncols=True,
                                  mininterval=_REFRESH_S)

    def _test_batch_end(self, batch, logs=None):
        if not self._in_fit:  # the validation pass inside fit leaves the epoch's bar alone
            self._batch_end(batch, logs)

    def _batch_end(self, batch, logs=None):
        if self._bar is None:
            return
        now = time.perf_counter()
        if logs and now - self._last_refresh >= _REFRESH_S:
            self._last_refresh = now
            self._bar.set_postfix_str(format_logs(logs), refresh=False)
        self._bar.update(batch + 1 - self._bar.n)

    def _finish(self, logs):
        elapsed = time.perf_counter() - self._t0
        if self._bar is not None:
            if logs:
                self._bar.set_postfix_str(format_logs(logs), refresh=False)
            self._close()
            return
        steps = self.params.get("steps")
        parts = [self._title]
        if steps:
            parts += [f"{steps}/{steps} steps", _duration(elapsed, steps)]
        else:
            parts.append(f"{elapsed:.1f}s")
        if logs:
            parts.append(format_logs(logs))
        print(" - ".join(parts), file=self._stream, flush=True)

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
