"""ONNX export and import (PyTorch's ``torch.onnx.export`` shape, plus a loader).

>>> ember.onnx.export(model, ember.randn(1, 4), "model.onnx")
>>> again = ember.onnx.load("model.onnx")        # an nn.Module you can run and fine-tune

The ``onnx`` package (and ``onnxruntime`` for checking) come with ``pip install ember[onnx]``
and are imported only when these functions run, so ``import ember`` stays light.
See docs/onnx.md.
"""

from ember.onnx.export import ExportError, export, to_model_proto
from ember.onnx.importer import OnnxImportError, OnnxModule, load
from ember.onnx.table import supported_ops

__all__ = ["export", "to_model_proto", "load", "OnnxModule", "supported_ops", "ExportError",
           "OnnxImportError"]
