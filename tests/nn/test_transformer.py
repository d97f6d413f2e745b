"""Transformer layers and stacks against torch.nn with copied state_dicts: outputs and all
gradients (train mode with dropout 0, eval mode), post- and pre-norm, relu/gelu/callable,
masks; state_dict layout, independent clones, causal masks and errors."""

import numpy
import pytest
import torch

import ember
from ember import nn

D, H, FF = 8, 2, 16


def _copy(e_mod, t_mod):
    e_mod.load_state_dict({k: ember.tensor(v.detach().numpy())
                           for k, v in t_mod.state_dict().items()})


def _close(e, t, what):
    numpy.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=1e-8,
                                  atol=1e-10, err_msg=what)


def _compare(e_mod, t_mod, arrays, e_kw, t_kw):
    """Forward on equal inputs, then gradients of a random weighting of the output."""
    e_in = [ember.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    e_out = e_mod(*e_in, **e_kw)
    t_out = t_mod(*t_in, **t_kw)
    _close(e_out, t_out, "output")
    g = numpy.random.default_rng(9).standard_normal(tuple(t_out.shape))
    (e_out * ember.tensor(g)).sum().backward()
    (t_out * torch.tensor(g)).sum().backward()
    for (name, ep), (_, tp) in zip(e_mod.named_parameters(), t_mod.named_parameters()):
        _close(ep.grad, tp.grad, f"grad of {name}")
    for i, (ex, tx) in enumerate(zip(e_in, t_in)):
        _close(ex.grad, tx.grad, f"grad of input {i}")


def _masks(kind, n, s):
    if kind is None:
        return {}, {}
    if kind == "causal":
        m = numpy.triu(numpy.full((s, s), -numpy.inf), 1)
        return {"src_mask": ember.tensor(m)}, {"src_mask": torch.tensor(m)}
    kpm = numpy.zeros((n, s), dtype=bool)
    kpm[0, -2:] = True
    return ({"src_key_padding_mask": ember.tensor(kpm)},
            {"src_key_padding_mask": torch.tensor(kpm)})


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first,mask", [(False, "causal"), (True, "padding"),
                                              (True, None)])
def test_encoder_layer(norm_first, activation, batch_first, mask):
    kw = dict(dim_feedforward=FF, dropout=0.0, activation=activation, batch_first=batch_first,
              norm_first=norm_first)
    t_layer = torch.nn.TransformerEncoderLayer(D, H, **kw).double()
    e_layer = nn.TransformerEncoderLayer(D, H, **kw).double()
    assert list(e_layer.state_dict()) == list(t_layer.state_dict())
    _copy(e_layer, t_layer)
    shape = (3, 5, D) if batch_first else (5, 3, D)
    e_kw, t_kw = _masks(mask, 3, 5)
    x = numpy.random.default_rng(0).standard_normal(shape)
    _compare(e_layer, t_layer, [x], e_kw, t_kw)


def test_encoder_layer_eval_callable_activation_no_bias():
    kw = dict(dim_feedforward=FF, dropout=0.3, bias=False, layer_norm_eps=1e-3)
    t_layer = torch.nn.TransformerEncoderLayer(D, H, activation=torch.nn.functional.silu,
                                               **kw).double().eval()
    e_layer = nn.TransformerEncoderLayer(D, H, activation=nn.functional.silu,
                                         **kw).double().eval()
    _copy(e_layer, t_layer)
    x = numpy.random.default_rng(1).standard_normal((4, 2, D))
    _compare(e_layer, t_layer, [x], {}, {})
    e_unb = e_layer(ember.tensor(x[:, 0]))
    t_unb = t_layer(torch.tensor(x[:, 0]))
    _close(e_unb, t_unb, "unbatched")


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_with_masks(norm_first):
    kw = dict(dim_feedforward=FF, dropout=0.0, norm_first=norm_first, activation="gelu")
    t_layer = torch.nn.TransformerDecoderLayer(D, H, **kw).double()
    e_layer = nn.TransformerDecoderLayer(D, H, **kw).double()
    assert list(e_layer.state_dict()) == list(t_layer.state_dict())
    _copy(e_layer, t_layer)
    rng = numpy.random.default_rng(2)
    tgt, mem = rng.standard_normal((4, 2, D)), rng.standard_normal((6, 2, D))
    tgt_mask = numpy.triu(numpy.ones((4, 4), dtype=bool), 1)
    mkpm = numpy.zeros((2, 6), dtype=bool)
    mkpm[1, :2] = True
    e_kw = {"tgt_mask": ember.tensor(tgt_mask), "memory_key_padding_mask": ember.tensor(mkpm)}
    t_kw = {"tgt_mask": torch.tensor(tgt_mask), "memory_key_padding_mask": torch.tensor(mkpm)}
    _compare(e_layer, t_layer, [tgt, mem], e_kw, t_kw)


