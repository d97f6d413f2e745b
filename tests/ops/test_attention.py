"""scaled_dot_product_attention against torch (forward, backward, gradcheck), masks, causal,
scale, broadcasting, grouped-query attention, dropout statistics, double backward, errors."""

import numpy
import pytest
import torch
import torch.nn.functional as TF

import ember
from ember.nn import functional as F
from tests.oracle import check_double_backward, check_op, make_inputs, to_ember, to_torch


def sdpa(q, k, v, **kw):
    if isinstance(q, torch.Tensor):
        return TF.scaled_dot_product_attention(q, k, v, **kw)
    return F.scaled_dot_product_attention(q, k, v, **kw)


def masked(q, k, v, m, **kw):
    return sdpa(q, k, v, attn_mask=m, **kw)


@pytest.mark.parametrize("specs", [
    [(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7)],      # L != S, Ev != E
    [(4, 5), (6, 5), (6, 3)],                         # no batch dims
    [(2, 1, 4, 5), (3, 6, 5), (1, 3, 6, 2)],          # broadcast batch / head dims
    [(2, 3, 1, 5), (2, 3, 1, 5), (2, 3, 1, 5)],       # one key
])
def test_plain_matches_torch(specs):
    check_op(sdpa, specs)


@pytest.mark.parametrize("kw", [{"scale": 0.3}, {"is_causal": True}])
def test_scale_and_causal(kw):
    check_op(sdpa, [(2, 2, 5, 4), (2, 2, 7, 4), (2, 2, 7, 3)], kwargs=kw)


def test_causal_square_and_float32():
    check_op(sdpa, [(3, 6, 8), (3, 6, 8), (3, 6, 8)], kwargs={"is_causal": True},
             dtype=numpy.float32)


def test_float_mask_gets_gradient_and_broadcasts():
    # A (L, S) float mask for (N, H, L, S) scores: its gradient sums over N and H.
    check_op(masked, [(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5), (4, 6)])
    check_op(masked, [(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5), (2, 1, 1, 6)])


@pytest.mark.parametrize("mask_shape", [(4, 6), (2, 1, 4, 6), (2, 3, 1, 6)])
def test_bool_mask_true_means_attend(mask_shape):
    rng = numpy.random.default_rng(1)
    m = rng.random(mask_shape) > 0.4
    m[..., 0] = True  # no row fully masked here
    arrays = make_inputs([(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5)]) + [m]
    check_op(masked, None, inputs=arrays)


def test_fully_masked_row_gives_zeros_like_torch():
    m = numpy.ones((4, 6), dtype=bool)
    m[1] = False
    arrays = make_inputs([(2, 4, 5), (2, 6, 5), (2, 6, 3)]) + [m]
    out = check_op(masked, None, inputs=arrays)
    assert numpy.all(out.detach().numpy()[:, 1] == 0)


def test_float_mask_with_minus_inf_row():
    m = numpy.zeros((4, 6))
    m[2] = -numpy.inf
    arrays = make_inputs([(4, 5), (6, 5), (6, 3)]) + [m]
    check_op(masked, None, inputs=arrays, gradcheck=False)


def test_grouped_query_attention():
    check_op(sdpa, [(2, 6, 4, 5), (2, 2, 7, 5), (2, 2, 7, 3)], kwargs={"enable_gqa": True})


def test_non_contiguous_inputs():
    arrays = make_inputs([(2, 5, 3, 4), (2, 7, 3, 4), (2, 7, 3, 4)])

    def fn(q, k, v):
        return sdpa(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))

    check_op(fn, None, inputs=arrays)


def test_double_backward():
    check_double_backward(lambda q, k, v: sdpa(q, k, v), [(2, 3, 4), (2, 5, 4), (2, 5, 3)])
    check_double_backward(lambda q, k, v: sdpa(q, k, v, is_causal=True),
                          [(1, 4, 3), (1, 4, 3), (1, 4, 2)])


def test_double_backward_with_mask_and_empty_row():
    m = numpy.ones((3, 4), dtype=bool)
    m[0] = False
    mask = ember.tensor(m)
    check_double_backward(lambda q, k, v: sdpa(q, k, v, attn_mask=mask),
                          [(3, 2), (4, 2), (4, 2)])


