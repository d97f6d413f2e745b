"""Utilities that are not layers: activation checkpointing (``ember.utils.checkpoint``)."""

from ember.utils import checkpoint  # noqa: F401

__all__ = ["checkpoint"]
