"""import ember picks OpenBLAS's AVX-512 kernels only when that is safe and still effective."""

import os
import subprocess
import sys

from ember import _env


def _run(code, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE",
                                                             "EMBER_NO_BLAS_TUNING")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_tuning_follows_cpu_flags_and_import_order():
    avx512 = _env._NEEDED <= _env._cpu_flags()
    first = _run("import ember, os; print(os.environ.get('OPENBLAS_CORETYPE'))")
    assert first == ("SkylakeX" if avx512 else "None")
    assert _run("import numpy, ember, os; print(os.environ.get('OPENBLAS_CORETYPE'))") == "None"


def test_user_choice_and_opt_out_are_respected():
    code = "import ember, os; print(os.environ.get('OPENBLAS_CORETYPE'))"
    assert _run(code, OPENBLAS_CORETYPE="Haswell") == "Haswell"
    assert _run(code, EMBER_NO_BLAS_TUNING="1") == "None"


def test_malloc_tuning_is_applied_on_glibc_and_can_be_turned_off():
    import platform

    code = "import ember; print(ember._env.MALLOC_TUNED)"
    expected = "True" if platform.libc_ver()[0] == "glibc" else "False"
    assert _run(code) == expected
    assert _run(code, EMBER_NO_MALLOC_TUNING="1") == "False"
