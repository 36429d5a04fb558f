"""Post-training integer quantization: batch norm folded, weights symmetric at 8 or 16 bits
(layer-wise, with the per-channel binary shift scaler, or per-channel), cross-layer equalization,
activations calibrated layer-wise, and a pure-integer runner (see docs/quantization.md)."""
from ..io.model import is_quantized  # the weight files' predicate, written with their format
from .fixedpoint import Accumulator
from .model import QuantizedModel
from .quantize import METHODS, quantize_network

__all__ = ["Accumulator", "QuantizedModel", "is_quantized", "METHODS", "quantize_network"]
