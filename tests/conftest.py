"""Shared fixtures: a fixed seed per test, and the PyTorch oracle helpers in tests/oracle.py."""

import numpy
import pytest

import ember


@pytest.fixture(autouse=True)
def _seed():
    ember.manual_seed(0)
    numpy.random.seed(0)
    yield
