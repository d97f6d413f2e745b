"""Linear algebra (ember/ops/linalg.py) against PyTorch and finite differences: every matmul
broadcasting case, mm/bmm/mv/dot/inner/outer, addmm/baddbmm, tensordot and einsum."""

import numpy
import pytest
import torch

import ember
from ember import errors
from tests.oracle import check_double_backward, check_op


# ---- matmul --------------------------------------------------------------------------------


@pytest.mark.parametrize("shapes", [
    [(3,), (3,)],                     # dot product -> 0-d
    [(3,), (3, 4)],                   # vector x matrix
    [(3,), (2, 3, 4)],                # vector x batch
    [(2, 3), (3,)],                   # matrix x vector
    [(5, 2, 3), (3,)],                # batch x vector
    [(2, 3), (3, 4)],                 # matrix x matrix
    [(2, 2, 3), (3, 4)],              # batch x matrix (folded into one GEMM)
    [(3, 4), (2, 4, 2)],              # matrix x batch
    [(2, 3, 4), (2, 4, 5)],           # equal batches
    [(2, 1, 3, 4), (5, 4, 2)],        # broadcast batch dims
    [(1, 3, 4), (2, 1, 4, 2)],
    [(0, 3), (3, 2)], [(2, 0), (0, 3)], [(0, 2, 3), (3, 1)],   # empty
])
def test_matmul_broadcasting(shapes):
    check_op(lambda a, b: a @ b, shapes)
    check_op(lambda a, b: ember.matmul(a, b), shapes, torch_fn=torch.matmul)


def test_matmul_noncontiguous_and_float32():
    check_op(lambda a, b: a.mT @ b, [(3, 2), (3, 4)])
    check_op(lambda a, b: a @ b.mT, [(2, 2, 3), (4, 3)])
    check_op(lambda a, b: a.mT @ b.mT, [(2, 4, 3), (5, 4)])
    check_op(lambda a, b: a.matmul(b), [(4, 3, 5), (5, 6)], dtype=numpy.float32)
    check_op(lambda a, b: a @ b, [(2, 1, 3, 4), (5, 4, 2)], dtype=numpy.float32)


def test_matmul_reflected_with_numpy_array_and_int():
    a = ember.tensor([[1, 2], [3, 4]])
    assert (a @ a).tolist() == [[7, 10], [15, 22]]
    x = ember.ones(2, 2, dtype=ember.float64)
    assert (numpy.ones((2, 2)) @ x).shape == (2, 2)


def test_matmul_gradient_reduces_broadcast_batch_dims():
    a = ember.randn(2, 1, 3, 4, requires_grad=True)
    b = ember.randn(5, 4, 2, requires_grad=True)
    (a @ b).sum().backward()
    assert a.grad.shape == (2, 1, 3, 4) and b.grad.shape == (5, 4, 2)


@pytest.mark.parametrize("shapes", [[(2, 3), (3, 2)], [(2, 1, 2, 3), (2, 3, 2)], [(3,), (2, 3, 2)],
                                    [(2, 2, 3), (3,)]])
def test_matmul_double_backward(shapes):
    check_double_backward(lambda a, b: (a @ b) ** 2, shapes)


def test_matmul_errors():
    with pytest.raises(errors.ShapeError, match=r"matmul: shapes \(3, 4\) and \(5, 6\) cannot be "
                       r"multiplied \(4 columns vs 5 rows\)"):
        ember.ones(3, 4) @ ember.ones(5, 6)
    with pytest.raises(errors.ShapeError, match=r"matmul: shapes \(2, 3\) and \(4,\)"):
        ember.ones(2, 3) @ ember.ones(4)
    with pytest.raises(errors.ShapeError,
                       match=r"batch dims of shapes \(2, 3, 4\) and \(3, 4, 2\)"):
        ember.ones(2, 3, 4) @ ember.ones(3, 4, 2)
    with pytest.raises(errors.ShapeError, match="need at least 1 dimension"):
        ember.matmul(ember.ones(()), ember.ones(3))
    with pytest.raises(errors.DTypeError, match="matmul: expected operands of one dtype, got "
                       "ember.float32 and ember.float64"):
        ember.ones(2, 2) @ ember.ones(2, 2, dtype=ember.float64)


