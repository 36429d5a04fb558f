"""Runners: execute graphs on NumPy arrays."""
from .init import random_weights
from .runner import Runner
from .threads import set_threads

__all__ = ["Runner", "random_weights", "set_threads"]
