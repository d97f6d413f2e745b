"""Quick test of the benchmark suite (bench/run.py, bench/measure.py, bench/workloads): one
tiny training step per workload per installed framework, the worker protocol, and one
end-to-end run of bench/run.py. Nothing here asserts on time."""

import functools
import importlib
import math
import os

import numpy
import pytest

from bench import measure, run
from bench.workloads import common

WORKLOADS = list(common.WORKLOADS)

# Cheaper XLA compiles for the JAX steps (about 2x faster here); they are checked for their
# values, not timed. Takes effect only if JAX's backend starts after this module is imported.
_FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


@pytest.fixture(scope="module", autouse=True)
def _fast_xla_compiles():
    old = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = ((old + " ") if old else "") + _FAST_XLA
    yield
    if old is None:
        del os.environ["XLA_FLAGS"]
    else:
        os.environ["XLA_FLAGS"] = old


def _framework(fw):
    if not measure.is_installed(fw):
        pytest.skip(f"{fw} is not installed: reported as missing by bench/run.py")
    return importlib.import_module(f"bench.workloads.{fw}_w")


@functools.lru_cache(maxsize=None)
def _losses(fw, workload, steps=2):
    """Losses of the first ``steps`` training steps at batch 2 from the shared state."""
    module = importlib.import_module(f"bench.workloads.{fw}_w")
    step = module.make_step(workload, common.initial_state(workload),
                            common.make_batch(workload, batch=2))
    return tuple(module.to_float(step()) for _ in range(steps))


def test_shared_state_is_deterministic_and_fits_the_specs():
    for wl in WORKLOADS:
        a, b = common.initial_state(wl), common.initial_state(wl)
        for key, shape, *_ in common.param_specs(wl):
            assert a[key].shape == shape and a[key].dtype == numpy.float32, key
            numpy.testing.assert_array_equal(a[key], b[key])
        x, y = common.make_batch(wl, batch=3)
        assert len(x) == len(y) == 3
        assert y.dtype == numpy.int64


@pytest.mark.parametrize("workload", WORKLOADS)
def test_ember_step_trains(workload):
    first, second = _losses("ember", workload)
    assert math.isfinite(first) and math.isfinite(second)
    assert second < first, "one optimizer step on the same batch should lower the loss"


@pytest.mark.parametrize("fw", ["torch", "jax"])
@pytest.mark.parametrize("workload", WORKLOADS)
def test_peer_matches_ember_step_for_step(fw, workload):
    """Same data and initial weights, same optimizer rule: the peers' losses agree with
    ember's on the first two steps, so the frameworks time the same computation."""
    _framework(fw)
    numpy.testing.assert_allclose(_losses(fw, workload), _losses("ember", workload),
                                  rtol=2e-4, atol=1e-5)


def test_worker_protocol(tmp_path):
    with open(tmp_path / "stderr.txt", "w") as log:
        worker = measure.Worker("ember", "W1", 1, log)
        try:
            assert worker.info["ready"] and math.isfinite(worker.info["loss0"])
            result = worker.run(0.0, min_steps=2)
            assert result["steps"] == 2 and math.isfinite(result["loss"])
        finally:
            peak = worker.close()
    assert peak > 10  # MiB: at least the interpreter and NumPy


def test_worker_reports_a_failure(tmp_path):
    with open(tmp_path / "stderr.txt", "w") as log:
        with pytest.raises(RuntimeError, match="unknown workload"):
            measure.Worker("ember", "W9", 1, log)


def test_requirements_skip_extras():
    names = measure._required(['numpy>=1.24', 'tqdm>=4.60', 'pytest>=7; extra == "test"',
                               'onnx[reference] >=1.16'])
    assert names == ["numpy", "tqdm", "onnx"]
    total, parts, missing = measure.installed_size("ember")
    assert "numpy" in parts and "ember" in parts and total == sum(parts.values())
    assert missing == []


def test_run_writes_its_section_and_keeps_the_others(tmp_path, monkeypatch, capsys):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Eager overhead\n\nkept table\n\n"
                   "## Training workloads\n\nold numbers\n")
    # Pretend JAX is absent: it must be reported as missing, not measured.
    monkeypatch.setattr(measure, "is_installed", lambda fw: fw != "jax")
    raw = run.main(["--workloads", "W1", "--frameworks", "ember,jax", "--repeats", "1",
                    "--seconds", "0", "--threads", "1", "--import-repeats", "1",
                    "--write", str(doc)])
    text = doc.read_text()
    assert "## Eager overhead\n\nkept table" in text
    assert "old numbers" not in text
    assert "missing (not installed, not measured): jax" in text
    assert "| W1 MLP 784-512-512-10 | 128 |" in text
    result = raw["threads"][1]["W1"]["ember"]
    assert result["samples_per_s"] > 0 and result["peak_mib"] > 0
    assert "jax" not in raw["threads"][1]["W1"]
