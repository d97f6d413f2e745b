"""F.embedding against PyTorch: lookups, scatter-add gradients, padding_idx, max_norm,
scale_grad_by_freq, double backward and errors."""

import numpy
import pytest
import torch
import torch.nn.functional as TF

import ember
from ember import errors
from ember.nn import functional as F
from ember.ops import embedding as ops_embedding
from tests.oracle import check_double_backward, check_op

IDX = numpy.array([[1, 2, 2, 7], [0, 9, 2, 2]])


@pytest.mark.parametrize("idx", [IDX, numpy.array([3, 3, 3]), numpy.array(4),
                                 numpy.zeros((2, 0), dtype=numpy.int64)], ids=str)
def test_matches_torch_with_repeated_rows(idx):
    check_op(lambda w: F.embedding(ember.tensor(idx), w), [(10, 3)],
             torch_fn=lambda w: TF.embedding(torch.tensor(idx), w))


@pytest.mark.parametrize("padding_idx", [2, -8, 5])
def test_padding_idx_row_gets_no_gradient(padding_idx):
    # finite differences would see the padding row: compare with torch only
    check_op(lambda w: F.embedding(ember.tensor(IDX), w, padding_idx=padding_idx), [(10, 3)],
             torch_fn=lambda w: TF.embedding(torch.tensor(IDX), w, padding_idx=padding_idx),
             gradcheck=False)
    w = ember.randn(10, 3, requires_grad=True)
    F.embedding(ember.tensor(IDX), w, padding_idx=2).sum().backward()
    assert not w.grad.numpy()[2].any() and w.grad.numpy()[9].any()


def test_scale_grad_by_freq_matches_torch():
    check_op(lambda w: F.embedding(ember.tensor(IDX), w, scale_grad_by_freq=True), [(10, 3)],
             torch_fn=lambda w: TF.embedding(torch.tensor(IDX), w, scale_grad_by_freq=True),
             gradcheck=False)
    check_op(lambda w: F.embedding(ember.tensor(IDX), w, 2, scale_grad_by_freq=True), [(10, 3)],
             torch_fn=lambda w: TF.embedding(torch.tensor(IDX), w, 2, scale_grad_by_freq=True),
             gradcheck=False, dtype=numpy.float32)


def test_double_backward():
    check_double_backward(lambda w: F.embedding(ember.tensor(IDX), w) ** 2, [(10, 3)])
    check_double_backward(lambda w: F.embedding(ember.tensor(IDX), w, padding_idx=2) ** 2,
                          [(10, 3)])


def test_second_order_with_padding_matches_torch():
    w0 = numpy.random.default_rng(0).standard_normal((10, 3))
    ew, tw = ember.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    (eg,) = ember.autograd.grad((F.embedding(ember.tensor(IDX), ew, 2) ** 3).sum(), [ew],
                                create_graph=True)
    (tg,) = torch.autograd.grad((TF.embedding(torch.tensor(IDX), tw, 2) ** 3).sum(), [tw],
                                create_graph=True)
    (eg ** 2).sum().backward()
    (tg ** 2).sum().backward()
    numpy.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), 1e-10)



# Above ops/embedding.py's _SCATTER_MIN gradient elements the backward writes first occurrences
# and adds only the repeats: token ids drawn with many repeats (few ids), with none (a
# permutation) and with one id everywhere.
BIG_IDX = {
    "repeats": numpy.random.default_rng(3).integers(0, 40, size=(48, 20)),
    "distinct": numpy.random.default_rng(4).permutation(900)[:640].reshape(32, 20),
    "one-id": numpy.full((40, 16), 7),
}


@pytest.mark.parametrize("name", sorted(BIG_IDX))
@pytest.mark.parametrize("padding_idx", [None, 7])
def test_large_backward_matches_torch(name, padding_idx):
    idx = BIG_IDX[name]
    for dtype in (numpy.float64, numpy.float32):
        check_op(lambda w: F.embedding(ember.tensor(idx), w, padding_idx=padding_idx),
                 [(900, 8)], gradcheck=False, dtype=dtype,
                 torch_fn=lambda w: TF.embedding(torch.tensor(idx), w, padding_idx=padding_idx))
    check_op(lambda w: F.embedding(ember.tensor(idx), w, padding_idx, scale_grad_by_freq=True),
             [(900, 8)], gradcheck=False,
             torch_fn=lambda w: TF.embedding(torch.tensor(idx), w, padding_idx,
                                             scale_grad_by_freq=True))


@pytest.mark.parametrize("rows", [30, 3000])
def test_large_backward_sums_repeats_in_input_order(rows):
    """Same bits as ``numpy.add.at`` (each row summed in input order). 30 ids over 2,048
    positions repeat more often than ops/embedding.py's _SCATTER_LEVELS (the ``add.at`` tail);
    3,000 ids repeat a few times each (only the level-by-level additions)."""
    rng = numpy.random.default_rng(5)
    idx = rng.integers(0, rows, size=(64, 32))
    counts = numpy.bincount(idx.reshape(-1))
    assert (counts.max() > ops_embedding._SCATTER_LEVELS) == (rows == 30) and counts.max() > 2
    g = rng.standard_normal((64, 32, 16)).astype(numpy.float32)
    w = ember.zeros(rows, 16, requires_grad=True)
    F.embedding(ember.tensor(idx), w).backward(ember.tensor(g))
    want = numpy.zeros((rows, 16), numpy.float32)
    numpy.add.at(want, idx.reshape(-1), g.reshape(-1, 16))
    numpy.testing.assert_array_equal(w.grad.numpy(), want)
    check_double_backward(lambda w: F.embedding(ember.tensor(idx[:8] % 30), w, 3) ** 2,
                          [(30, 16)])

