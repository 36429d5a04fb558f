"""Runners: execute graphs on NumPy arrays."""
from .init import random_weights
from .runner import Runner

__all__ = ["Runner", "random_weights"]
