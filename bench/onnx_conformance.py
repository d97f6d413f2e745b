"""Count how much of onnx's shipped backend test suite ember passes.

Runs every CPU case of onnx's node tests (and, with ``--all``, the simple, pytorch-converted and
pytorch-operator model tests) through ``ember.onnx.backend`` and prints passed / failed counts,
and how many cases tests/onnx/conformance_exclusions.txt lists.

    python bench/onnx_conformance.py               # counts for the node suite
    python bench/onnx_conformance.py --failures    # also: each failing case and why
    python bench/onnx_conformance.py --write-exclusions   # rewrite the exclusion file

The exclusion file lists every failing node case (``name # reason``); the test
tests/onnx/test_conformance.py fails when a listed case passes, so the list only shrinks.
"""

import argparse
import pathlib
import sys
import time
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXCLUSIONS = ROOT / "tests" / "onnx" / "conformance_exclusions.txt"
KINDS = {"node": "OnnxBackendNodeModelTest", "simple": "OnnxBackendSimpleModelTest",
         "pytorch-converted": "OnnxBackendPyTorchConvertedModelTest",
         "pytorch-operator": "OnnxBackendPyTorchOperatorModelTest"}


def read_exclusions(path=EXCLUSIONS):
    """{case name: reason} from the exclusion file."""
    out = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        name, _, reason = line.partition("#")
        if name.strip():
            out[name.strip()] = reason.strip()
    return out


def cases(kinds=("node",)):
    """{case name: zero-argument callable} for the CPU cases of the given kinds."""
    import onnx.backend.test  # noqa: PLC0415

    from ember.onnx import backend  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = onnx.backend.test.BackendTest(backend.EmberBackend, __name__)
        classes = runner.test_cases
    out = {}
    for kind in kinds:
        cls = classes[KINDS[kind]]
        for name in sorted(dir(cls)):
            if name.startswith("test_") and name.endswith("_cpu"):
                out[name] = _bound(cls, name)
    return out


def _bound(cls, name):
    def call():
        getattr(cls(methodName=name), name)()

    return call


def run_case(fn):
    """None when the case passes, else a one-line reason."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn()
        except Exception as e:  # noqa: BLE001  (a case's failure is data here)
            first = (str(e).strip().splitlines() or [""])[0]
            return f"{type(e).__name__}: {first}"[:160]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also run the model tests")
    parser.add_argument("--failures", action="store_true", help="print each failing case")
    parser.add_argument("--write-exclusions", action="store_true",
                        help="rewrite the exclusion file with the failing node cases")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    args = parser.parse_args()
    kinds = tuple(KINDS) if args.all else ("node",)
    t0 = time.perf_counter()
    todo = {n: f for n, f in cases(kinds).items() if args.k in n}
    t1 = time.perf_counter()
    failed = {}
    for name, fn in todo.items():
        reason = run_case(fn)
        if reason is not None:
            failed[name] = reason
    t2 = time.perf_counter()
    excluded = read_exclusions()
    node_total = len(todo)
    if args.failures:
        for name, reason in sorted(failed.items()):
            print(f"FAIL {name}  {reason}")
    print(f"onnx {'+'.join(kinds)} suite (CPU): {node_total} cases, "
          f"{node_total - len(failed)} passed, {len(failed)} failed, {len(excluded)} listed in "
          f"{EXCLUSIONS.relative_to(ROOT)}")
    unexpected = sorted(set(failed) - set(excluded))
    fixed = sorted(set(excluded) - set(failed))
    print(f"failing but not excluded: {len(unexpected)}; excluded but passing: {len(fixed)}")
    print(f"generate {t1 - t0:.1f} s, run {t2 - t1:.1f} s")
    if args.write_exclusions:
        lines = [f"{n}  # {failed[n]}" for n in sorted(failed)]
        EXCLUSIONS.write_text(_HEADER + "\n".join(lines) + "\n")
        print(f"wrote {len(lines)} exclusions to {EXCLUSIONS}")
    return 0


_HEADER = """\
# ONNX node-test cases that ember fails today, one per line: name  # reason.
# tests/onnx/test_conformance.py runs each listed case as a strict xfail: when one starts to
# pass, the test fails until its line is removed here, so the passing set only grows.
# Regenerate with: python bench/onnx_conformance.py --write-exclusions
"""

if __name__ == "__main__":
    sys.exit(main())
