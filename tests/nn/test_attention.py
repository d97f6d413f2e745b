"""nn.MultiheadAttention against torch.nn.MultiheadAttention with copied weights: outputs,
weights and every gradient, over layouts, masks and options; parameters, init and errors."""

import numpy
import pytest
import torch

import ember
from ember import nn


def _twin(*args, **kwargs):
    t = torch.nn.MultiheadAttention(*args, **kwargs).double()
    e = nn.MultiheadAttention(*args, **kwargs).double()
    e.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    return e, t


def _close(e, t, what, rtol=1e-8, atol=1e-10):
    numpy.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol,
                                  err_msg=what)


def _run(kwargs, call, shapes, self_attn=False, seed=0):
    """Build twins, run both on equal inputs, compare outputs, weights and all gradients."""
    e_mha, t_mha = _twin(**kwargs)
    rng = numpy.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    if self_attn:
        arrays = arrays[:1] * 3
    e_in = [ember.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    if self_attn:
        e_in, t_in = e_in[:1] * 3, t_in[:1] * 3
    e_call = {k: (ember.tensor(v) if isinstance(v, numpy.ndarray) else v)
              for k, v in call.items()}
    t_call = {k: (torch.tensor(v) if isinstance(v, numpy.ndarray) else v)
              for k, v in call.items()}
    e_out, e_w = e_mha(*e_in, **e_call)
    t_out, t_w = t_mha(*t_in, **t_call)
    _close(e_out, t_out, "attn_output")
    assert (e_w is None) == (t_w is None)
    g = rng.standard_normal(tuple(t_out.shape))
    e_loss = (e_out * ember.tensor(g)).sum()
    t_loss = (t_out * torch.tensor(g)).sum()
    if t_w is not None:
        _close(e_w, t_w, "attn_weights")
        gw = rng.standard_normal(tuple(t_w.shape))
        e_loss = e_loss + (e_w * ember.tensor(gw)).sum()
        t_loss = t_loss + (t_w * torch.tensor(gw)).sum()
    e_loss.backward()
    t_loss.backward()
    for (name, ep), (_, tp) in zip(e_mha.named_parameters(), t_mha.named_parameters()):
        _close(ep.grad, tp.grad, f"grad of {name}")
    for i, (ex, tx) in enumerate(zip(e_in, t_in)):
        _close(ex.grad, tx.grad, f"grad of input {i}")
    return e_mha


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
def test_self_attention(batch_first, need_weights, average):
    shape = (2, 5, 8) if batch_first else (5, 2, 8)
    _run(dict(embed_dim=8, num_heads=2, batch_first=batch_first),
         dict(need_weights=need_weights, average_attn_weights=average), [shape],
         self_attn=True)


@pytest.mark.parametrize("batch_first", [False, True])
def test_masks_bool_and_float(batch_first):
    rng = numpy.random.default_rng(3)
    kpm = numpy.zeros((2, 6), dtype=bool)
    kpm[0, 4:] = True
    am2 = rng.random((4, 6)) < 0.3
    am2[:, 0] = False
    q, kv = ((2, 4, 8), (2, 6, 8)) if batch_first else ((4, 2, 8), (6, 2, 8))
    for need in (True, False):
        _run(dict(embed_dim=8, num_heads=2, batch_first=batch_first),
             dict(key_padding_mask=kpm, attn_mask=am2, need_weights=need), [q, kv, kv])
    am3 = rng.standard_normal((2 * 2, 4, 6))
    kpm_f = numpy.where(kpm, -numpy.inf, 0.0)
    for need in (True, False):
        _run(dict(embed_dim=8, num_heads=2, batch_first=batch_first),
             dict(key_padding_mask=kpm_f, attn_mask=am3, need_weights=need,
                  average_attn_weights=False), [q, kv, kv])


def test_key_is_value_and_distinct_key_value():
    _run(dict(embed_dim=6, num_heads=3), {}, [(4, 2, 6), (5, 2, 6), (5, 2, 6)])
    e_mha, t_mha = _twin(embed_dim=6, num_heads=3)
    rng = numpy.random.default_rng(1)
    q, kv = rng.standard_normal((4, 2, 6)), rng.standard_normal((5, 2, 6))
    ekv = ember.tensor(kv)
    e_out = e_mha(ember.tensor(q), ekv, ekv)[0]
    t_out = t_mha(torch.tensor(q), torch.tensor(kv), torch.tensor(kv))[0]
    _close(e_out, t_out, "key is value")


@pytest.mark.parametrize("batch_first", [False, True])
def test_kdim_vdim(batch_first):
    sh = (lambda n, d: (2, n, d)) if batch_first else (lambda n, d: (n, 2, d))
    e = _run(dict(embed_dim=8, num_heads=4, kdim=3, vdim=5, batch_first=batch_first),
             dict(need_weights=True), [sh(4, 8), sh(6, 3), sh(6, 5)])
    assert e.in_proj_weight is None and tuple(e.k_proj_weight.shape) == (8, 3)


def test_no_bias_bias_kv_zero_attn_and_unbatched():
    _run(dict(embed_dim=8, num_heads=2, bias=False), {}, [(4, 3, 8)], self_attn=True)
    kpm = numpy.zeros((3, 5), dtype=bool)
    kpm[1, -1] = True
    _run(dict(embed_dim=8, num_heads=2, add_bias_kv=True, add_zero_attn=True),
         dict(key_padding_mask=kpm, attn_mask=numpy.zeros((4, 5))),
         [(4, 3, 8), (5, 3, 8), (5, 3, 8)])
    _run(dict(embed_dim=8, num_heads=2), dict(key_padding_mask=numpy.array([0, 0, 1, 0, 0],
                                                                              dtype=bool)),
         [(4, 8), (5, 8), (5, 8)])
    _run(dict(embed_dim=8, num_heads=2, batch_first=True),
         dict(attn_mask=numpy.zeros((2, 4, 5)), average_attn_weights=False),
         [(4, 8), (5, 8), (5, 8)])


def test_causal_hint_matches_mask():
    mask = numpy.triu(numpy.full((5, 5), -numpy.inf), 1)
    for need in (False, True):
        _run(dict(embed_dim=8, num_heads=2, batch_first=True),
             dict(attn_mask=mask, is_causal=True, need_weights=need), [(2, 5, 8)],
             self_attn=True)


def test_parameters_and_init():
    m = nn.MultiheadAttention(16, 4, add_bias_kv=True)
    t = torch.nn.MultiheadAttention(16, 4, add_bias_kv=True)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in t.named_parameters()]
    assert numpy.all(m.in_proj_bias.detach().numpy() == 0)
    assert numpy.all(m.out_proj.bias.detach().numpy() == 0)
    bound = (6 / (48 + 16)) ** 0.5  # xavier_uniform_ on (3E, E)
    w = m.in_proj_weight.detach().numpy()
    assert numpy.abs(w).max() <= bound and numpy.abs(w).max() > 0.8 * bound
    assert m.head_dim == 4 and m.batch_first is False
    assert "embed_dim=16, num_heads=4" in repr(m)


