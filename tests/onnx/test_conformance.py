"""onnx's shipped backend test suite, run through ember.onnx.backend.

Every CPU case of the node tests (generated in memory by ``onnx.backend.test.BackendTest``) and
of the simple, pytorch-converted and pytorch-operator model tests is one pytest case. Node cases
listed in conformance_exclusions.txt run as strict xfails: a listed case that starts to pass
fails the run until its line is deleted, so the passing set can only grow. Model tests may not
be excluded.
"""

import pathlib
import warnings

import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package (ember[onnx]) is not installed")

import onnx.backend.test  # noqa: E402

from ember.onnx import backend  # noqa: E402

EXCLUSIONS = pathlib.Path(__file__).with_name("conformance_exclusions.txt")
NODE_TARGET = 1225  # issue 6: at least 65% of onnx 1.23's 1,884 node cases
CLASSES = {"node": "OnnxBackendNodeModelTest", "simple": "OnnxBackendSimpleModelTest",
           "pytorch-converted": "OnnxBackendPyTorchConvertedModelTest",
           "pytorch-operator": "OnnxBackendPyTorchOperatorModelTest"}


def _exclusions():
    out = {}
    for line in EXCLUSIONS.read_text().splitlines():
        name, _, reason = line.partition("#")
        if name.strip():
            out[name.strip()] = reason.strip()
    return out


def _cases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classes = onnx.backend.test.BackendTest(backend.EmberBackend, __name__).test_cases
    out = {}
    for kind, cls_name in CLASSES.items():
        cls = classes[cls_name]
        out[kind] = {n: cls for n in sorted(dir(cls))
                     if n.startswith("test_") and n.endswith("_cpu")}
    return out


CASES = _cases()
EXCLUDED = _exclusions()


def _params(kind):
    params = []
    for name in CASES[kind]:
        marks = ()
        if name in EXCLUDED:
            marks = pytest.mark.xfail(strict=True, reason=EXCLUDED[name] or "excluded")
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def _run(kind, name):
    cls = CASES[kind][name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(cls(methodName=name), name)()


@pytest.mark.parametrize("name", _params("node"))
def test_node(name):
    _run("node", name)


@pytest.mark.parametrize("kind", ["simple", "pytorch-converted", "pytorch-operator"])
def test_models(kind):
    """The shipped model tests all pass (one test per kind, reporting every failure)."""
    failures = []
    for name in CASES[kind]:
        try:
            _run(kind, name)
        except Exception as e:  # noqa: BLE001  (collect all, then report)
            failures.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    assert not failures, f"{len(failures)} {kind} model tests fail:\n" + "\n".join(failures)


def test_exclusions_name_real_node_cases():
    stale = sorted(set(EXCLUDED) - set(CASES["node"]))
    assert not stale, f"conformance_exclusions.txt lists cases onnx does not ship: {stale}"


def test_node_target_met():
    passing = len(CASES["node"]) - len(set(EXCLUDED) & set(CASES["node"]))
    assert len(CASES["node"]) == 1884, "onnx's node suite changed size: update the pin or docs"
    assert passing >= NODE_TARGET, (
        f"only {passing} of {len(CASES['node'])} node cases are expected to pass; the target "
        f"is {NODE_TARGET}")
