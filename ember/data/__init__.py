"""Datasets, samplers and the DataLoader (PyTorch's names), plus small bundled datasets."""

from ember.data import datasets, transforms  # noqa: F401
from ember.data._worker import WorkerInfo, get_worker_info
from ember.data.collate import default_collate
from ember.data.dataloader import DataLoader, DataLoaderWorkerError
from ember.data.dataset import (
    ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split,
)
from ember.data.sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "DataLoader", "DataLoaderWorkerError", "Dataset", "IterableDataset", "TensorDataset",
    "Subset", "ConcatDataset", "random_split", "Sampler", "SequentialSampler", "RandomSampler",
    "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler", "default_collate",
    "get_worker_info", "WorkerInfo",
]
