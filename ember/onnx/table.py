"""The one table between ember ops and ONNX ops, read by both export and import.

Each ``Row`` names an ONNX op and the opset range it covers, and carries up to two adapters:

- ``export(ctx, node)``: turn one traced ember graph node (``ember.graph.Node``, whose ``op``
  is one of ``row.ember_ops``) into ONNX nodes, through ``ctx`` (see export.py): returns the
  ONNX names of the node's outputs.
- ``load(ctx, node, *inputs, **attrs)``: run one ONNX node on ember Tensors (so an imported
  model is differentiable and can be fine-tuned): returns a Tensor or a tuple of Tensors.
  ``attrs`` are the node's attributes as Python values, with the defaults of the row's
  ``defaults`` filled in.

Rows live in ``ember/onnx/rows/*.py`` (one file per op family) and call ``register``. The
supported-op table in the docs is generated from this registry (``supported_ops``).
"""

import dataclasses


@dataclasses.dataclass
class Row:
    onnx_op: str
    since: int = 1
    until: int = None  # last opset this row handles; None: every later one
    ember_ops: tuple = ()  # Function classes this row exports
    export: object = None
    load: object = None
    defaults: dict = dataclasses.field(default_factory=dict)
    domain: str = ""
    note: str = ""
    # A fallback row (the conformance rows) is consulted only when no regular row covers the
    # op at that opset, so a regular row registered later for the same op still wins.
    fallback: bool = False

    def covers(self, opset):
        return self.since <= opset and (self.until is None or opset <= self.until)


_IMPORT = {}  # (domain, onnx_op) -> [Row]
_EXPORT = {}  # Function class -> [Row]


def register(*rows):
    """Add rows to the table (called at import time by the rows modules)."""
    for row in rows:
        if row.load is not None:
            _IMPORT.setdefault((row.domain, row.onnx_op), []).append(row)
        for op in row.ember_ops:
            _EXPORT.setdefault(op, []).append(row)
    return rows


def import_row(onnx_op, opset, domain=""):
    """The row that loads ``onnx_op`` at ``opset``, or None."""
    _load_rows()
    rows = _IMPORT.get((domain, onnx_op), ())
    for fallback in (False, True):
        for row in rows:
            if row.fallback == fallback and row.covers(opset):
                return row
    return None


def export_row(function_cls, opset):
    """The row that exports ember Function ``function_cls`` at ``opset``, or None."""
    _load_rows()
    for row in _EXPORT.get(function_cls, ()):
        if row.covers(opset) and row.export is not None:
            return row
    return None


def supported_ops():
    """Rows sorted by ONNX op name, for the docs."""
    _load_rows()
    seen = {}
    for rows in list(_IMPORT.values()) + list(_EXPORT.values()):
        for r in rows:
            seen[(r.domain, r.onnx_op, r.since)] = r
    return [seen[k] for k in sorted(seen)]


_LOADED = []


def _load_rows():
    if _LOADED:
        return
    _LOADED.append(True)
    import importlib  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    from ember.onnx import rows  # noqa: PLC0415

    for info in pkgutil.iter_modules(rows.__path__):
        importlib.import_module(f"ember.onnx.rows.{info.name}")
