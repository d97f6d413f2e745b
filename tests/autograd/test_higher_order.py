"""create_graph=True: Hessian-vector products and a gradient penalty, compared with PyTorch."""

import numpy
import torch

import ember


def _hvp(lib, grad_fn, w, x, v):
    loss = ((x @ w).exp() * 0.1 + (x @ w) * (x @ w)).sum()
    (g,) = grad_fn(loss, w, create_graph=True)
    (hv,) = grad_fn((g * v).sum(), w)
    return g, hv


def test_hessian_vector_product_matches_torch():
    rng = numpy.random.default_rng(0)
    w, x, v = rng.standard_normal((3, 2)), rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    ge, hve = _hvp(ember, ember.autograd.grad, ember.tensor(w, requires_grad=True),
                   ember.tensor(x), ember.tensor(v))
    gt, hvt = _hvp(torch, torch.autograd.grad, torch.tensor(w, requires_grad=True),
                   torch.tensor(x), torch.tensor(v))
    numpy.testing.assert_allclose(ge.detach().numpy(), gt.detach().numpy(), rtol=1e-10)
    numpy.testing.assert_allclose(hve.numpy(), hvt.numpy(), rtol=1e-10)


def test_gradient_penalty_matches_torch():
    """WGAN-GP style: loss + (||d out / d input|| - 1)^2, backpropagated into the weights."""
    rng = numpy.random.default_rng(1)
    w1, w2 = rng.standard_normal((5, 4)), rng.standard_normal((4, 1))
    x = rng.standard_normal((6, 5))

    def run(lib, grad_fn, tensor):
        W1, W2 = tensor(w1, requires_grad=True), tensor(w2, requires_grad=True)
        inp = tensor(x, requires_grad=True)
        h = (inp @ W1).exp() * 0.5
        out = (h @ W2).sum()
        (g,) = grad_fn(out, inp, create_graph=True)
        norm = ((g * g).sum(1) + 1e-12) ** 0.5
        penalty = ((norm - 1.0) ** 2).mean()
        (out + penalty).backward()
        return W1.grad, W2.grad

    e = run(ember, ember.autograd.grad, ember.tensor)
    t = run(torch, torch.autograd.grad, torch.tensor)
    for a, b in zip(e, t):
        numpy.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9)


def test_third_order_derivative_of_exp_times_x():
    x = ember.tensor([0.3], dtype=ember.float64, requires_grad=True)
    y = (x * x.exp()).sum()
    (g1,) = ember.autograd.grad(y, x, create_graph=True)
    (g2,) = ember.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = ember.autograd.grad(g2.sum(), x)
    # d^3/dx^3 x e^x = (x + 3) e^x
    numpy.testing.assert_allclose(g3.item(), (0.3 + 3) * numpy.exp(0.3), rtol=1e-12)


def test_create_graph_backward_leaves_differentiable_grad():
    x = ember.tensor([1.5, -0.5], dtype=ember.float64, requires_grad=True)
    (x * x * x).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    gsum = x.grad.sum()
    x.grad = None
    gsum.backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [9.0, -3.0])
