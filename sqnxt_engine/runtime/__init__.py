"""Runners: execute graphs on NumPy arrays."""
from .init import random_weights
from .runner import Runner, check_params

__all__ = ["Runner", "check_params", "random_weights"]
