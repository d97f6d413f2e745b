"""The first ops, checked against PyTorch: the harness itself is exercised here."""

import pytest

import ember
from tests.oracle import check_double_backward, check_op


@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4)], [(3, 1), (4,)], [(), (2, 3)], [(0, 3), (3,)]])
def test_binary_arithmetic(shapes):
    check_op(lambda a, b: a + b * 2 - a / (b * b + 1), shapes)


def test_matmul_and_exp():
    check_op(lambda a, b: (a @ b).exp(), [(2, 3, 4), (4, 5)])
    check_double_backward(lambda a, b: (a @ b).exp(), [(2, 3), (3, 2)])


def test_noncontiguous_input():
    check_op(lambda a: (a.mT * 3.0).sum(0), [(4, 3)])