def test_create_graph_matches_torch():
    arrays = make_inputs([(2, 4, 3), (2, 5, 3), (2, 5, 2)])
    eq, ek, ev = to_ember(arrays)
    tq, tk, tv = to_torch(arrays)
    (eg,) = ember.autograd.grad(sdpa(eq, ek, ev).pow(2).sum(), eq, create_graph=True)
    (tg,) = torch.autograd.grad(sdpa(tq, tk, tv).pow(2).sum(), tq, create_graph=True)
    numpy.testing.assert_allclose(eg.detach().numpy(), tg.detach().numpy(), rtol=1e-7)
    e_hk, e_hv = ember.autograd.grad(eg.sum(), [ek, ev])
    t_hk, t_hv = torch.autograd.grad(tg.sum(), [tk, tv])
    numpy.testing.assert_allclose(e_hk.numpy(), t_hk.numpy(), rtol=1e-6, atol=1e-9)
    numpy.testing.assert_allclose(e_hv.numpy(), t_hv.numpy(), rtol=1e-6, atol=1e-9)


def test_dropout_zero_is_identity_and_p_statistics():
    q, k, v = to_ember(make_inputs([(2, 4, 3), (2, 5, 3), (2, 5, 3)]), False)
    base = sdpa(q, k, v)
    numpy.testing.assert_array_equal(sdpa(q, k, v, dropout_p=0.0).numpy(), base.numpy())
    # With V = identity the output rows are the (dropped, rescaled) attention weights.
    ember.manual_seed(3)
    qs = ember.randn(64, 16, 8)
    eye = ember.eye(32).expand(64, 32, 32)
    ks = ember.randn(64, 32, 8)
    p = sdpa(qs, ks, eye).numpy()
    ember.manual_seed(4)
    dropped = sdpa(qs, ks, eye, dropout_p=0.25).numpy()
    zero = dropped == 0
    assert abs(zero.mean() - 0.25) < 0.01
    numpy.testing.assert_allclose(dropped[~zero], p[~zero] / 0.75, rtol=1e-5)
    ember.manual_seed(4)
    again = sdpa(qs, ks, eye, dropout_p=0.25).numpy()
    numpy.testing.assert_array_equal(again, dropped)


def test_dropout_gradient_uses_the_same_mask():
    q, k, v = to_ember(make_inputs([(3, 4, 3), (3, 5, 3), (3, 5, 2)]))
    ember.manual_seed(5)
    out = sdpa(q, k, v, dropout_p=0.5)
    w = ember.randn(*out.shape, dtype=ember.float64)
    gq, gk, gv = ember.autograd.grad((out * w).sum(), [q, k, v])
    # Reproduce the keep-mask from the seed and check against a composed reference.
    ember.manual_seed(5)
    eye = ember.eye(5, dtype=ember.float64).expand(3, 5, 5)
    p_drop = sdpa(q.detach(), k.detach(), eye, dropout_p=0.5)
    keep = (p_drop.numpy() != 0) * 2.0
    tq, tk, tv = (torch.tensor(t.detach().numpy(), requires_grad=True) for t in (q, k, v))
    tp = torch.softmax(tq @ tk.mT / 3 ** 0.5, -1) * torch.tensor(keep)
    tout = tp @ tv
    numpy.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-7)
    tg = torch.autograd.grad((tout * torch.tensor(w.numpy())).sum(), [tq, tk, tv])
    for e, t in zip((gq, gk, gv), tg):
        numpy.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-7, atol=1e-10)


def test_errors():
    q = ember.randn(2, 4, 5)
    with pytest.raises(ember.errors.ShapeError, match="at least 2 dims"):
        sdpa(ember.randn(5), ember.randn(5), ember.randn(5))
    with pytest.raises(ember.errors.ShapeError, match="share E"):
        sdpa(q, ember.randn(2, 6, 4), ember.randn(2, 6, 4))
    with pytest.raises(ember.errors.ShapeError, match="cannot be broadcast"):
        sdpa(q, ember.randn(3, 6, 5), ember.randn(3, 6, 5))
    with pytest.raises(ValueError, match="attn_mask and is_causal"):
        sdpa(q, q, q, attn_mask=ember.ones(4, 4, dtype=ember.bool), is_causal=True)
    with pytest.raises(ember.errors.DTypeError, match="bool mask or a float mask"):
        sdpa(q, q, q, attn_mask=ember.ones(4, 4, dtype=ember.int64))
    with pytest.raises(ember.errors.DTypeError, match="one floating-point dtype"):
        sdpa(q, q.double(), q)
    with pytest.raises(ember.errors.ShapeError, match="does not broadcast"):
        q2 = ember.randn(4, 5)
        sdpa(q2, q2, q2, attn_mask=ember.ones(3, 4, 4, dtype=ember.bool))
    with pytest.raises(ember.errors.ShapeError, match="enable_gqa"):
        sdpa(ember.randn(1, 5, 4, 3), ember.randn(1, 2, 4, 3), ember.randn(1, 2, 4, 3),
             enable_gqa=True)
    with pytest.raises(ValueError, match="dropout_p"):
        sdpa(q, q, q, dropout_p=1.5)


