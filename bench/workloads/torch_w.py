"""The five workloads in PyTorch eager: bench/workloads/eager.py run with ``import torch``."""

import torch
from bench.workloads import eager

make_step = eager.workloads(torch)
to_float = eager.to_float


def setup(threads):
    torch.set_num_threads(threads)
