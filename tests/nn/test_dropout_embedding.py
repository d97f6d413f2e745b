"""Dropout layers (statistics, seeding, modes, channels) and Embedding against torch.nn."""

import numpy
import pytest
import torch

import ember
from ember import errors, nn
from tests.nn.layer_check import compare_layer, copy_state, run_both


def test_dropout_statistics_and_scaling():
    m = nn.Dropout(0.3)
    y = m(ember.ones(200_000)).numpy()
    zero = (y == 0).mean()
    assert abs(zero - 0.3) < 0.005
    numpy.testing.assert_allclose(numpy.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.01  # expectation kept


def test_dropout_is_seeded_and_eval_is_identity():
    m = nn.Dropout(0.5)
    x = ember.randn(50, 40)
    ember.manual_seed(123)
    a = m(x).numpy()
    ember.manual_seed(123)
    b = m(x).numpy()
    numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(a, m(x).numpy())  # the next draw differs
    m.eval()
    assert m(x) is x
    assert repr(m) == repr(torch.nn.Dropout(0.5))
    assert repr(nn.Dropout2d(0.1, inplace=True)) == repr(torch.nn.Dropout2d(0.1, inplace=True))


def test_dropout_gradient_is_the_same_mask():
    x = ember.randn(30, 20, requires_grad=True)
    y = nn.Dropout(0.4)(x)
    y.backward(ember.ones(30, 20))
    kept = y.detach().numpy() != 0
    numpy.testing.assert_allclose(x.grad.numpy(), kept / 0.6, rtol=1e-6)


# A 3-D input to Dropout2d is read as (N, C, L), as PyTorch 2.x does.
@pytest.mark.parametrize("cls, shape, lead", [
    ("Dropout1d", (8, 16, 10), 2), ("Dropout1d", (16, 10), 1), ("Dropout2d", (8, 16, 5, 4), 2),
    ("Dropout2d", (16, 5, 4), 2), ("Dropout3d", (4, 8, 3, 3, 3), 2), ("Dropout3d", (8, 3, 3, 3), 1),
])
def test_channel_dropout_zeroes_whole_channels(cls, shape, lead):
    y = getattr(nn, cls)(0.5)(ember.ones(*shape)).numpy()
    per_channel = y.reshape(shape[:lead] + (-1,))
    assert (per_channel.min(-1) == per_channel.max(-1)).all()  # one value per channel
    assert set(numpy.unique(per_channel).tolist()) == {0.0, 2.0}
    assert abs((per_channel[..., 0] == 0).mean() - 0.5) < 0.3


def test_dropout_inplace_and_p_edges():
    x = ember.ones(1000)
    y = nn.Dropout(0.5, inplace=True)(x)
    assert y is x and (x.numpy() == 0).any()
    assert (nn.Dropout(1.0)(ember.ones(10)).numpy() == 0).all()
    numpy.testing.assert_array_equal(nn.Dropout(0.0)(ember.ones(10)).numpy(), numpy.ones(10))
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(errors.ShapeError, match="dropout2d: expected a 3-D"):
        nn.Dropout2d()(ember.ones(2, 3))


def test_alpha_dropout_keeps_mean_and_variance():
    x = ember.randn(200_000)
    y = nn.AlphaDropout(0.2)(x).numpy()
    assert abs(y.mean()) < 0.01 and abs(y.std() - 1.0) < 0.01
    m = nn.AlphaDropout(0.2).eval()
    assert m(x) is x


# ---- Embedding ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 2}, {"padding_idx": -1},
                                    {"scale_grad_by_freq": True}, {"max_norm": 1.0},
                                    {"max_norm": 2.0, "norm_type": 1.0}], ids=str)
def test_embedding_matches_torch(kwargs):
    torch.manual_seed(0)
    t = torch.nn.Embedding(10, 4, **kwargs)
    e = nn.Embedding(10, 4, **kwargs)
    idx = numpy.array([[1, 2, 2, 9], [0, 9, 2, 5]])
    compare_layer(e, t, [idx])
    numpy.testing.assert_allclose(e.weight.detach().numpy(), t.weight.detach().numpy(), 1e-6)
    assert repr(e) == repr(t)