# ---- strict products -----------------------------------------------------------------------


def test_mm_bmm_mv_dot():
    check_op(lambda a, b: ember.mm(a, b), [(2, 3), (3, 4)], torch_fn=torch.mm)
    check_op(lambda a, b: a.mm(b.mT), [(2, 3), (4, 3)])
    check_op(lambda a, b: ember.mm(a, b), [(0, 3), (3, 2)], torch_fn=torch.mm)
    check_op(lambda a, b: ember.bmm(a, b), [(2, 3, 4), (2, 4, 1)], torch_fn=torch.bmm)
    check_op(lambda a, b: a.bmm(b.mT), [(2, 3, 4), (2, 5, 4)])
    check_op(lambda a, b: ember.mv(a, b), [(2, 3), (3,)], torch_fn=torch.mv)
    check_op(lambda a, b: ember.dot(a, b), [(4,), (4,)], torch_fn=torch.dot)
    check_op(lambda a, b: a.dot(b), [(0,), (0,)])
    check_op(lambda a, b: ember.mm(a, b), [(2, 3), (3, 4)], dtype=numpy.float32, torch_fn=torch.mm)


def test_strict_product_errors():
    with pytest.raises(errors.ShapeError, match=r"mm: expected input to be a matrix \(2-D\), got "
                       r"shape \(3,\)"):
        ember.mm(ember.ones(3), ember.ones(3, 2))
    with pytest.raises(errors.ShapeError, match=r"mm: shapes \(2, 3\) and \(4, 2\) cannot be "
                       r"multiplied"):
        ember.mm(ember.ones(2, 3), ember.ones(4, 2))
    with pytest.raises(errors.ShapeError, match=r"bmm: expected mat2 to be a batch of matrices "
                       r"\(3-D\), got shape \(3, 2\)"):
        ember.bmm(ember.ones(2, 2, 3), ember.ones(3, 2))
    with pytest.raises(errors.ShapeError, match=r"bmm: batch sizes differ: shapes \(2, 2, 3\) and "
                       r"\(3, 3, 2\)"):
        ember.bmm(ember.ones(2, 2, 3), ember.ones(3, 3, 2))
    with pytest.raises(errors.ShapeError, match=r"bmm: shapes \(2, 2, 3\) and \(2, 4, 2\)"):
        ember.bmm(ember.ones(2, 2, 3), ember.ones(2, 4, 2))
    with pytest.raises(errors.ShapeError, match=r"dot: the tensors have 3 and 4 elements"):
        ember.dot(ember.ones(3), ember.ones(4))
    with pytest.raises(errors.ShapeError, match=r"dot: expects two 1-D tensors, got shapes \(2, "
                                                r"2\)"):
        ember.dot(ember.ones(2, 2), ember.ones(2, 2))
    with pytest.raises(errors.ShapeError, match=r"mv: expected vec to be a vector"):
        ember.mv(ember.ones(2, 2), ember.ones(2, 1))


@pytest.mark.parametrize("shapes", [[(3,), (4,)], [(0,), (2,)], [(1,), (1,)]])
def test_outer(shapes):
    check_op(lambda a, b: ember.outer(a, b), shapes, torch_fn=torch.outer)
    check_op(lambda a, b: a.ger(b), shapes)


def test_outer_error():
    with pytest.raises(errors.ShapeError, match=r"outer: expects two 1-D tensors"):
        ember.outer(ember.ones(2, 2), ember.ones(2))


@pytest.mark.parametrize("shapes", [
    [(3,), (3,)], [(2, 3), (4, 3)], [(), (2, 3)], [(2, 2, 3), (3,)],
])
def test_inner(shapes):
    check_op(lambda a, b: ember.inner(a, b), shapes, torch_fn=torch.inner)


