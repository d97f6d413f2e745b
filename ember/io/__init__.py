"""Saving and loading: safetensors + JSON, atomic writes, checked reads, training checkpoints."""

from ember.io.atomic import atomic_write
from ember.io.checkpoint import load_checkpoint, save_checkpoint
from ember.io.serialization import CheckpointError, load, save

__all__ = ["save", "load", "atomic_write", "CheckpointError", "save_checkpoint",
           "load_checkpoint"]
