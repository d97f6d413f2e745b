"""batch_norm, instance_norm, layer_norm, group_norm and rms_norm against PyTorch: values,
gradients (float64 and float32), finite differences, double backward, running statistics."""

import numpy
import pytest
import torch
import torch.nn.functional as TF

import ember
from ember import errors
from ember.nn import functional as F
from tests.oracle import check_double_backward, check_op

torch.set_num_threads(1)  # small tensors: torch's thread pool only adds spinning

RM = numpy.array([0.3, -0.2, 0.1])
RV = numpy.array([0.5, 1.5, 2.0])


def _bn_train(x, w, b, lib):
    return lib.batch_norm(x, None, None, w, b, training=True)


def _bn_eval(x, w, b, lib, tensor):
    dtype = x.dtype
    return lib.batch_norm(x, tensor(RM, dtype=dtype), tensor(RV, dtype=dtype), w, b,
                          training=False)


CASES = [
    # (name, ember fn, torch fn, input shapes)
    ("bn_train", lambda x, w, b: _bn_train(x, w, b, F), lambda x, w, b: _bn_train(x, w, b, TF),
     [(4, 3, 5), (3,), (3,)]),
    ("bn_train_2d", lambda x: F.batch_norm(x, None, None, training=True),
     lambda x: TF.batch_norm(x, None, None, training=True), [(5, 3)]),
    ("bn_train_4d", lambda x, w: F.batch_norm(x, None, None, w, training=True, eps=1e-3),
     lambda x, w: TF.batch_norm(x, None, None, w, training=True, eps=1e-3),
     [(2, 3, 2, 3), (3,)]),
    ("bn_eval", lambda x, w, b: _bn_eval(x, w, b, F, ember.tensor),
     lambda x, w, b: _bn_eval(x, w, b, TF, torch.tensor), [(4, 3, 2, 2), (3,), (3,)]),
    ("bn_eval_frozen_weight", lambda x: _bn_eval(x, ember.tensor(RV + 1, dtype=x.dtype), None,
                                                 F, ember.tensor),
     lambda x: _bn_eval(x, torch.tensor(RV + 1, dtype=x.dtype), None, TF, torch.tensor),
     [(3, 3, 2)]),
    # Batches of 4 and more with a spatial size take the path with per-channel (C, L) operands
    # (_channel_operand); the cases above with 2-3 samples keep the plain broadcast.
    ("bn_train_5d_plain", lambda x: F.batch_norm(x, None, None, training=True),
     lambda x: TF.batch_norm(x, None, None, training=True), [(5, 2, 2, 3, 2)]),
    ("bn_train_weight_only", lambda x, w: F.batch_norm(x, None, None, w, training=True),
     lambda x, w: TF.batch_norm(x, None, None, w, training=True), [(6, 3, 4), (3,)]),
    ("bn_train_bias_only", lambda x, b: F.batch_norm(x, None, None, None, b, training=True),
     lambda x, b: TF.batch_norm(x, None, None, None, b, training=True), [(4, 3, 2, 2), (3,)]),
    ("bn_eval_plain", lambda x: _bn_eval(x, None, None, F, ember.tensor),
     lambda x: _bn_eval(x, None, None, TF, torch.tensor), [(5, 3, 3)]),
    ("bn_eval_weight_only", lambda x, w: _bn_eval(x, w, None, F, ember.tensor),
     lambda x, w: _bn_eval(x, w, None, TF, torch.tensor), [(4, 3, 2, 3), (3,)]),
    ("in", lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
     lambda x, w, b: TF.instance_norm(x, weight=w, bias=b), [(2, 3, 4, 2), (3,), (3,)]),
    ("in_eval", lambda x: F.instance_norm(x, ember.tensor(RM), ember.tensor(RV),
                                          use_input_stats=False),
     lambda x: TF.instance_norm(x, torch.tensor(RM), torch.tensor(RV), use_input_stats=False),
     [(2, 3, 4)]),
    ("ln", lambda x, w, b: F.layer_norm(x, (4, 5), w, b),
     lambda x, w, b: TF.layer_norm(x, (4, 5), w, b), [(2, 3, 4, 5), (4, 5), (4, 5)]),
    ("ln_plain", lambda x: F.layer_norm(x, 6), lambda x: TF.layer_norm(x, (6,)), [(3, 6)]),
    ("ln_bias_only", lambda x, b: F.layer_norm(x, (5,), None, b, 1e-2),
     lambda x, b: TF.layer_norm(x, (5,), None, b, 1e-2), [(2, 3, 5), (5,)]),
    ("gn", lambda x, w, b: F.group_norm(x, 2, w, b), lambda x, w, b: TF.group_norm(x, 2, w, b),
     [(2, 4, 3, 3), (4,), (4,)]),
    ("gn_plain", lambda x: F.group_norm(x, 3), lambda x: TF.group_norm(x, 3), [(2, 6, 5)]),
    ("rms", lambda x, w: F.rms_norm(x, (5,), w), lambda x, w: TF.rms_norm(x, (5,), w),
     [(2, 3, 5), (5,)]),
    ("normalize", lambda x: F.normalize(x), lambda x: TF.normalize(x), [(3, 4, 2)]),
    ("normalize_p1", lambda x: F.normalize(x, 1.0, -1), lambda x: TF.normalize(x, 1.0, -1),
     [(3, 5)]),
    ("lrn", lambda x: F.local_response_norm(x, 3, alpha=0.5), lambda x: TF.local_response_norm(
        x, 3, alpha=0.5), [(2, 5, 3)]),
    ("lrn_4d", lambda x: F.local_response_norm(x, 2, 0.2, 0.5, 2.0),
     lambda x: TF.local_response_norm(x, 2, 0.2, 0.5, 2.0), [(2, 4, 2, 3)]),
    ("rms_eps", lambda x: F.rms_norm(x, (2, 5), eps=1e-3),
     lambda x: TF.rms_norm(x, (2, 5), eps=1e-3), [(3, 2, 5)]),
]


