"""Native kernels: the C sources here (``kernels.c``, ``pool.c``, ``gemm.c``, ``vector.c``,
``norm.c``, ``relu.c``, ``conv.c``, ``maxpool.c``, ``sgemm.c``, ``xent.c``) compiled on first
use with the machine's C compiler, called through ctypes on NumPy arrays' memory.

Why: some loops are a dozen tiny NumPy calls per step (an LSTM time step is ~13 calls of
2-8 us on (32, 128) blocks, more than its matrix product), and their cost is the calls, not
the arithmetic. One C loop per step does the same arithmetic in one call, with the
operands in cache. NumPy stays ember's array library: these functions read and write
NumPy arrays in place, and every caller keeps its NumPy path, taken whenever ``library()``
is None (no compiler, a compile error, not Linux/macOS, or ``EMBER_NATIVE=0``).

The shared object is cached per user in ``$EMBER_CACHE_DIR/native`` (default
``~/.cache/ember/native``; a private folder under the temporary directory if that cannot be
made), named by a hash of the source, the compiler's version and flags and
the CPU, so an upgrade or another machine sharing the home directory compiles its own. It is
written to a temporary file and renamed into place, so a crash mid-compile never leaves a
broken library, and it is loaded only from a directory owned by the user and not writable
by others. Compiling takes ~0.5 s, once.
"""

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading

__all__ = ["library", "reason", "cache_dir"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCES = tuple(os.path.join(_HERE, name)
                 for name in ("kernels.c", "pool.c", "gemm.c", "vector.c", "norm.c", "relu.c",
                              "conv.c", "maxpool.c", "sgemm.c", "xent.c"))
_HEADERS = (os.path.join(_HERE, "native.h"),)
_FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno", "-std=gnu99",
          "-pthread")

_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p
# name -> argtypes (functions return void unless listed in _RESULTS)
_SIGNATURES = {
    "ember_tanh_f32": (_I64, _PTR, _PTR),
    "ember_sigmoid_f32": (_I64, _PTR, _PTR),
    "ember_lstm_forward_f32": (_PTR, _I64, _I64, _PTR, _PTR) + (_I64,) * 4 + (_PTR, _PTR, _I64)
    + (_PTR,) * 7,
    "ember_lstm_backward_f32": (_PTR, _I64, _I64, _PTR, _PTR) + (_I64,) * 4 + (_PTR,) * 10
    + (_I64, _I64),
    "ember_gru_forward_f32": (_PTR, _I64, _I64, _PTR, _PTR, _I64, _I64, _I64) + (_PTR, _PTR)
    + (_I64,) + (_PTR,) * 4,
    "ember_gru_backward_f32": (_PTR, _I64, _I64, _PTR, _PTR, _I64, _I64, _I64) + (_PTR,) * 10
    + (_I64,),
    "ember_gemm": (_PTR,) + (_I64,) * 9 + (_PTR, _I64, _I64, _I64) * 3
    + (ctypes.c_double, ctypes.c_double, _PTR, _I64, _I64, _I64),
    "ember_axpby": (_I64, _I64, _I64, ctypes.c_double, _PTR, ctypes.c_double, _PTR, _I64),
    "ember_norm_stats": (_I64, _I64, _I64, _PTR, _PTR, _PTR, _I64),
    "ember_norm_dots": (_I64, _I64, _I64, _PTR, _PTR, _PTR, _PTR, _PTR, _I64),
    "ember_norm_affine": (_I64, _I64, _I64, _PTR, _PTR, _PTR, _PTR, _I64),
    "ember_norm_grad": (_I64, _I64, _I64) + (_PTR,) * 7 + (_I64,),
    "ember_norm_l_affine": (_I64, _I64, _I64) + (_PTR,) * 6 + (_I64,),
    "ember_norm_l_grad": (_I64, _I64, _I64) + (_PTR,) * 5 + (_I64, _PTR, _PTR, _PTR, _I64),
    # fn, ilp64, f64, n, parts, src, cs, sp, length, margin, width, kl, ones, copies, k0, lead,
    # w, co, stacked, out, bias, x, cx, xones, xlead, gw (native/conv.c)
    "ember_conv_rows": (_PTR, _I64, _I64, _I64, _I64, _PTR) + (_I64,) * 7
    + (_PTR, _I64, _PTR, _PTR, _I64, _I64, _PTR, _PTR, _PTR, _I64, _I64, _PTR, _PTR),
    "ember_relu": (_I64, _I64, _I64, _PTR, _PTR, _PTR, _I64),
    "ember_relu_backward_output": (_I64, _I64, _PTR, _PTR, _PTR, _I64),
    "ember_maxpool2x2": (_I64, _I64, _I64, _I64, _PTR, _PTR, _PTR, _PTR, _I64),
    "ember_adam": (_I64, _I64, _PTR, _PTR, _PTR, _PTR) + (ctypes.c_double,) * 7 + (_I64,),
    "ember_sgemm": (_I64,) * 5 + (ctypes.c_float, _PTR, _I64, _PTR, _I64, ctypes.c_float,
                                  _PTR, _I64, _PTR, _I64),
    "ember_sgemm_built": (),
    # f64, m, c, reduction, ignore_index, x, t, p, out (native/xent.c)
    "ember_xent_forward": (_I64,) * 5 + (_PTR,) * 4,
    # f64, m, c, reduction, ignore_index, t, p, g, gx
    "ember_xent_backward": (_I64,) * 5 + (_PTR,) * 4,
    "ember_pool_spin": (_I64,),
    "ember_pool_workers": (),
    "ember_pool_probe": (_I64, _I64, _PTR),
}
_RESULTS = {"ember_pool_workers": _I64, "ember_conv_rows": _I64, "ember_sgemm": ctypes.c_int,
            "ember_sgemm_built": _I64, "ember_xent_forward": _I64,
            "ember_xent_backward": _I64}

