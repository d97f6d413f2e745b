"""The op functions exported at the top level (``ember.exp``, ``ember.cat``, ...).

Every public function of an op family is exported under its PyTorch name; names that start
with an underscore, Function classes and helpers are not.
"""

import inspect

from ember.ops import FAMILIES

__all__ = []


def _export():
    g = globals()
    for family in FAMILIES:
        public = getattr(family, "__all__", None)
        for name, obj in vars(family).items():
            if name.startswith("_") or not inspect.isfunction(obj):
                continue
            if obj.__module__ != family.__name__:
                continue
            if public is not None and name not in public:
                continue
            g[name] = obj
            __all__.append(name)


_export()