@pytest.mark.parametrize("name, fn, tfn, specs", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_and_finite_differences(name, fn, tfn, specs):
    check_op(fn, specs, torch_fn=tfn)


@pytest.mark.parametrize("name, fn, tfn, specs", CASES, ids=[c[0] for c in CASES])
def test_float32(name, fn, tfn, specs):
    check_op(fn, specs, torch_fn=tfn, dtype=numpy.float32, rtol=2e-4, atol=2e-5)


# These are affine in their only input: the second derivative is identically zero.
SECOND = [c for c in CASES
          if c[0] not in ("in_eval", "bn_eval_frozen_weight", "bn_eval_plain")]


@pytest.mark.parametrize("name, fn, tfn, specs", SECOND, ids=[c[0] for c in SECOND])
def test_double_backward(name, fn, tfn, specs):
    check_double_backward(fn, specs)


# The weight-per-channel passes (batch_norm, instance_norm) run chunk by chunk of the batch
# (norm._CHUNK_BYTES): these cases have more than one sample, with and without (C, L) operands.
CHUNKED = [c for c in CASES if c[0].startswith(("bn", "in"))]


@pytest.mark.parametrize("name, fn, tfn, specs", CHUNKED, ids=[c[0] for c in CHUNKED])
@pytest.mark.parametrize("chunk_bytes", [1, 40])
def test_per_channel_passes_in_chunks(name, fn, tfn, specs, chunk_bytes, monkeypatch):
    """One sample per chunk (1 byte) or chunks of one or a few samples with a short last one
    (40 bytes): the same values and gradients as PyTorch, and as one chunk, bit for bit."""
    from ember.ops import norm as norm_ops

    monkeypatch.setattr(norm_ops, "_CHUNK_BYTES", chunk_bytes)
    check_op(fn, specs, torch_fn=tfn)
    rng = numpy.random.default_rng(4)
    args = [rng.standard_normal(s).astype(numpy.float32) for s in specs]

    def run():
        ts = [ember.tensor(a, requires_grad=True) for a in args]
        y = fn(*ts)
        y.backward(ember.tensor(numpy.cos(numpy.arange(y.numel()).reshape(y.shape)),
                                dtype=y.dtype))
        return [y.detach().numpy()] + [t.grad.numpy() for t in ts]

    chunked = run()
    monkeypatch.setattr(norm_ops, "_CHUNK_BYTES", 1 << 30)
    for got, want in zip(chunked, run()):
        numpy.testing.assert_array_equal(got, want)


# layer_norm's and rms_norm's input gradient runs over rows in chunks on large inputs
# (norm._ROW_CHUNK_BYTES): forced here on small ones, one row (1 byte) or a few (40 bytes).
ROW_CHUNKED = [c for c in CASES if c[0].startswith(("ln", "rms"))]


def _run_fwd_bwd(fn, args):
    ts = [ember.tensor(a, requires_grad=True) for a in args]
    y = fn(*ts)
    y.backward(ember.tensor(numpy.cos(numpy.arange(y.numel()).reshape(y.shape)), dtype=y.dtype))
    return [y.detach().numpy()] + [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("name, fn, tfn, specs", ROW_CHUNKED, ids=[c[0] for c in ROW_CHUNKED])
@pytest.mark.parametrize("chunk_bytes", [1, 40])
def test_rows_input_grad_in_chunks(name, fn, tfn, specs, chunk_bytes, monkeypatch):
    """The same values and gradients as PyTorch, and as the whole-array path, bit for bit."""
    from ember.ops import norm as norm_ops

    monkeypatch.setattr(norm_ops, "_ROW_CHUNK_BYTES", chunk_bytes)
    check_op(fn, specs, torch_fn=tfn)
    rng = numpy.random.default_rng(4)
    args = [rng.standard_normal(s).astype(numpy.float32) for s in specs]
    chunked = _run_fwd_bwd(fn, args)
    monkeypatch.setattr(norm_ops, "_ROW_CHUNK_BYTES", 1 << 30)
    for got, want in zip(chunked, _run_fwd_bwd(fn, args)):
        numpy.testing.assert_array_equal(got, want)


def test_layer_norm_float32_rows_in_chunks_by_default(monkeypatch):
    """An input over 4 chunks (1.3 MB, a short last chunk) with a large mean: the chunked
    input gradient equals the whole-array one and PyTorch's."""
    from ember.ops import norm as norm_ops

    rng = numpy.random.default_rng(6)
    x = (rng.standard_normal((4, 275, 300)) * 3 + 50).astype(numpy.float32)
    w, b = (rng.uniform(0.5, 1.5, 300).astype(numpy.float32) for _ in range(2))
    assert norm_ops._row_chunks(numpy, x.reshape(1, -1, 300)) is not None

    def fn(x, w, b):
        return F.layer_norm(x, (300,), w, b)

    chunked = _run_fwd_bwd(fn, [x, w, b])
    monkeypatch.setattr(norm_ops, "_ROW_CHUNK_BYTES", 1 << 30)
    for got, want in zip(chunked, _run_fwd_bwd(fn, [x, w, b])):
        numpy.testing.assert_array_equal(got, want)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    ty = TF.layer_norm(*ts[:1], (300,), *ts[1:])
    ty.backward(torch.cos(torch.arange(ty.numel(), dtype=torch.float32)).reshape(ty.shape))
    for got, want in zip(chunked, [ty.detach()] + [t.grad for t in ts]):
        numpy.testing.assert_allclose(got, want.numpy(), rtol=2e-4, atol=2e-4)


def test_batch_norm_float32_in_chunks_by_default():
    """A batch of 64 x 32 channels of 16 x 16 (32 KB per sample) runs in several chunks with
    the default chunk size; float32 against torch, with a large mean."""
    from ember.ops import norm as norm_ops

    assert len(norm_ops._chunks(numpy, (64, 32, 256), 4)) > 1
    check_op(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
             [(64, 32, 16, 16), (32,), (32,)],
             torch_fn=lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
             dtype=numpy.float32, rtol=2e-4, atol=2e-5, gradcheck=False)
    x = (numpy.random.default_rng(5).standard_normal((64, 32, 16, 16)) + 100)
    x = x.astype(numpy.float32)
    e = F.batch_norm(ember.tensor(x), None, None, training=True).numpy()
    t = TF.batch_norm(torch.tensor(x), None, None, training=True).numpy()
    numpy.testing.assert_allclose(e, t, rtol=1e-3, atol=1e-3)


def test_noncontiguous_input_and_large_mean():
    check_op(lambda x: F.layer_norm(x.mT, (3,)), [(3, 4)],
             torch_fn=lambda x: TF.layer_norm(x.mT, (3,)))
    check_op(lambda x: F.batch_norm(x.mT, None, None, training=True), [(3, 6)],
             torch_fn=lambda x: TF.batch_norm(x.mT, None, None, training=True))
    # Two-pass variance: a large common offset does not cancel the signal (float32).
    x = (numpy.random.default_rng(0).standard_normal((64, 4)) + 1000).astype(numpy.float32)
    e = F.batch_norm(ember.tensor(x), None, None, training=True).numpy()
    t = TF.batch_norm(torch.tensor(x), None, None, training=True).numpy()
    numpy.testing.assert_allclose(e, t, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("momentum", [0.1, 0.5])
def test_batch_norm_running_stats_follow_torch(momentum):
    rng = numpy.random.default_rng(1)
    erm, erv = ember.zeros(3), ember.ones(3)
    trm, trv = torch.zeros(3), torch.ones(3)
    for _ in range(3):
        x = (rng.standard_normal((6, 3, 4)) * 2 + 1).astype(numpy.float32)
        ey = F.batch_norm(ember.tensor(x), erm, erv, training=True, momentum=momentum)
        ty = TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=momentum)
        numpy.testing.assert_allclose(ey.numpy(), ty.numpy(), 1e-5, 1e-5)
    numpy.testing.assert_allclose(erm.numpy(), trm.numpy(), 1e-5, 1e-6)
    numpy.testing.assert_allclose(erv.numpy(), trv.numpy(), 1e-5, 1e-6)
    assert erm._version[0] == 3  # in-place updates are visible to autograd's version checks
    # ... and normalize in eval mode as torch does (per-channel operands, batch of 6).
    x = rng.standard_normal((6, 3, 4)).astype(numpy.float32)
    numpy.testing.assert_allclose(F.batch_norm(ember.tensor(x), erm, erv).numpy(),
                                  TF.batch_norm(torch.tensor(x), trm, trv).numpy(), 1e-5, 1e-5)


def test_batch_norm_cumulative_average_and_float64_running_stats():
    """momentum=None (a cumulative average, computed by the layer) and float64 running
    statistics with a float32 input, on a batch large enough for the (C, L) operands."""
    rng = numpy.random.default_rng(7)
    e_bn = ember.nn.BatchNorm2d(3, momentum=None)
    t_bn = torch.nn.BatchNorm2d(3, momentum=None)
    for _ in range(3):
        x = (rng.standard_normal((5, 3, 4, 4)) * 3 - 2).astype(numpy.float32)
        e_bn(ember.tensor(x))
        t_bn(torch.tensor(x))
    numpy.testing.assert_allclose(e_bn.running_mean.numpy(), t_bn.running_mean.numpy(),
                                  1e-5, 1e-6)
    numpy.testing.assert_allclose(e_bn.running_var.numpy(), t_bn.running_var.numpy(),
                                  1e-5, 1e-6)
    x = rng.standard_normal((4, 3, 5)).astype(numpy.float32)
    rm, rv = RM + 0.25, RV * 1.5
    e = F.batch_norm(ember.tensor(x), ember.tensor(rm), ember.tensor(rv))
    t = TF.batch_norm(torch.tensor(x), torch.tensor(rm, dtype=torch.float32),
                      torch.tensor(rv, dtype=torch.float32))
    assert e.dtype == ember.float32
    numpy.testing.assert_allclose(e.numpy(), t.numpy(), 1e-5, 1e-6)


def test_instance_norm_running_stats_are_batch_averages():
    x = numpy.random.default_rng(2).standard_normal((5, 3, 6)).astype(numpy.float32)
    erm, erv = ember.zeros(3), ember.ones(3)
    trm, trv = torch.zeros(3), torch.ones(3)
    F.instance_norm(ember.tensor(x), erm, erv, momentum=0.3)
    TF.instance_norm(torch.tensor(x), trm, trv, momentum=0.3)
    numpy.testing.assert_allclose(erm.numpy(), trm.numpy(), 1e-5, 1e-6)
    numpy.testing.assert_allclose(erv.numpy(), trv.numpy(), 1e-5, 1e-6)


def test_create_graph_gradient_penalty():
    """A WGAN-GP style penalty: the gradient norm w.r.t. the input, differentiated again."""
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5))
    w = rng.uniform(0.5, 1.5, 5)
    ex, ew = ember.tensor(x, requires_grad=True), ember.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (eg,) = ember.autograd.grad((F.layer_norm(ex, (5,), ew) ** 3).sum(), [ex], create_graph=True)
    (tg,) = torch.autograd.grad((TF.layer_norm(tx, (5,), tw) ** 3).sum(), [tx],
                                create_graph=True)
    (eg * eg).sum().backward()
    (tg * tg).sum().backward()
    numpy.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), 1e-9, 1e-10)
    numpy.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), 1e-9, 1e-10)


