"""``ember.callbacks``: the callbacks of ``Module.fit`` (an alias of
``ember.train.callbacks``; see there)."""

from ember.train import callbacks as _callbacks
from ember.train.callbacks import *  # noqa: F401,F403
from ember.train.callbacks import __all__  # noqa: F401


def __getattr__(name):
    return getattr(_callbacks, name)  # ProgbarLogger, loaded on first use (it imports tqdm)