def test_dropout_only_in_training():
    ember.manual_seed(0)
    m = nn.MultiheadAttention(8, 2, dropout=0.5)
    x = ember.randn(5, 2, 8)
    w_train = m(x, x, x)[1]
    m.eval()
    out1, w1 = m(x, x, x)
    out2, _ = m(x, x, x)
    numpy.testing.assert_array_equal(out1.detach().numpy(), out2.detach().numpy())
    # The returned weights are taken before dropout, in both modes.
    numpy.testing.assert_allclose(w_train.detach().numpy(), w1.detach().numpy(), rtol=1e-6)
    m.train()
    ember.manual_seed(1)
    a = m(x, x, x)[0]
    ember.manual_seed(2)
    b = m(x, x, x)[0]
    assert not numpy.allclose(a.detach().numpy(), b.detach().numpy())


def test_errors():
    with pytest.raises(ValueError, match="MultiheadAttention: embed_dim 10 is not divisible by "
                                         "num_heads 3"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="num_heads must be a positive integer"):
        nn.MultiheadAttention(8, 0)
    m = nn.MultiheadAttention(8, 2)
    with pytest.raises(ember.errors.ShapeError, match=r"last dim embed_dim=8.*\(5, 2, 6\)"):
        x = ember.randn(5, 2, 6)
        m(x, x, x)
    with pytest.raises(ember.errors.ShapeError, match="got a 4-D query"):
        x = ember.randn(1, 5, 2, 8)
        m(x, x, x)
    x = ember.randn(5, 2, 8)
    with pytest.raises(ember.errors.ShapeError, match="2-D attn_mask has shape"):
        m(x, x, x, attn_mask=ember.zeros(4, 5))
    with pytest.raises(ember.errors.ShapeError, match=r"3-D attn_mask .*\(N \* num_heads"):
        m(x, x, x, attn_mask=ember.zeros(3, 5, 5))
    with pytest.raises(ember.errors.ShapeError, match="key_padding_mask has shape"):
        m(x, x, x, key_padding_mask=ember.zeros(2, 4, dtype=ember.bool))
    with pytest.raises(ember.errors.ShapeError, match="different batch sizes"):
        m(x, ember.randn(5, 3, 8), ember.randn(5, 3, 8))
    with pytest.raises(ValueError, match="is_causal=True needs attn_mask"):
        m(x, x, x, is_causal=True)
    with pytest.raises(ember.errors.DTypeError, match="bool mask or a float mask"):
        m(x, x, x, attn_mask=ember.zeros(5, 5, dtype=ember.int64))


