"""Cython loop-nest kernels of the accelerator: Algorithm 1 of the SqueezeNext paper in every
dataflow (WS, OS SOC-MOP / MOC-SOP / MOC-MOP) and every order of the tiled loops, computing
real outputs while counting every access (execute), or counting only (count).
See docs/kernels.md."""
from .api import (
                  COUNTER_FIELDS,
                  DATAFLOWS,
                  DISTINCT_ORDERS,
                  KINDS,
                  LOOPS,
                  MAP_WIDTH,
                  OPERANDS,
                  ORDERS,
                  TRANSFERS,
                  AccumulatorOverflowWarning,
                  ConvShape,
                  Counters,
                  Dataflow,
                  Mapping,
                  ZeroProfile,
                  count,
                  count_array,
                  count_many,
                  execute,
                  footprints,
                  least_dram_words,
)

__all__ = ["COUNTER_FIELDS", "DATAFLOWS", "DISTINCT_ORDERS", "KINDS", "LOOPS", "MAP_WIDTH",
           "OPERANDS", "ORDERS", "TRANSFERS", "AccumulatorOverflowWarning", "ConvShape",
           "Counters", "Dataflow", "Mapping", "ZeroProfile", "count", "count_array", "count_many",
           "execute", "footprints", "least_dram_words"]
