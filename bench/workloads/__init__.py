"""The five training workloads of bench/run.py, one module per framework (ember_w, torch_w,
jax_w) over shared data and initial weights (common). Each framework module has the same
three functions:

- ``setup(threads)``: thread settings made after import, before building.
- ``make_step(name, state, batch)``: build workload ``name`` from the NumPy ``state`` and
  ``batch`` of :mod:`bench.workloads.common`; returns ``step()``, one training step that
  returns the loss as the framework's own object (not synchronised).
- ``to_float(loss)``: the loss as a Python float (waits for the computation).
"""

FRAMEWORKS = ("ember", "torch", "jax")