@pytest.mark.parametrize("kw", [{}, {"beta": 0.5, "alpha": 2.0}, {"beta": 0}, {"alpha": 0.0}])
def test_addmm_baddbmm(kw):
    check_op(lambda c, a, b: ember.addmm(c, a, b, **kw), [(3,), (2, 4), (4, 3)],
             torch_fn=lambda c, a, b: torch.addmm(c, a, b, **kw))
    check_op(lambda c, a, b: c.addmm(a, b, **kw), [(2, 3), (2, 4), (4, 3)])
    check_op(lambda c, a, b: ember.baddbmm(c, a, b, **kw), [(1, 3), (2, 2, 4), (2, 4, 3)],
             torch_fn=lambda c, a, b: torch.baddbmm(c, a, b, **kw))


def test_addmm_beta_zero_ignores_nan_and_bad_shape():
    c = ember.full((2, 2), float("nan"))
    out = ember.addmm(c, ember.ones(2, 3), ember.ones(3, 2), beta=0)
    assert not numpy.isnan(out.numpy()).any()
    with pytest.raises(errors.ShapeError, match=r"addmm: input of shape \(3, 2, 2\) cannot be "
                       r"broadcast to the product's shape \(2, 2\)"):
        ember.addmm(ember.ones(3, 2, 2), ember.ones(2, 3), ember.ones(3, 2))


# ---- tensordot -----------------------------------------------------------------------------


@pytest.mark.parametrize("shapes, dims", [
    ([(2, 3, 4), (3, 4, 5)], 2), ([(2, 3), (3, 4)], 1), ([(2, 3), (4, 5)], 0),
    ([(2, 3, 4), (4, 3, 2)], ([1, 0], [1, 2])), ([(2, 3), (4, 2)], ([0], [1])),
    ([(3, 0), (0, 2)], 1), ([(2, 3), (2, 3)], 2), ([(4, 3), (3, 4)], ([-1], [0])),
])
def test_tensordot(shapes, dims):
    check_op(lambda a, b: ember.tensordot(a, b, dims), shapes,
             torch_fn=lambda a, b: torch.tensordot(a, b, dims))


def test_tensordot_noncontiguous_double_backward_and_errors():
    check_op(lambda a, b: ember.tensordot(a.mT, b, 1), [(3, 2), (3, 4)],
             torch_fn=lambda a, b: torch.tensordot(a.mT, b, 1))
    check_double_backward(lambda a, b: ember.tensordot(a, b, ([0], [1])) ** 2, [(2, 3), (4, 2)])
    with pytest.raises(errors.ShapeError, match=r"tensordot: contracted dims must match, but dim 1 "
                       r"of shape \(2, 3\) has size 3 and dim 1 of shape \(4, 2\) has size 2"):
        ember.tensordot(ember.ones(2, 3), ember.ones(4, 2), ([1], [1]))
    with pytest.raises(ValueError, match="tensordot: dims=3 must be between 0 and"):
        ember.tensordot(ember.ones(2, 3), ember.ones(3, 2), 3)


# ---- einsum --------------------------------------------------------------------------------


@pytest.mark.parametrize("eq, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]),          # matrix product
    ("ij,jk", [(2, 3), (3, 4)]),              # implicit output
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),  # batched
    ("i,j->ij", [(3,), (2,)]),                # outer
    ("i,i->", [(4,), (4,)]),                  # dot
    ("ii", [(3, 3)]),                         # trace
    ("ii->i", [(3, 3)]),                      # diagonal
    ("iij->ji", [(2, 2, 3)]),                 # batched diagonal
    ("ij->ji", [(2, 3)]),                     # transpose
    ("ij->", [(2, 3)]),                       # total sum
    ("ij->j", [(2, 3)]),                      # partial sum
    ("ij,kl->", [(2, 3), (2, 2)]),            # indices only one operand has
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]),  # ellipsis with broadcasting
    ("...ij->...ji", [(2, 3, 4)]),
    ("i...->...", [(2, 3, 4)]),
    ("b i d, b j d -> b i j", [(2, 3, 4), (2, 2, 4)]),  # spaces, attention scores
    ("ij,ij->ij", [(1, 3), (2, 3)]),          # size-1 broadcasting of a letter
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),  # three operands
    ("bA,Ab", [(2, 3), (3, 2)]),              # capital letters
    ("ij,jj,j->i", [(2, 3), (3, 3), (3,)]),   # repeated index in a middle operand
    ("i,i,i->i", [(0,), (0,), (0,)]),         # empty
    ("ii->", [(1, 1)]),
])
def test_einsum(eq, shapes):
    check_op(lambda *xs: ember.einsum(eq, *xs), shapes, torch_fn=lambda *xs: torch.einsum(eq, *xs))


