"""A Linear followed by a ReLU as one node (F._linear_relu, nn.Sequential's pairs,
TransformerEncoderLayer's feed-forward): the same values and gradients as the two layers run
apart, bit for bit, and PyTorch's; hooks and tracers see the two layers."""

import numpy
import pytest
import torch

import ember
from ember import nn
from ember.backend import threads
from ember.nn import functional as F
from ember.ops import _relu_native
from tests.oracle import check_double_backward, check_op


@pytest.fixture(params=[1, 2])
def num_threads(request):
    before = threads.get_num_threads()
    ember.set_num_threads(request.param)
    yield request.param
    ember.set_num_threads(before)


def _pair(n_in, n_out, bias=True, dtype=ember.float32, seed=0):
    ember.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, n_out, bias=bias), nn.ReLU()).to(dtype)


def _run(model, x, split):
    """Forward and backward of ``model`` on ``x``: fused (the Sequential), or ``split`` (each
    layer called on its own). Returns the output and the gradients of x and the parameters."""
    x = ember.tensor(x, requires_grad=True)
    y = model[1](model[0](x)) if split else model(x)
    w = ember.tensor(numpy.random.default_rng(5).standard_normal(y.shape).astype(x.detach().numpy().dtype))
    (y * w).sum().backward()
    grads = [x.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    return y, grads


# small (NumPy's product), W1's layer (the kernel, split over the pool), leading dims, a
# non-contiguous input
@pytest.mark.parametrize("shape, n_out", [((3, 5), 4), ((128, 784), 512), ((4, 16, 96), 64),
                                          ("strided", 96)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_fused_pair_equals_the_two_layers(shape, n_out, bias, dtype, num_threads):
    rng = numpy.random.default_rng(1)
    if shape == "strided":
        x = rng.standard_normal((200, 160)).astype(dtype)[::2, ::2]
    else:
        x = rng.standard_normal(shape).astype(dtype)
    model = _pair(x.shape[-1], n_out, bias, ember.float32 if dtype == numpy.float32 else
                  ember.float64)
    fused, fused_grads = _run(model, x, split=False)
    split, split_grads = _run(model, x, split=True)
    assert type(fused.grad_fn).__name__ == "_LinearReLU"
    assert type(split.grad_fn).__name__ == "ReLU"
    out = fused.detach().numpy()
    assert (out == 0).any() and (out > 0).any()
    numpy.testing.assert_array_equal(out, split.detach().numpy())
    for got, want in zip(fused_grads, split_grads):
        numpy.testing.assert_array_equal(got, want)


def test_nan_and_signed_zero_like_relu():
    """NaN stays NaN and passes its gradient as ReLU's mask does; an exact 0 gets none."""
    model = _pair(4, 3, bias=False)
    with ember.no_grad():
        model[0].weight.copy_(ember.tensor(numpy.eye(3, 4, dtype=numpy.float32)))
    x = numpy.array([[numpy.nan, -1.0, 0.0, 5.0], [2.0, -0.0, 3.0, 1.0]], numpy.float32)
    fused, fused_grads = _run(model, x, split=False)
    split, split_grads = _run(model, x, split=True)
    numpy.testing.assert_array_equal(fused.detach().numpy(), split.detach().numpy())
    for got, want in zip(fused_grads, split_grads):
        numpy.testing.assert_array_equal(got, want)
    assert numpy.isnan(fused.detach().numpy()[0, 0])


@pytest.mark.parametrize("shapes", [[(6, 5), (4, 5), (4,)], [(2, 3, 5), (4, 5), (4,)],
                                    [(64, 300), (40, 300), (40,)]])
def test_linear_relu_matches_torch_and_gradcheck(shapes):
    check_op(lambda x, w, b: F._linear_relu(x, w, b), shapes,
             torch_fn=lambda x, w, b: torch.relu(torch.nn.functional.linear(x, w, b)))


def test_linear_relu_float32_matches_torch():
    check_op(lambda x, w, b: F._linear_relu(x, w, b), [(128, 784), (512, 784), (512,)],
             torch_fn=lambda x, w, b: torch.relu(torch.nn.functional.linear(x, w, b)),
             dtype=numpy.float32, rtol=1e-4, atol=1e-4)


def test_double_backward():
    check_double_backward(lambda x, w, b: F._linear_relu(x, w, b), [(5, 4), (3, 4), (3,)])


def test_gradient_penalty_matches_torch():
    rng = numpy.random.default_rng(3)
    x, w, b = (rng.standard_normal(s) for s in [(6, 5), (4, 5), (4,)])
    results = []
    for lib, fn in ((ember, lambda x, w, b: F._linear_relu(x, w, b)),
                    (torch, lambda x, w, b: torch.relu(torch.nn.functional.linear(x, w, b)))):
        xs = [lib.tensor(v, requires_grad=True) for v in (x, w, b)]
        y = fn(*xs)
        (gx,) = lib.autograd.grad((y * y).sum(), [xs[0]], create_graph=True)
        (gx * gx).sum().backward()
        results.append([t.grad.numpy() for t in xs[1:]])
    for got, want in zip(*results):
        numpy.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_hooks_see_both_layers():
    """A hook on either layer turns the fusion off: the Linear's hook gets the values before
    the ReLU, the ReLU's hook gets called."""
    model = _pair(8, 16)
    x = ember.randn(32, 8)
    seen = {}
    handle = model[0].register_forward_hook(lambda m, a, out: seen.update(linear=out))
    y = model(x)
    before = seen["linear"].detach().numpy()
    assert (before < 0).any()
    numpy.testing.assert_array_equal(y.detach().numpy(), numpy.maximum(before, 0))
    handle.remove()
    handle = model[1].register_forward_hook(lambda m, a, out: seen.update(relu=out))
    y = model(x)
    assert "relu" in seen and seen["relu"] is y
    handle.remove()


def test_lazy_linear_and_a_lone_linear():
    """A lazy Linear initializes on its first call (through its pre-hook), then fuses; a
    Linear last in the Sequential runs alone."""
    model = nn.Sequential(nn.Linear(out_features=6), nn.ReLU(), nn.Linear(6, 3))
    x = ember.randn(5, 4, requires_grad=True)
    y = model(x)
    assert model[0].in_features == 4 and y.shape == (5, 3)
    assert type(y.grad_fn).__name__ == "_Linear"
    inner = model[:2](x)
    assert type(inner.grad_fn).__name__ == "_LinearReLU"


def test_errors_name_the_layer():
    model = _pair(8, 4)
    with pytest.raises(ember.errors.ShapeError, match=r"Linear\(in_features=8.*expected input"):
        model(ember.randn(3, 5))


def test_onnx_export_keeps_the_relu(tmp_path):
    """Under a tracer (ONNX export) the pair runs as two layers, so the graph has a Relu."""
    onnx = pytest.importorskip("onnx")
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    path = tmp_path / "mlp.onnx"
    ember.onnx.export(model, ember.randn(3, 4), str(path))
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "Relu" in ops


def test_transformer_feed_forward_fused_equals_unfused():
    """TransformerEncoderLayer with activation "relu" runs linear1 + ReLU as one node; a
    callable ReLU (not F.relu itself) runs them apart: equal outputs and gradients."""
    ember.manual_seed(0)
    fused = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    apart = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True,
                                       activation=lambda t: F.relu(t))
    apart.load_state_dict(fused.state_dict())
    x = numpy.random.default_rng(2).standard_normal((3, 10, 32)).astype(numpy.float32)
    outs = []
    for layer in (fused, apart):
        xt = ember.tensor(x, requires_grad=True)
        y = layer(xt)
        y.pow(2).sum().backward()
        outs.append([y.detach().numpy(), xt.grad.numpy(), layer.linear1.weight.grad.numpy(),
                     layer.linear1.bias.grad.numpy()])
    for got, want in zip(*outs):
        numpy.testing.assert_array_equal(got, want)


def test_backward_from_output_native_and_numpy_agree():
    """The native backward pass from ReLU's output (no mask) against NumPy, NaN included."""
    rng = numpy.random.default_rng(4)
    for dtype in (numpy.float32, numpy.float64):
        y = numpy.maximum(rng.standard_normal(1 << 16), 0).astype(dtype)
        y[::97] = numpy.nan
        y[1::89] = 0.0
        gy = rng.standard_normal(y.shape).astype(dtype)
        assert _relu_native.library(y) is not None
        got = _relu_native.backward_from_output(gy, y)
        want = gy * numpy.logical_not(y <= 0)
        numpy.testing.assert_array_equal(got, want)
