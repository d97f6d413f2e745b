"""Seeded random tensors: reproducible, with the right shapes, dtypes and distributions."""

import numpy
import pytest

import ember


def test_manual_seed_repeats_every_sampler():
    def draw():
        ember.manual_seed(123)
        return [ember.rand(3).tolist(), ember.randn(2, 2).tolist(),
                ember.randint(0, 10, (4,)).tolist(), ember.randperm(5).tolist(),
                ember.normal(0.0, 2.0, (3,)).tolist()]

    assert draw() == draw()
    ember.manual_seed(124)
    assert ember.rand(3).tolist() != draw()[0]


def test_shapes_dtypes_and_ranges():
    assert ember.rand(2, 3).dtype == ember.float32
    assert ember.randn((4,), dtype=ember.float64).dtype == ember.float64
    r = ember.randint(3, 7, (1000,))
    assert r.dtype == ember.int64 and r.numpy().min() >= 3 and r.numpy().max() < 7
    assert sorted(ember.randperm(10).tolist()) == list(range(10))
    assert ember.randint(5, (2, 2)).shape == (2, 2)
    u = ember.rand(10000).numpy()
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.02
    n = ember.randn(20000).numpy()
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1) < 0.03
    with pytest.raises(ember.errors.DTypeError, match="floating"):
        ember.rand(2, dtype=ember.int32)


def test_generator_state_round_trip():
    g = ember.Generator(7)
    state = g.get_state()
    a = ember.rand(5, generator=g).tolist()
    g.set_state(state)
    assert ember.rand(5, generator=g).tolist() == a
    ember.manual_seed(3)
    s = ember.get_rng_state()
    b = ember.randn(4).tolist()
    ember.set_rng_state(s)
    assert ember.randn(4).tolist() == b


def test_like_functions_and_normal_with_tensors():
    x = ember.zeros(2, 3, dtype=ember.float64)
    assert ember.rand_like(x).dtype == ember.float64 and ember.randn_like(x).shape == (2, 3)
    m = ember.tensor([0.0, 100.0])
    s = ember.normal(m, 1e-6)
    numpy.testing.assert_allclose(s.numpy(), [0.0, 100.0], atol=1e-3)
