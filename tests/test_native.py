"""ember.backend.native: building, caching and loading the C kernels, and the accuracy of
their own tanh and sigmoid (the LSTM loops built on them: tests/nn/test_rnn_native.py)."""

import os
import shutil
import stat

import numpy
import pytest

from ember.backend import native

HAVE_CC = shutil.which(os.environ.get("CC") or "cc") is not None
needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no C compiler: ember uses its NumPy loops")


def _address(a):
    return a.__array_interface__["data"][0]


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty private cache directory for ``native._load``."""
    root = tmp_path / "cache"
    monkeypatch.setenv("EMBER_CACHE_DIR", str(root))
    monkeypatch.delenv("EMBER_NATIVE", raising=False)
    return root


@needs_cc
def test_library_loads_and_has_every_kernel():
    lib = native.library()
    assert lib is not None, native.reason()
    for name in native._SIGNATURES:
        assert getattr(lib, name).argtypes is not None


@needs_cc
def test_compiled_once_into_a_private_cache_then_reused(fresh_cache):
    native._load()
    built = list((fresh_cache / "native").glob("kernels-*.so"))
    assert len(built) == 1
    mode = stat.S_IMODE(os.stat(fresh_cache / "native").st_mode)
    assert mode & 0o077 == 0
    stamp = built[0].stat().st_mtime_ns
    native._load()
    assert [p.stat().st_mtime_ns for p in (fresh_cache / "native").iterdir()] == [stamp]


def test_a_cache_others_can_write_is_refused(fresh_cache):
    directory = fresh_cache / "native"
    directory.mkdir(parents=True)
    directory.chmod(0o777)
    with pytest.raises(native._Unavailable, match="writable by others"):
        native._private_dir(str(directory))


def test_turned_off_or_without_a_compiler_says_why(fresh_cache, monkeypatch):
    monkeypatch.setenv("EMBER_NATIVE", "0")
    with pytest.raises(native._Unavailable, match="EMBER_NATIVE=0"):
        native._load()
    monkeypatch.delenv("EMBER_NATIVE")
    monkeypatch.setenv("CC", "ember-no-such-compiler")
    with pytest.raises(native._Unavailable, match="no C compiler"):
        native._load()


@needs_cc
def test_a_compile_error_leaves_no_library_behind(fresh_cache, monkeypatch, tmp_path):
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C;\n")
    monkeypatch.setattr(native, "_SOURCES", native._SOURCES + (str(broken),))
    with pytest.raises(native._Unavailable, match="failed"):
        native._load()
    assert not list((fresh_cache / "native").iterdir())


def _grid():
    wide = numpy.linspace(-100, 100, 200001, dtype=numpy.float32)
    near_zero = numpy.linspace(-1, 1, 200001, dtype=numpy.float32)
    special = numpy.array([0.0, -0.0, 1e-30, -1e-30, 1e-8, 1e-40, 9.0, 9.5, 87.0, 88.5, -87.5,
                           -100.0, numpy.inf, -numpy.inf, numpy.nan], dtype=numpy.float32)
    return numpy.concatenate([wide, near_zero, special])


@needs_cc
@pytest.mark.parametrize("name, reference", [
    ("ember_tanh_f32", numpy.tanh),
    ("ember_sigmoid_f32", lambda x: 1 / (1 + numpy.exp(-x))),
])
def test_activations_within_four_ulp_of_float64(name, reference):
    x = _grid()
    y = numpy.full_like(x, 7.0)
    getattr(native.library(), name)(x.size, _address(x), _address(y))
    with numpy.errstate(over="ignore"):
        exact = reference(x.astype(numpy.float64))
    nan = numpy.isnan(exact)
    assert numpy.array_equal(numpy.isnan(y), nan)
    ok = ~nan
    # 4 ulp relative, and an absolute floor for results below float32's normal range
    tolerance = 4 * numpy.finfo(numpy.float32).eps * numpy.abs(exact[ok]) + 2e-38
    assert numpy.all(numpy.abs(y[ok] - exact[ok]) <= tolerance)
    if name == "ember_tanh_f32":  # odd, signed zeros kept
        assert numpy.array_equal(numpy.signbit(y[ok]), numpy.signbit(exact[ok]))


def test_an_unusable_cache_falls_back_to_a_private_temporary_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("EMBER_CACHE_DIR", str(blocker))  # cannot make folders under a file
    monkeypatch.setattr(native.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    directory = native._usable_cache_dir()
    assert directory.startswith(str(tmp_path / "tmp"))
    assert stat.S_IMODE(os.stat(directory).st_mode) & 0o077 == 0