def test_embedding_padding_row_gets_zero_grad():
    emb = nn.Embedding(6, 3, padding_idx=0)
    assert not emb.weight.detach().numpy()[0].any()  # initialized to zeros
    out = emb(ember.tensor([[0, 1, 0], [2, 0, 1]]))
    (out * out).sum().backward()
    g = emb.weight.grad.numpy()
    assert not g[0].any() and g[1].any() and g[2].any() and not g[3:].any()


def test_embedding_from_pretrained():
    w = numpy.arange(8.0, dtype=numpy.float32).reshape(4, 2)
    e = nn.Embedding.from_pretrained(ember.tensor(w))
    t = torch.nn.Embedding.from_pretrained(torch.tensor(w))
    assert not e.weight.requires_grad
    numpy.testing.assert_array_equal(e(ember.tensor([3, 1])).numpy(),
                                     t(torch.tensor([3, 1])).numpy())
    trainable = nn.Embedding.from_pretrained(ember.tensor(w), freeze=False, padding_idx=1)
    tt = torch.nn.Embedding.from_pretrained(torch.tensor(w), freeze=False, padding_idx=1)
    rng = numpy.random.default_rng(0)
    run_both(trainable, tt, [numpy.array([1, 2, 1, 3])], rng, 1e-6, 1e-6)
    assert repr(trainable) == repr(tt)


def test_embedding_in_a_model_train_and_eval():
    torch.manual_seed(1)
    t = torch.nn.Sequential(torch.nn.Embedding(7, 5), torch.nn.Dropout(0.0),
                            torch.nn.Linear(5, 2))
    e = nn.Sequential(nn.Embedding(7, 5), nn.Dropout(0.0), nn.Linear(5, 2))
    copy_state(e, t)
    compare_layer(e, t, [numpy.array([[0, 6, 3], [2, 2, 1]])])


def test_embedding_errors_name_the_layer():
    model = nn.Sequential(nn.Embedding(5, 2))
    with pytest.raises(errors.ShapeError, match=r"Embedding\(5, 2\) '0' with input of shape "
                                                r"\(2,\): embedding: index 7 is out of range for "
                                                r"a table of 5 rows"):
        model(ember.tensor([1, 7]))
    with pytest.raises(errors.DTypeError, match="expected an integer index tensor"):
        model(ember.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(NotImplementedError, match="sparse=True"):
        nn.Embedding(5, 2, sparse=True)


@pytest.mark.parametrize("kwargs", [{}, {"mode": "sum", "padding_idx": 2}, {"mode": "max"},
                                    {"mode": "sum", "max_norm": 1.0}], ids=str)
def test_embedding_bag_matches_torch(kwargs):
    torch.manual_seed(2)
    t = torch.nn.EmbeddingBag(10, 4, **kwargs)
    e = nn.EmbeddingBag(10, 4, **kwargs)
    compare_layer(e, t, [numpy.array([[1, 2, 2, 9], [0, 9, 2, 5]])])
    flat, offsets = numpy.array([1, 2, 4, 5, 4, 3, 2, 9]), numpy.array([0, 4, 4])
    copy_state(e, t)
    rng = numpy.random.default_rng(0)
    e.zero_grad()
    t.zero_grad()
    e_out = e(ember.tensor(flat), ember.tensor(offsets))
    t_out = t(torch.tensor(flat), torch.tensor(offsets))
    numpy.testing.assert_allclose(e_out.detach().numpy(), t_out.detach().numpy(), 1e-5, 1e-6)
    g = rng.standard_normal(tuple(t_out.shape)).astype(numpy.float32)
    (e_out * ember.tensor(g)).sum().backward()
    (t_out * torch.tensor(g)).sum().backward()
    numpy.testing.assert_allclose(e.weight.grad.numpy(), t.weight.grad.numpy(), 1e-5, 1e-6)
    assert repr(e) == repr(t)


def test_embedding_bag_from_pretrained():
    w = numpy.arange(8.0, dtype=numpy.float32).reshape(4, 2)
    e = nn.EmbeddingBag.from_pretrained(ember.tensor(w), mode="sum")
    t = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(w), mode="sum")
    assert not e.weight.requires_grad
    numpy.testing.assert_array_equal(e(ember.tensor([[3, 1]])).numpy(),
                                     t(torch.tensor([[3, 1]])).numpy())


def test_dropout_errors_name_the_layer():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout2d(0.1))
    with pytest.raises(errors.ShapeError, match=r"Dropout2d\(p=0.1, inplace=False\) '1': "
                                                r"dropout2d: expected a 3-D"):
        model(ember.zeros(2, 3))
