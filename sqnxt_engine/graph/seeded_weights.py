"""Seeded random weights for any graph, so every model runs without trained weights."""
from __future__ import annotations

import numpy as np

from .graph import Graph


def random_weights(graph: Graph, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """He-normal conv and fc weights, small random biases, and batch-norm statistics away from
    the identity (so that folding is exercised), all from one seeded generator. Each array is
    drawn in float64 a block of _BLOCK values at a time (the generator's stream is the same as
    one draw of the whole array) and cast into its place, so no float64 copy of a whole array
    is made (AlexNet's fc6: 302 MB)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for layer in graph.layers:
        shapes = layer.op.param_shapes(list(layer.in_shapes))
        for pname, shape in shapes.items():
            key = f"{layer.name}.{pname}"
            if pname == "weight":
                fan_in = int(np.prod(shape[1:]))
                draw = (rng.normal, 0.0, np.sqrt(2.0 / fan_in))
            elif pname == "bias":
                draw = (rng.normal, 0.0, 0.05)
            elif pname == "gamma":
                draw = (rng.uniform, 0.5, 1.5)
            elif pname == "beta":
                draw = (rng.normal, 0.0, 0.1)
            elif pname == "mean":
                draw = (rng.normal, 0.0, 0.1)
            elif pname == "var":
                draw = (rng.uniform, 0.5, 1.5)
            else:  # a parameter kind this initialiser does not know: fail loudly, not silently
                raise ValueError(f"no initialiser for {key}")
            arr = np.empty(shape, dtype)
            flat = arr.reshape(-1)
            for i in range(0, flat.size, _BLOCK):
                flat[i:i + _BLOCK] = draw[0](draw[1], draw[2], min(_BLOCK, flat.size - i))
            out[key] = arr
    return out


_BLOCK = 1 << 20
