"""Cython loop-nest kernels of the accelerator: Algorithm 1 of the SqueezeNext paper in every
dataflow (WS, OS SOC-MOP / MOC-SOP / MOC-MOP) and every order of the tiled loops, computing
real outputs while counting every access (execute), or counting only (count).
See docs/kernels.md."""
from .api import (
    COUNTER_FIELDS,
    DATAFLOWS,
    KINDS,
    LOOPS,
    OPERANDS,
    ORDERS,
    AccumulatorOverflowWarning,
    ConvShape,
    Counters,
    Mapping,
    ZeroProfile,
    count,
    count_array,
    count_many,
    divisors,
    execute,
)

__all__ = ["DATAFLOWS", "LOOPS", "ORDERS", "OPERANDS", "KINDS", "COUNTER_FIELDS",
           "AccumulatorOverflowWarning", "ConvShape", "Counters", "Mapping", "ZeroProfile",
           "count", "count_array", "count_many", "divisors", "execute"]
