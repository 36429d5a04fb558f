"""Running graphs on NumPy arrays: the float runner (runner), seeded random weights for any graph
(seeded_weights), and classifying with a weight file (predict)."""
from .runner import Runner
from .seeded_weights import random_weights
from .threads import set_threads

__all__ = ["Runner", "random_weights", "set_threads"]
