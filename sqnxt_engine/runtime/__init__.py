"""Running graphs on NumPy arrays: the float runner (runner), its threads (threads), and
classifying with a weight file, float or quantized (predict). `random_weights` (seeded random
weights for any graph) lives in graph.seeded_weights and is exported here too, beside the Runner it
is usually run with."""
from ..graph.seeded_weights import random_weights
from .runner import Runner
from .threads import set_threads

__all__ = ["Runner", "random_weights", "set_threads"]
