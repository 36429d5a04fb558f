"""Seeded random weights for any graph, so every model runs without trained weights."""
from __future__ import annotations

import numpy as np

from .graph import Graph


def random_weights(graph: Graph, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """He-normal conv and fc weights, small random biases, and batch-norm statistics away from
    the identity (so that folding is exercised), all from one seeded generator."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for layer in graph.layers:
        shapes = layer.op.param_shapes(list(layer.in_shapes))
        for pname, shape in shapes.items():
            key = f"{layer.name}.{pname}"
            if pname == "weight":
                fan_in = int(np.prod(shape[1:]))
                arr = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
            elif pname == "bias":
                arr = rng.normal(0.0, 0.05, shape)
            elif pname == "gamma":
                arr = rng.uniform(0.5, 1.5, shape)
            elif pname == "beta":
                arr = rng.normal(0.0, 0.1, shape)
            elif pname == "mean":
                arr = rng.normal(0.0, 0.1, shape)
            elif pname == "var":
                arr = rng.uniform(0.5, 1.5, shape)
            else:  # a parameter kind this initialiser does not know: fail loudly, not silently
                raise ValueError(f"no initialiser for {key}")
            out[key] = arr.astype(dtype)
    return out
