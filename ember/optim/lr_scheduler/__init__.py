"""Learning-rate schedules, named and computed as in ``torch.optim.lr_scheduler``.

Files by family: ``base.py`` (LRScheduler), ``simple.py`` (factor schedules), ``cosine.py``,
``cyclic.py`` (OneCycleLR, CyclicLR), ``sequential.py``, ``plateau.py`` (ReduceLROnPlateau).
"""

from ember.optim.lr_scheduler.base import LRScheduler
from ember.optim.lr_scheduler.cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from ember.optim.lr_scheduler.cyclic import CyclicLR, OneCycleLR
from ember.optim.lr_scheduler.plateau import ReduceLROnPlateau
from ember.optim.lr_scheduler.sequential import SequentialLR
from ember.optim.lr_scheduler.simple import (
    ConstantLR, ExponentialLR, LambdaLR, LinearLR, MultiplicativeLR, MultiStepLR, PolynomialLR,
    StepLR,
)

__all__ = [
    "ConstantLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR",
    "ExponentialLR", "LambdaLR", "LinearLR", "LRScheduler", "MultiplicativeLR", "MultiStepLR",
    "OneCycleLR", "PolynomialLR", "ReduceLROnPlateau", "SequentialLR", "StepLR",
]