def test_encoder_stack_eval_with_padding():
    t_layer = torch.nn.TransformerEncoderLayer(D, H, FF, batch_first=True)
    t_enc = torch.nn.TransformerEncoder(t_layer, 2, norm=torch.nn.LayerNorm(D),
                                        enable_nested_tensor=False).double().eval()
    e_layer = nn.TransformerEncoderLayer(D, H, FF, batch_first=True)
    e_enc = nn.TransformerEncoder(e_layer, 2, norm=nn.LayerNorm(D)).double().eval()
    assert list(e_enc.state_dict()) == list(t_enc.state_dict())
    _copy(e_enc, t_enc)
    kpm = numpy.zeros((3, 5), dtype=bool)
    kpm[2, 3:] = True
    x = numpy.random.default_rng(3).standard_normal((3, 5, D))
    _compare(e_enc, t_enc, [x], {"src_key_padding_mask": ember.tensor(kpm)},
             {"src_key_padding_mask": torch.tensor(kpm)})


def test_clones_are_independent():
    layer = nn.TransformerEncoderLayer(D, H, FF)
    enc = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
    w = [m.linear1.weight for m in enc.layers]
    assert len({id(p) for p in w}) == 3 and all(p is not layer.linear1.weight for p in w)
    assert len(list(enc.parameters())) == 3 * len(list(layer.parameters()))


def test_decoder_stack_and_transformer():
    kw = dict(d_model=D, nhead=H, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=FF, dropout=0.0, batch_first=True)
    t_model = torch.nn.Transformer(**kw).double()
    e_model = nn.Transformer(**kw).double()
    assert list(e_model.state_dict()) == list(t_model.state_dict())
    _copy(e_model, t_model)
    rng = numpy.random.default_rng(4)
    src, tgt = rng.standard_normal((2, 6, D)), rng.standard_normal((2, 4, D))
    e_mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=ember.float64)
    t_mask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    _close(e_mask, t_mask, "causal mask")
    _compare(e_model, t_model, [src, tgt], {"tgt_mask": e_mask, "tgt_is_causal": True},
             {"tgt_mask": t_mask, "tgt_is_causal": True})


def test_transformer_init_is_xavier():
    model = nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=32)
    w = model.encoder.layers[0].linear1.weight.detach().numpy()
    bound = (6 / (16 + 32)) ** 0.5
    assert numpy.abs(w).max() <= bound and numpy.abs(w).max() > 0.8 * bound


def test_dropout_in_training_changes_output():
    layer = nn.TransformerEncoderLayer(D, H, FF, dropout=0.5)
    x = ember.randn(5, 2, D)
    ember.manual_seed(0)
    a = layer(x)
    ember.manual_seed(1)
    b = layer(x)
    assert not numpy.allclose(a.detach().numpy(), b.detach().numpy())
    layer.eval()
    numpy.testing.assert_array_equal(layer(x).detach().numpy(), layer(x).detach().numpy())


def test_errors():
    with pytest.raises(ValueError, match="activation should be 'relu', 'gelu' or a callable"):
        nn.TransformerEncoderLayer(D, H, activation="tanh")
    with pytest.raises(ValueError, match="embed_dim 10 is not divisible by num_heads 3"):
        nn.TransformerEncoderLayer(10, 3)
    layer = nn.TransformerEncoderLayer(D, H, FF)
    with pytest.raises(ember.errors.ShapeError, match=r"expected src of shape .*\(5, 2, 6\)"):
        layer(ember.randn(5, 2, 6))
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        nn.TransformerEncoder(layer, 0)
    model = nn.Transformer(d_model=D, nhead=H, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=FF)
    with pytest.raises(ember.errors.ShapeError, match="same batch size"):
        model(ember.randn(5, 2, D), ember.randn(4, 3, D))
