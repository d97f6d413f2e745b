"""Hostile ONNX files: loading never runs code, never reads outside the model's folder, and turns
every malformed file into an ember error (never a crash or a hang)."""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package (ember[onnx]) is not installed")

from onnx import helper, numpy_helper  # noqa: E402

from ember import errors  # noqa: E402
from ember.onnx import backend, safety  # noqa: E402

ONNX_DIR = pathlib.Path(safety.__file__).parent
REPO = ONNX_DIR.parents[1]


def _model(weight=None, op="Add"):
    w = numpy.arange(6, dtype=numpy.float32).reshape(2, 3) if weight is None else weight
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "w"], ["y"], name="add0")], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _external(model, location, length=None):
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = onnx.TensorProto.EXTERNAL
    entries = [("location", location), ("offset", "0")]
    if length is not None:
        entries.append(("length", str(length)))
    for k, v in entries:
        w.external_data.add(key=k, value=v)
    return model


def _save(model, path):
    path.write_bytes(model.SerializeToString())
    return path


def test_good_model_loads_and_runs(tmp_path):
    path = _save(_model(), tmp_path / "m.onnx")
    model = safety.load_model(path)
    (y,) = backend.prepare(model).run([numpy.ones((2, 3), numpy.float32)])
    numpy.testing.assert_allclose(y, numpy.arange(6).reshape(2, 3) + 1)


def test_external_data_inside_folder_loads(tmp_path):
    (tmp_path / "w.bin").write_bytes(numpy.arange(6, dtype=numpy.float32).tobytes())
    path = _save(_external(_model(), "w.bin", 24), tmp_path / "m.onnx")
    model = safety.load_model(path)
    (y,) = backend.prepare(model).run([numpy.zeros((2, 3), numpy.float32)])
    numpy.testing.assert_allclose(y, numpy.arange(6).reshape(2, 3))


@pytest.mark.parametrize("location", ["/etc/passwd", "../secret.bin", "sub/../../secret.bin",
                                      "..\\secret.bin", "C:/Windows/win.ini"])
def test_external_data_outside_folder_is_refused(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 24)
    folder = tmp_path / "model"
    folder.mkdir()
    path = _save(_external(_model(), location, 24), folder / "m.onnx")
    with pytest.raises(safety.UnsafeModelError, match=r"initializer 'w'.*outside the model"):
        safety.load_model(path)


def test_external_data_symlink_escaping_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 24)
    folder = tmp_path / "model"
    folder.mkdir()
    try:
        os.symlink(tmp_path / "secret.bin", folder / "w.bin")
    except OSError:
        pytest.skip("this platform cannot create symlinks")
    path = _save(_external(_model(), "w.bin", 24), folder / "m.onnx")
    with pytest.raises(safety.UnsafeModelError, match=r"'w'.*w\.bin.*symlink"):
        safety.load_model(path)


def test_external_data_without_folder_is_refused():
    model = _external(_model(), "w.bin", 24)
    with pytest.raises(safety.UnsafeModelError, match="'w'.*without its folder"):
        backend.prepare(model)


def test_external_data_shorter_than_declared(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 10)
    path = _save(_external(_model(), "w.bin", 24), tmp_path / "m.onnx")
    with pytest.raises(safety.UnsafeModelError, match="'w'.*24 bytes.*only 10.*truncated"):
        safety.load_model(path)


def test_external_length_not_matching_shape(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 64)
    path = _save(_external(_model(), "w.bin", 64), tmp_path / "m.onnx")
    with pytest.raises(safety.UnsafeModelError,
                       match=r"'w' in graph declares shape \[2, 3\] \(24 bytes"):
        safety.load_model(path)


def test_declared_shape_not_matching_raw_data(tmp_path):
    model = _model()
    model.graph.initializer[0].dims[:] = [4, 3]
    path = _save(model, tmp_path / "m.onnx")
    with pytest.raises(safety.UnsafeModelError,
                       match=r"'w' in graph declares shape \[4, 3\] \(48 bytes\) but carries 24"):
        safety.load_model(path)


def test_declared_shape_not_matching_typed_data():
    model = _model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.float_data[:] = [1.0, 2.0]
    with pytest.raises(safety.UnsafeModelError, match=r"'w'.*\(6 values\) but carries 2"):
        safety.check(model)


def test_negative_dimension_refused():
    model = _model()
    model.graph.initializer[0].dims[:] = [-2, 3]
    with pytest.raises(safety.UnsafeModelError, match="'w' .*negative dimension"):
        safety.check(model)


def test_truncated_file(tmp_path):
    data = _model().SerializeToString()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 7):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(errors.EmberError, match=str(path.name)):
            safety.load_model(path)


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x80\x04\x95 this is a pickle, not a model")
    with pytest.raises(safety.UnsafeModelError, match="junk.onnx.*not a valid ONNX"):
        safety.load_model(path)


def test_unsupported_op_names_op_opset_and_node():
    model = _model(op="NoSuchOp")
    with pytest.raises(backend.UnsupportedOpError,
                       match=r"node 'add0': op NoSuchOp \(opset 17\) is not supported"):
        backend.prepare(model)


def test_load_path_never_unpickles_or_evals():
    """No module on ember's ONNX load path calls pickle, eval, exec or compile."""
    banned = {"pickle", "eval", "exec", "compile", "__import__", "marshal", "shelve", "dill"}
    for path in list(ONNX_DIR.glob("*.py")) + list((ONNX_DIR / "rows").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                # module.eval() (an nn.Module method) is fine; pickle.loads is not
                name = node.value.id
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                name = next((n for n in names if n.split(".")[0] in banned), None)
            assert name not in banned, f"{path.name}:{node.lineno} uses {name}"


_FUZZ_CHILD = textwrap.dedent("""
    import random, sys, warnings
    warnings.simplefilter("ignore")
    from ember import errors
    from ember.onnx import backend, safety
    data = open(sys.argv[1], "rb").read()
    out = sys.argv[2]
    rng = random.Random(int(sys.argv[3]))
    for i in range(int(sys.argv[4])):
        b = bytearray(data)
        kind = i % 4
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind == 1:
            b = b[:rng.randrange(len(b))]
        elif kind == 2:
            at = rng.randrange(len(b))
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:
            at = rng.randrange(len(b))
            del b[at:at + rng.randint(1, 16)]
        open(out, "wb").write(bytes(b))
        print("case", i, flush=True)
        try:
            backend.prepare(safety.load_model(out))
        except errors.EmberError:
            pass
        except Exception as e:
            print("BAD", i, type(e).__name__, str(e)[:200], flush=True)
    print("done", flush=True)
""")


def test_fuzzed_bytes_give_ember_errors(tmp_path):
    """300 mutations (byte flips, truncations, insertions, deletions) of a small model: each
    loads or raises an ember error; a crash or hang of the child shows as a bad exit code or a
    timeout, and the last 'case' line says which mutation did it."""
    model = _model()
    model.graph.node.append(helper.make_node("Relu", ["y"], ["z"], name="relu0"))
    model.graph.output[0].name = "z"
    src = _save(model, tmp_path / "seed.onnx")
    script = tmp_path / "fuzz.py"
    script.write_text(_FUZZ_CHILD)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(script), str(src), str(tmp_path / "m.onnx"), "6",
                           "300"], capture_output=True, text=True, timeout=120, env=env)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, f"child died (rc {proc.returncode}) after {lines[-1:]}: " \
                                 f"{proc.stderr[-2000:]}"
    bad = [ln for ln in lines if ln.startswith("BAD")]
    assert not bad, "non-ember errors:\n" + "\n".join(bad)
    assert lines[-1] == "done"
