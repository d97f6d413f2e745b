"""Rows of the ember <-> ONNX table, one module per op family (see ember/onnx/table.py)."""