def test_errors():
    with pytest.raises(errors.ShapeError, match=r"layer_norm: expected input of shape \(\*, 4\) "
                                                r"\(normalized_shape=\[4\]\), got \(2, 3\)"):
        F.layer_norm(ember.zeros(2, 3), (4,))
    with pytest.raises(errors.ShapeError, match=r"batch_norm: expected weight of shape \(3,\), "
                                                r"got \(4,\)"):
        F.batch_norm(ember.zeros(2, 3), None, None, ember.ones(4), training=True)
    with pytest.raises(ValueError, match=r"more than 1 value per channel when training, got "
                                         r"input of shape \(1, 3\)"):
        F.batch_norm(ember.zeros(1, 3), None, None, training=True)
    with pytest.raises(errors.ShapeError, match="cannot be split into num_groups=4 groups"):
        F.group_norm(ember.zeros(2, 6, 3), 4)
    with pytest.raises(errors.DTypeError, match="expected a floating-point input, got ember.int64"):
        F.layer_norm(ember.zeros(2, 3, dtype=ember.int64), (3,))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(ember.zeros(2, 3, 1))
    with pytest.raises(errors.ShapeError, match="batch_norm: expected an input of shape"):
        F.batch_norm(ember.zeros(3), None, None, training=True)


@pytest.mark.parametrize("name, fn, tfn, specs", [c for c in CASES if c[0] in (
    "bn_train", "bn_train_4d", "in", "ln", "ln_bias_only", "ln_plain", "gn", "rms")],
    ids=lambda v: v if isinstance(v, str) else "")
