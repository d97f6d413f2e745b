"""Shared fixtures: a fixed seed per test, and the PyTorch oracle helpers in tests/oracle.py."""

import numpy
import pytest

import ember


@pytest.fixture(autouse=True)
def _seed():
    ember.manual_seed(0)
    numpy.random.seed(0)
    yield


def pytest_configure(config):
    """PyTorch (the test oracle) on one thread: on a 2-core machine its thread pool otherwise
    stalls small ops for tens of milliseconds while ember's NumPy work holds a core."""
    try:
        import torch
    except ImportError:  # the ember-only tests still run
        return
    torch.set_num_threads(1)
