"""A process killed in the middle of ember.save leaves the previous file intact and loadable."""

import os
import signal
import subprocess
import sys
import time

import numpy

import ember

_SAVER = r"""
import sys, numpy, ember
path = sys.argv[1]
version = 1
while True:
    big = numpy.full((1 << 20,), float(version), dtype=numpy.float32)   # 4 MiB per save
    ember.save({"version": version, "w": ember.tensor(big)}, path)
    print(version, flush=True)
    version += 1
"""


def test_kill_during_save_never_corrupts_the_file(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    ember.save({"version": 0, "w": ember.zeros(1 << 20)}, path)
    rng = numpy.random.default_rng(0)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root)
    for trial in range(6):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], env=env,
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one save finished: the loop is now saving again
        time.sleep(float(rng.uniform(0.0, 0.05)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = ember.load(path)
        w = state["w"].numpy()
        assert w.shape == (1 << 20,)
        assert (w == float(state["version"])).all(), f"trial {trial}: mixed contents"
    leftovers = [f for f in os.listdir(tmp_path) if f != "ckpt.safetensors"]
    assert all(f.endswith(".tmp") for f in leftovers)