def test_backward_twice_with_retain_graph(name, fn, tfn, specs):
    """The array backward keeps xhat (layer_norm) or works in fresh buffers (batch_norm): a
    second backward through the same graph gives the same gradients, and the incoming
    gradient is left untouched."""
    rng = numpy.random.default_rng(4)
    ins = [ember.tensor(rng.standard_normal(s).astype(numpy.float32), requires_grad=True)
           for s in specs]
    y = fn(*ins)
    g = ember.tensor(rng.standard_normal(tuple(y.shape)).astype(numpy.float32))
    g0 = g.numpy().copy()
    y.backward(g, retain_graph=True)
    first = [t.grad.numpy().copy() for t in ins]
    for t in ins:
        t.grad = None
    y.backward(g)
    for a, t in zip(first, ins):
        numpy.testing.assert_array_equal(a, t.grad.numpy())
    numpy.testing.assert_array_equal(g0, g.numpy())


def test_weight_only_and_broadcast_gradients():
    """Only the parameters need gradients, and the incoming gradient is a broadcast view
    (from a sum): both array backwards handle strided gradients."""
    rng = numpy.random.default_rng(6)
    x = rng.standard_normal((4, 3, 5))
    w, b = rng.uniform(0.5, 1.5, 5), rng.standard_normal(5)
    ew, eb = ember.tensor(w, requires_grad=True), ember.tensor(b, requires_grad=True)
    tw, tb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    F.layer_norm(ember.tensor(x), (5,), ew, eb).sum().backward()
    TF.layer_norm(torch.tensor(x), (5,), tw, tb).sum().backward()
    numpy.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), 1e-10, 1e-12)
    numpy.testing.assert_allclose(eb.grad.numpy(), tb.grad.numpy(), 1e-10, 1e-12)
    cw, cb = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    ecw, ecb = ember.tensor(cw, requires_grad=True), ember.tensor(cb, requires_grad=True)
    tcw, tcb = torch.tensor(cw, requires_grad=True), torch.tensor(cb, requires_grad=True)
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (F.batch_norm(ex, None, None, ecw, ecb, training=True) * 3.0).sum().backward()
    (TF.batch_norm(tx, None, None, tcw, tcb, training=True) * 3.0).sum().backward()
    numpy.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), 1e-9, 1e-10)
    numpy.testing.assert_allclose(ecw.grad.numpy(), tcw.grad.numpy(), 1e-10, 1e-12)
    numpy.testing.assert_allclose(ecb.grad.numpy(), tcb.grad.numpy(), 1e-10, 1e-12)