_LOCK = threading.Lock()
_STATE = {}  # "lib": CDLL or None, "reason": why None


def library():
    """The loaded kernels (a ctypes.CDLL with argtypes set), or None: see ``reason()``."""
    lib = _STATE.get("lib")
    if lib is not None or "reason" in _STATE:
        return lib
    with _LOCK:
        if "lib" not in _STATE and "reason" not in _STATE:
            try:
                _STATE["lib"] = _load()
            except _Unavailable as exc:
                _STATE["reason"] = str(exc)
    return _STATE.get("lib")


def reason():
    """Why ``library()`` is None ('' when it is loaded or not yet tried)."""
    return _STATE.get("reason", "")


def cache_dir():
    root = os.environ.get("EMBER_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "ember")
    return os.path.join(root, "native")


class _Unavailable(Exception):
    pass


def _compiler():
    cc = os.environ.get("CC") or "cc"
    path = shutil.which(cc)
    if path is None:
        raise _Unavailable(f"no C compiler: {cc!r} is not on PATH (set CC to use another)")
    return path


def _fingerprint(cc):
    """What the compiled code depends on: source, compiler, flags, CPU."""
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise _Unavailable(f"C compiler {cc} does not run: {exc}") from exc
    cpu = platform.processor() + platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu += next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    h = hashlib.sha256()
    for path in _SOURCES + _HEADERS:
        with open(path, "rb") as f:
            h.update(f.read())
    for part in (cc, version, " ".join(_FLAGS), cpu, sys.platform):
        h.update(part.encode())
    return h.hexdigest()[:20]


def _private_dir(path):
    """Create ``path`` (mode 0700) and refuse one that others could write into."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.stat(path)
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise _Unavailable(f"cache directory {path} belongs to another user")
    if st.st_mode & 0o022:
        raise _Unavailable(f"cache directory {path} is writable by others; chmod go-w it")


def _usable_cache_dir():
    """``cache_dir()``, or a private folder in the temporary directory when that cannot be
    created (a read-only home)."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    # one level under the shared temporary directory, so no folder another user made is used
    fallback = os.path.join(tempfile.gettempdir(), f"ember-native-{uid}")
    for directory in (cache_dir(), fallback):
        try:
            _private_dir(directory)
            return directory
        except OSError as exc:
            problem = f"cannot create cache directory {directory}: {exc}"
    raise _Unavailable(problem)


def _load():
    if os.environ.get("EMBER_NATIVE", "1") == "0":
        raise _Unavailable("turned off by EMBER_NATIVE=0")
    if not sys.platform.startswith(("linux", "darwin")):
        raise _Unavailable(f"native kernels are built on Linux and macOS only, not {sys.platform}")
    cc = _compiler()
    directory = _usable_cache_dir()
    target = os.path.join(directory, f"kernels-{_fingerprint(cc)}.so")
    if not os.path.exists(target):
        _compile(cc, target)
    try:
        lib = ctypes.CDLL(target)
    except OSError as exc:
        raise _Unavailable(f"cannot load {target}: {exc}") from exc
    for name, argtypes in _SIGNATURES.items():
        fn = getattr(lib, name, None)
        if fn is None:
            raise _Unavailable(f"{target} lacks {name}")
        fn.argtypes = argtypes
        fn.restype = _RESULTS.get(name)
    return lib


def _compile(cc, target):
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(target))
    os.close(fd)
    try:
        done = subprocess.run([cc, *_FLAGS, "-o", tmp, *_SOURCES], capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            raise _Unavailable(f"{cc} failed on {_HERE}:\n{done.stderr.strip()[:2000]}")
        os.replace(tmp, target)
    except (OSError, subprocess.SubprocessError) as exc:
        raise _Unavailable(f"compiling the sources in {_HERE} failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
