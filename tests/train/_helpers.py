"""Small models and data shared by the training tests."""

import numpy

import ember
from ember import nn


def blobs(n=256, features=4, classes=3, seed=0, separation=4.0):
    """Separable Gaussian blobs as float32/int64 NumPy arrays."""
    rng = numpy.random.default_rng(seed)
    centers = rng.standard_normal((classes, features)) * separation
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.standard_normal((n, features))
    return x.astype(numpy.float32), y.astype(numpy.int64)


def mlp(out=3, hidden=16):
    return nn.Sequential(nn.Linear(out_features=hidden), nn.ReLU(), nn.Linear(out_features=out))


class TwoInputs(nn.Module):
    """forward(a, b): concatenates two inputs' features."""

    def __init__(self, out=3):
        super().__init__()
        self.a = nn.Linear(out_features=8)
        self.b = nn.Linear(out_features=8)
        self.head = nn.Linear(16, out)

    def forward(self, a, b):
        return self.head(ember.cat([self.a(a).relu(), self.b(b).relu()], dim=1))
