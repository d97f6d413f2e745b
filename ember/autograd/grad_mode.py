"""Switches for gradient recording: no_grad, enable_grad, set_grad_enabled, inference_mode.

Each works as a context manager and as a decorator. The state is one process-wide flag
read by ``Function.apply`` on every op, so it is kept as a plain class attribute (the cheapest
read Python offers). It is not thread-local: threads that disagree on grad mode must not share
a process (DataLoader workers are processes, so they are unaffected).
"""

import functools


class _State:
    enabled = True
    inference = False


def is_grad_enabled():
    return _State.enabled


def is_inference_mode_enabled():
    return _State.inference


class _Mode:
    """Base for the grad-mode switches: sets the flag on enter, restores it on exit."""

    _target = True

    def __enter__(self):
        self._prev = (_State.enabled, _State.inference)
        self._apply()

    def _apply(self):
        _State.enabled = self._target

    def __exit__(self, *exc):
        _State.enabled, _State.inference = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)

        return wrapper

    def clone(self):
        return type(self)()


class no_grad(_Mode):
    """Run without recording the graph: results have requires_grad=False."""

    _target = False


class enable_grad(_Mode):
    """Record the graph again inside a no_grad block."""

    _target = True


class set_grad_enabled(_Mode):
    """Turn recording on or off; takes effect at once, and as a context manager restores it."""

    def __init__(self, mode):
        self._target = bool(mode)
        self._prev = (_State.enabled, _State.inference)
        _State.enabled = self._target

    def __enter__(self):
        pass

    def __call__(self, fn):
        # Used as a decorator the constructor's switch must not leak into the caller.
        _State.enabled, _State.inference = self._prev
        return super().__call__(fn)

    def clone(self):
        return set_grad_enabled(self._target)


class inference_mode(_Mode):
    """Like no_grad, for inference: results can never join a graph later."""

    def __init__(self, mode=True):
        self._mode = bool(mode)

    def _apply(self):
        if self._mode:
            _State.enabled = False
            _State.inference = True

    def clone(self):
        return inference_mode(self._mode)
