"""Property tests: for any pair of broadcastable shapes, binary ops give NumPy's broadcast
shape, and every input's gradient has the input's shape and equals the broadcast gradient
summed over the stretched dimensions."""

import numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ember

OPS = {
    "add": (lambda a, b: a + b, lambda a, b, g: (g, g)),
    "sub": (lambda a, b: a - b, lambda a, b, g: (g, -g)),
    "mul": (lambda a, b: a * b, lambda a, b, g: (g * b, g * a)),
    "div": (lambda a, b: a / b, lambda a, b, g: (g / b, -g * a / (b * b))),
}


def _sum_to(g, shape):
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


@settings(max_examples=60, deadline=None)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
    op=st.sampled_from(sorted(OPS)),
    seed=st.integers(0, 2**16),
)
def test_binary_broadcast_forward_and_gradient_reduction(shapes, op, seed):
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    rng = numpy.random.default_rng(seed)
    a = rng.standard_normal(sa)
    b = rng.uniform(0.5, 2.0, sb)
    fn, grads = OPS[op]
    ea, eb = ember.tensor(a, requires_grad=True), ember.tensor(b, requires_grad=True)
    out = fn(ea, eb)
    assert tuple(out.shape) == tuple(out_shape)
    numpy.testing.assert_allclose(out.numpy(force=True), fn(a, b), rtol=1e-12)
    g = rng.standard_normal(out_shape)
    out.backward(ember.tensor(g))
    ga, gb = grads(numpy.broadcast_to(a, out_shape), numpy.broadcast_to(b, out_shape), g)
    assert ea.grad.shape == a.shape and eb.grad.shape == b.shape
    numpy.testing.assert_allclose(ea.grad.numpy(), _sum_to(ga, sa), rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(eb.grad.numpy(), _sum_to(gb, sb), rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=3))
def test_incompatible_shapes_name_both(shapes):
    (sa, sb) = shapes.input_shapes
    bad = tuple(s + 1 if s > 1 else 2 for s in sa)
    try:
        numpy.broadcast_shapes(bad, sa)
        return
    except ValueError:
        pass
    a, b = ember.zeros(bad), ember.zeros(sa)
    try:
        a + b
    except ember.errors.ShapeError as exc:
        msg = str(exc)
        assert msg.startswith("add:") and "cannot be broadcast" in msg
        assert ember.errors.shape_str(bad) in msg and ember.errors.shape_str(sa) in msg
    else:
        raise AssertionError("expected a ShapeError")
