"""The layers, one file per family. Each family module lists its public classes in
``__all__``; every family that exists is imported here and its classes are exported (and from
there by ``ember.nn``), so a new family file needs no edit outside itself."""

import importlib

# The order decides nothing but the order of names; a family not written yet is skipped.
_FAMILIES = (
    "container", "linear", "activation", "conv", "pool", "norm", "dropout", "embedding",
    "rnn", "attention", "transformer", "padding", "upsampling", "distance", "shuffle",
)

__all__ = []


def _export():
    g = globals()
    for name in _FAMILIES:
        full = "ember.nn.layers." + name
        try:
            family = importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name != full:
                raise
            continue
        for cls_name in getattr(family, "__all__", ()):
            g[cls_name] = getattr(family, cls_name)
            __all__.append(cls_name)


_export()