def test_large_scores_are_shifted_by_their_maximum():
    """Scores too large for an unshifted exp take the max-subtracting softmax (and small ones
    skip it); both agree with torch, in float64 and float32."""
    from ember.ops import attention as A  # noqa: PLC0415

    rng = numpy.random.default_rng(8)
    q, k, v = (rng.standard_normal(s) for s in [(2, 3, 4, 6), (2, 3, 7, 6), (2, 3, 7, 5)])
    # The largest score is ~3.13 at factor 1; the limit ~43 in float32, ~354 in float64.
    for dtype, factor, safe in [(numpy.float64, 1.0, True), (numpy.float64, 120.0, False),
                                (numpy.float32, 1.0, True), (numpy.float32, 15.0, False)]:
        arrays = [(q * factor).astype(dtype), k.astype(dtype), v.astype(dtype)]
        st = A._scores_t(numpy, arrays[0], arrays[1], 6 ** -0.5)
        assert A._exp_is_safe(numpy, st) is safe
        check_op(sdpa, None, inputs=arrays, dtype=dtype, gradcheck=dtype == numpy.float64)
    # The test is on the scores' range, both ends (float32 limit ~43.3 for 7 keys); scores
    # all far below zero would underflow to 0 / 0 without the shift.
    for value, safe in [(40.0, True), (-40.0, True), (50.0, False), (-50.0, False)]:
        st = numpy.zeros((2, 7, 4), numpy.float32)
        st[1, 2, 3] = value
        assert A._exp_is_safe(numpy, st) is safe
    low = [q - 40.0, numpy.abs(k) + 40.0, v]  # scores ~ -4000: exp gives 0 / 0 unshifted
    assert not A._exp_is_safe(numpy, A._scores_t(numpy, low[0], low[1], 6 ** -0.5))
    check_op(sdpa, None, inputs=low, dtype=numpy.float64, gradcheck=False)
    # Non-finite values never skip the shift.
    for bad in (numpy.inf, -numpy.inf, numpy.nan):
        st = numpy.zeros((2, 7, 4))
        st[0, 0, 0] = bad
        assert not A._exp_is_safe(numpy, st)


@pytest.mark.parametrize("dropout, weights, masked, e", [
    (0.0, False, False, 3), (0.0, True, False, 3), (0.0, False, True, 3),
    (0.5, False, False, 3), (0.5, True, True, 3), (0.0, False, False, 9)])
def test_array_backward_matches_composite_backward(dropout, weights, masked, e):
    """The array backward (each of its branches: dropout, a gradient on the weights output,
    a float mask, E >= S) against the create_graph one built from ember ops, on one graph
    (so one dropout mask)."""
    from ember.ops import attention as A  # noqa: PLC0415

    rng = numpy.random.default_rng(9)
    q, k, v = (ember.tensor(rng.standard_normal(s), requires_grad=True)
               for s in [(2, 4, e), (2, 5, e), (2, 5, 3)])
    m = ember.tensor(rng.standard_normal((4, 5)), requires_grad=True) if masked else None
    ember.manual_seed(11)
    out = A._sdpa("t", q, k, v, m, dropout, False, None, False, weights, None)
    outs = list(out) if weights else [out]
    gs = [ember.tensor(rng.standard_normal(tuple(o.shape))) for o in outs]
    wrt = [q, k, v] + ([m] if masked else [])
    fast = ember.autograd.grad(outs, wrt, gs, retain_graph=True)
    slow = ember.autograd.grad(outs, wrt, gs, create_graph=True)
    for a, b in zip(fast, slow):
        numpy.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