def _both_paths(monkeypatch, m, x, call, seed=0, create_graph=False):
    """Run ``m(x, x, x, **call)`` through the packed _SelfAttention node and through the
    general path (unbind + _Attention); return (outputs, gradients) of each. The packed
    node must actually run (counted)."""
    from ember.ops import attention as A  # noqa: PLC0415

    calls = []
    apply = A._SelfAttention.apply
    monkeypatch.setattr(A._SelfAttention, "apply",
                        lambda *a, **k: calls.append(1) or apply(*a, **k))
    results = []
    for packed in (True, False):
        monkeypatch.setattr(A, "_PACKED", [packed])
        xe = ember.tensor(x, requires_grad=True)
        kw = {k: (ember.tensor(v, requires_grad=v.dtype.kind == "f" and "is_causal" not in call)
                  if isinstance(v, numpy.ndarray) else v) for k, v in call.items()}
        ember.manual_seed(seed)
        out, w = m(xe, xe, xe, **kw)
        outs = [out] + ([w] if w is not None else [])
        g = numpy.random.default_rng(seed + 1)
        loss = sum((o * ember.tensor(g.standard_normal(tuple(o.shape)))).sum() for o in outs)
        wrt = [xe, *m.parameters()] + [t for t in kw.values()
                                       if isinstance(t, ember.Tensor) and t.requires_grad]
        grads = ember.autograd.grad(loss, wrt, create_graph=create_graph)
        if create_graph:  # a second-order quantity through every first-order gradient
            second = sum((gr * gr).sum() for gr in grads)
            grads = ember.autograd.grad(second, wrt, allow_unused=True)
        results.append(([o.detach().numpy() for o in outs],
                        [None if gr is None else gr.detach().numpy() for gr in grads]))
    assert len(calls) == 1
    return results


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("masks", ["none", "bool", "float"])
def test_packed_self_attention_matches_general_path(monkeypatch, batch_first, need_weights,
                                                     masks):
    """The packed self-attention node gives the general path's outputs, weights and every
    gradient (input, packed projection, float masks), with dropout drawing the same mask
    (and a sample whose keys are all masked)."""
    ember.manual_seed(5)
    m = nn.MultiheadAttention(8, 2, dropout=0.3, batch_first=batch_first).double()
    rng = numpy.random.default_rng(6)
    x = rng.standard_normal((3, 5, 8) if batch_first else (5, 3, 8))
    call = dict(need_weights=need_weights, average_attn_weights=False)
    if masks == "bool":
        kpm = numpy.zeros((3, 5), dtype=bool)
        kpm[1, 3:] = True
        kpm[2, :] = True
        call.update(key_padding_mask=kpm, attn_mask=numpy.triu(numpy.ones((5, 5), bool), 1))
    elif masks == "float":
        call.update(attn_mask=rng.standard_normal((3 * 2, 5, 5)),
                    key_padding_mask=numpy.where(rng.random((3, 5)) < 0.2, -numpy.inf, 0.0))
    (po, pg), (go, gg) = _both_paths(monkeypatch, m, x, call)
    for a, b in zip(po + pg, go + gg):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    assert len(pg) == len(gg) == 5 + (2 if masks == "float" else 0)


@pytest.mark.parametrize("batch_first", [False, True])
def test_packed_self_attention_causal_unbatched_and_double_backward(monkeypatch, batch_first):
    """The causal hint and unbatched inputs on the packed node, and create_graph: second-order
    gradients through it (with dropout on the weights) equal the general path's."""
    m = nn.MultiheadAttention(8, 2, dropout=0.2, batch_first=batch_first).double()
    rng = numpy.random.default_rng(7)
    mask = numpy.triu(numpy.full((5, 5), -numpy.inf), 1)
    shape = (2, 5, 8) if batch_first else (5, 2, 8)
    for x, call in [(rng.standard_normal(shape), dict(attn_mask=mask, is_causal=True,
                                                      need_weights=False)),
                    (rng.standard_normal((5, 8)), dict(need_weights=True))]:
        (po, pg), (go, gg) = _both_paths(monkeypatch, m, x, call)
        for a, b in zip(po + pg, go + gg):
            numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    for call in [dict(need_weights=False), dict(need_weights=True),
                 dict(attn_mask=rng.standard_normal((5, 5)), need_weights=False)]:
        (po, pg), (go, gg) = _both_paths(monkeypatch, m, rng.standard_normal(shape), call,
                                         create_graph=True)
        assert sum(g is not None for g in pg) >= 4
        for a, b in zip(po + pg, go + gg):
            assert (a is None) == (b is None)
            if a is not None:
                numpy.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_tracing_keeps_the_general_attention_node():
    """Graphs (ONNX export, summary) see _Attention, which the exporter knows, not the packed
    node."""
    from ember.graph import tracer  # noqa: PLC0415
    from ember.ops import attention as A  # noqa: PLC0415

    m = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    graph = tracer.trace(m, ember.randn(2, 5, 8))
    ops = {node.op for node in graph.nodes}
    assert A._Attention in ops and A._SelfAttention not in ops
