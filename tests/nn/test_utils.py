"""nn.utils (clip_grad, parameters <-> vector) and ember.utils.checkpoint."""

import math

import numpy
import pytest
import torch

import ember
from ember import errors, nn
from ember.utils.checkpoint import checkpoint, checkpoint_sequential


def _grads_pair(seed=0):
    rng = numpy.random.default_rng(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    arrays = [rng.standard_normal(s).astype(numpy.float32) * 3 for s in shapes]
    e = [nn.Parameter(ember.zeros(*s)) for s in shapes]
    t = [torch.nn.Parameter(torch.zeros(*s)) for s in shapes]
    for ep, tp, a in zip(e, t, arrays):
        ep.grad = ember.tensor(a)
        tp.grad = torch.tensor(a)
    return e, t


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    e, t = _grads_pair()
    e_total = nn.utils.clip_grad_norm_(e, max_norm, norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(t, max_norm, norm_type)
    assert float(e_total) == pytest.approx(float(t_total), rel=1e-5)
    for ep, tp in zip(e, t):
        numpy.testing.assert_allclose(ep.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_clip_grad_norm_nonfinite_and_value():
    e, _ = _grads_pair()
    e[0].grad._data[0, 0] = numpy.nan
    with pytest.raises(errors.AutogradError, match="non-finite"):
        nn.utils.clip_grad_norm_(e, 1.0, error_if_nonfinite=True)
    e, t = _grads_pair()
    nn.utils.clip_grad_value_(e, 0.7)
    torch.nn.utils.clip_grad_value_(t, 0.7)
    for ep, tp in zip(e, t):
        numpy.testing.assert_array_equal(ep.grad.numpy(), tp.grad.numpy())
    assert float(nn.utils.clip_grad_norm_([nn.Parameter(ember.ones(2))], 1.0)) == 0.0


def test_parameters_vector_round_trip():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(model.parameters())
    assert vec.shape == (11,) and vec.requires_grad
    (vec * ember.arange(11.0)).sum().backward()
    numpy.testing.assert_array_equal(model[0].weight.grad.numpy().ravel(), numpy.arange(6.0))
    nn.utils.vector_to_parameters(vec.detach() * 2, model.parameters())
    numpy.testing.assert_allclose(nn.utils.parameters_to_vector(model.parameters()).detach()
                                  .numpy(), vec.detach().numpy() * 2)
    with pytest.raises(errors.ShapeError, match="vec has 3 elements but the parameters need 11"):
        nn.utils.vector_to_parameters(ember.zeros(3), model.parameters())


def _mlp(depth=6, width=16):
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), _ReLU()]
    return nn.Sequential(*layers)


class _ReLU(nn.Module):
    def forward(self, x):
        return x.relu()


class _Noise(nn.Module):
    """Multiplies by fresh uniform noise: a stand-in for dropout's random mask."""

    def forward(self, x):
        return x * ember.rand(*x.shape)


def _run(model, x, use_checkpoint, segments=3):
    model.zero_grad()
    x = x.detach().requires_grad_()
    if use_checkpoint:
        blocks = list(model)
        size = len(blocks) // segments
        h = x
        for i in range(segments):
            part = nn.Sequential(*blocks[i * size:(i + 1) * size])
            h = checkpoint(part, h, use_reentrant=False)
        out = h
    else:
        out = model(x)
    (out * out).sum().backward()
    return out.detach().numpy(), x.grad.numpy(), [p.grad.numpy().copy()
                                                  for p in model.parameters()]


def _assert_same(a, b):
    numpy.testing.assert_array_equal(a[0], b[0])
    numpy.testing.assert_array_equal(a[1], b[1])
    for ga, gb in zip(a[2], b[2]):
        numpy.testing.assert_array_equal(ga, gb)


def test_checkpoint_gradients_equal_plain_run_exactly():
    model = _mlp()
    x = ember.randn(8, 16)
    _assert_same(_run(model, x, True), _run(model, x, False))


def test_checkpoint_replays_random_numbers():
    model = nn.Sequential(nn.Linear(8, 8), _Noise(), nn.Linear(8, 8), _Noise())
    x = ember.randn(4, 8)
    ember.manual_seed(5)
    plain = _run(model, x, False, segments=2)
    after_plain = ember.rand(3).numpy()
    ember.manual_seed(5)
    ckpt = _run(model, x, True, segments=2)
    after_ckpt = ember.rand(3).numpy()
    _assert_same(ckpt, plain)
    numpy.testing.assert_array_equal(after_plain, after_ckpt)


def test_checkpoint_matches_torch_and_supports_autograd_grad():
    torch.manual_seed(0)
    t_model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Linear(7, 3))
    e_model = nn.Sequential(nn.Linear(5, 7), nn.Linear(7, 3))
    e_model.load_state_dict({k: v.numpy() for k, v in t_model.state_dict().items()})
    x = numpy.random.default_rng(0).standard_normal((4, 5)).astype(numpy.float32)
    t_x = torch.tensor(x, requires_grad=True)
    t_out = torch.utils.checkpoint.checkpoint(lambda h: t_model[1](torch.relu(t_model[0](h))),
                                              t_x, use_reentrant=False)
    t_out.square().sum().backward()
    e_x = ember.tensor(x, requires_grad=True)
    e_out = checkpoint(lambda h: e_model[1](e_model[0](h).relu()), e_x, use_reentrant=False)
    (e_out * e_out).sum().backward()
    numpy.testing.assert_allclose(e_x.grad.numpy(), t_x.grad.numpy(), rtol=1e-5, atol=1e-6)
    for e_p, t_p in zip(e_model.parameters(), t_model.parameters()):
        numpy.testing.assert_allclose(e_p.grad.numpy(), t_p.grad.numpy(), rtol=1e-5, atol=1e-6)
    # autograd.grad w.r.t. a parameter used only inside the checkpoint (input needs no grad).
    e_out = checkpoint(lambda h: e_model[1](e_model[0](h).relu()), ember.tensor(x))
    (gw,) = ember.autograd.grad((e_out * e_out).sum(), [e_model[0].weight])
    numpy.testing.assert_allclose(gw.numpy(), t_model[0].weight.grad.numpy(), rtol=1e-5,
                                  atol=1e-6)


def test_checkpoint_with_outside_non_leaf_tensor_and_tuple_output():
    a = ember.randn(3, 3, requires_grad=True)
    x = ember.randn(2, 3, requires_grad=True)
    scale = a * 2  # a non-leaf captured by the closure

    def fn(h):
        y = h @ scale
        return y, y.exp()

    y1, y2 = checkpoint(fn, x)
    (y1.sum() + y2.sum()).backward()
    ga, gx = a.grad.numpy().copy(), x.grad.numpy().copy()
    a.grad = None
    x.grad = None
    scale = a * 2  # the first backward freed the old graph
    z1, z2 = fn(x)
    (z1.sum() + z2.sum()).backward()
    numpy.testing.assert_array_equal(ga, a.grad.numpy())
    numpy.testing.assert_array_equal(gx, x.grad.numpy())


def test_checkpoint_sequential_and_errors():
    model = _mlp(depth=4)
    x = ember.randn(3, 16, requires_grad=True)
    out = checkpoint_sequential(model, 2, x, use_reentrant=False)
    numpy.testing.assert_array_equal(out.detach().numpy(), model(x).detach().numpy())
    out.sum().backward()
    assert model[0].weight.grad is not None
    with pytest.raises(errors.AutogradError, match="must return a Tensor"):
        checkpoint(lambda h: {"out": h * 2}, x)
