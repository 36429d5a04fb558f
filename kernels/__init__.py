"""Cython loop-nest kernels of the accelerator: Algorithm 1 of the SqueezeNext paper in every
dataflow (WS, OS SOC-MOP / MOC-SOP / MOC-MOP) and every order of the tiled loops, computing
real outputs while counting every access (execute), or counting only (count).
See docs/kernels.md. Only the emulator imports them; the engine's own compiled code (the inference
kernels, the training shift) lives beside its users in sqnxt_engine/ (functional/, train/)."""
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