def test_einsum_list_and_sublist_forms_noncontiguous_float32():
    check_op(lambda a, b: ember.einsum("ij,jk->ik", [a.mT, b]), [(3, 2), (3, 4)],
             torch_fn=lambda a, b: torch.einsum("ij,jk->ik", [a.mT, b]))
    check_op(lambda a, b: ember.einsum(a, [0, 1], b, [1, 2], [0, 2]), [(2, 3), (3, 4)],
             torch_fn=lambda a, b: torch.einsum(a, [0, 1], b, [1, 2], [0, 2]))
    check_op(lambda a, b: ember.einsum(a, [Ellipsis, 0], b, [Ellipsis, 0]), [(2, 3), (2, 3)],
             torch_fn=lambda a, b: torch.einsum(a, [Ellipsis, 0], b, [Ellipsis, 0]))
    check_op(lambda a, b: ember.einsum("bij,bjk->bik", a, b), [(2, 3, 4), (2, 4, 2)],
             dtype=numpy.float32, torch_fn=lambda a, b: torch.einsum("bij,bjk->bik", a, b))


@pytest.mark.parametrize("eq, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 2)]), ("ii->i", [(3, 3)]), ("ij->", [(2, 2)]),
    ("...ij,...jk", [(2, 1, 2, 2), (2, 2, 2)]), ("i,j->ij", [(2,), (3,)]),
    ("ij,jj,j->i", [(2, 2), (2, 2), (2,)]),
])
def test_einsum_double_backward(eq, shapes):
    check_double_backward(lambda *xs: ember.einsum(eq, *xs) ** 2, shapes)


def test_einsum_single_operand_result_is_a_view_like_torch():
    x = ember.randn(2, 3)
    y = ember.einsum("ij->ji", x)
    assert y._version is x._version


def test_einsum_errors():
    a, b = ember.ones(2, 3), ember.ones(4, 2)
    with pytest.raises(errors.ShapeError, match=r"einsum: subscript 'j' has size 4 in operand 1 "
                       r"\(shape "
                       r"\(4, 2\)\), which does not match its size 3 in an earlier operand"):
        ember.einsum("ij,jk", a, b)
    with pytest.raises(errors.ShapeError, match=r"subscripts 'ij' of operand 0 do not fit its "
                       r"shape \(2, 3, 4\) \(2 letters for 3 dims, and no ellipsis\)"):
        ember.einsum("ij", ember.ones(2, 3, 4))
    with pytest.raises(ValueError, match="has 2 operand subscripts but 1 operands"):
        ember.einsum("ij,jk", a)
    with pytest.raises(ValueError, match="output subscript 'j' appears more than once"):
        ember.einsum("ij->jj", a)
    with pytest.raises(ValueError, match="output subscript 'k' does not appear"):
        ember.einsum("ij->k", a)
    with pytest.raises(errors.ShapeError, match=r"subscript 'i' is repeated in operand 0 \(shape "
                       r"\(2, 3\)\) over dims of different sizes 2 and 3"):
        ember.einsum("ii->i", a)
    with pytest.raises(errors.ShapeError, match=r"an ellipsis dim has size 3 in operand 1"):
        ember.einsum("...i,...i", ember.ones(2, 4), ember.ones(3, 4))
    with pytest.raises(ValueError, match="invalid subscript '1'"):
        ember.einsum("i1", a)
    with pytest.raises(errors.DTypeError, match="einsum: expected operands of one dtype"):
        ember.einsum("ij,jk", ember.ones(2, 3), ember.ones(3, 2, dtype=ember.float64))


def test_einsum_large_operands_take_the_optimized_path():
    check_op(lambda a, b: ember.einsum("bij,bjk->bik", a, b), [(4, 32, 32), (4, 32, 32)],
             gradcheck=False, torch_fn=lambda a, b: torch.einsum("bij,bjk->bik", a, b))