@pytest.mark.parametrize("max_norm, norm_type", [(1.0, 2.0), (0.5, 1.0), (2.0, 3.0)])
def test_max_norm_renormalizes_rows_in_place(max_norm, norm_type):
    w0 = numpy.random.default_rng(1).standard_normal((10, 3)) * 2
    ew, tw = ember.tensor(w0.copy()), torch.tensor(w0.copy())
    e = F.embedding(ember.tensor(IDX), ew, max_norm=max_norm, norm_type=norm_type)
    t = TF.embedding(torch.tensor(IDX), tw, max_norm=max_norm, norm_type=norm_type)
    numpy.testing.assert_allclose(ew.numpy(), tw.numpy(), 1e-12)
    numpy.testing.assert_allclose(e.numpy(), t.numpy(), 1e-12)
    assert not numpy.array_equal(ew.numpy(), w0)  # looked-up rows changed, in place
    numpy.testing.assert_array_equal(ew.numpy()[3], w0[3])  # rows not looked up did not


def test_int32_indices_and_errors():
    check_op(lambda w: F.embedding(ember.tensor(IDX.astype(numpy.int32)), w), [(10, 3)],
             torch_fn=lambda w: TF.embedding(torch.tensor(IDX.astype(numpy.int32)), w),
             gradcheck=False)
    w = ember.randn(5, 2)
    with pytest.raises(errors.ShapeError, match=r"embedding: index 5 is out of range for a table "
                                                r"of 5 rows \(weight \(5, 2\)\)"):
        F.embedding(ember.tensor([1, 5]), w)
    with pytest.raises(errors.ShapeError, match="index -1 is out of range"):
        F.embedding(ember.tensor([-1]), w)
    with pytest.raises(errors.DTypeError, match="integer index tensor"):
        F.embedding(ember.tensor([1.0]), w)
    with pytest.raises(errors.ShapeError, match="weight must be 2-D"):
        F.embedding(ember.tensor([1]), ember.randn(5))
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        F.embedding(ember.tensor([1]), w, padding_idx=7)
    with pytest.raises(NotImplementedError, match="sparse=True"):
        F.embedding(ember.tensor([1]), w, sparse=True)


BAG_1D = numpy.array([1, 2, 2, 7, 0, 9, 2, 5, 3])
OFFSETS = numpy.array([0, 3, 3, 7])  # the second bag is empty


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_bag_matches_torch(mode, padding_idx):
    # finite differences see the padding row, which has no gradient by design
    fd = padding_idx is None
    check_op(lambda w: F.embedding_bag(ember.tensor(IDX), w, mode=mode, padding_idx=padding_idx),
             [(10, 3)], gradcheck=fd,
             torch_fn=lambda w: TF.embedding_bag(torch.tensor(IDX), w, mode=mode,
                                                 padding_idx=padding_idx))
    check_op(lambda w: F.embedding_bag(ember.tensor(BAG_1D), w, ember.tensor(OFFSETS), mode=mode,
                                       padding_idx=padding_idx), [(10, 3)], gradcheck=fd,
             torch_fn=lambda w: TF.embedding_bag(torch.tensor(BAG_1D), w,
                                                 torch.tensor(OFFSETS), mode=mode,
                                                 padding_idx=padding_idx))


def test_embedding_bag_per_sample_weights_and_last_offset():
    ends = numpy.array([0, 3, 3, 7, 9])
    check_op(lambda w, p: F.embedding_bag(ember.tensor(BAG_1D), w, ember.tensor(ends),
                                          mode="sum", per_sample_weights=p,
                                          include_last_offset=True), [(10, 3), (9,)],
             torch_fn=lambda w, p: TF.embedding_bag(torch.tensor(BAG_1D), w, torch.tensor(ends),
                                                    mode="sum", per_sample_weights=p,
                                                    include_last_offset=True))
    check_double_backward(lambda w: F.embedding_bag(ember.tensor(IDX), w, mode="mean") ** 2,
                          [(10, 3)])
    with pytest.raises(ValueError, match="per_sample_weights is only supported for mode='sum'"):
        F.embedding_bag(ember.tensor(IDX), ember.randn(10, 3), per_sample_weights=ember.ones(2, 4))
    with pytest.raises(ValueError, match="offsets must start at 0"):
        F.embedding_bag(ember.tensor(BAG_1D), ember.randn(10, 3), ember.tensor([1, 3]))
    with pytest.raises(ValueError, match="offsets is required"):
        F.embedding_bag(ember.tensor(BAG_1D), ember.randn(10, 3))
