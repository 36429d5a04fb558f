"""Power-of-two threshold search (HPTQ: Habi et al. 2021, "HPTQ: Hardware-Friendly Post Training
Quantization", arXiv 2109.09113): every threshold is a power of two, chosen among candidate
powers of two by the smallest quantization error instead of taken from the largest value.

A threshold t = 2**M gives a symmetric quantizer of step t / 2**(b-1) (signed) or t / 2**b
(unsigned, a tensor >= 0 by construction), codes clipped to the tensor's code range
(schema.code_range): values beyond the largest code are clipped, the rest rounded.

  weights      one threshold per output channel (per-channel thresholds). Channel thresholds
               that are powers of two differ by powers of two: they are the shift scaler's
               per-channel shifts s_o = M_max - M_o on one layer-wise scale 2**M_max / 2**(b-1),
               so the file keeps one requantization multiplier per layer (weights.py). s_o is
               4 bits (0..15): a channel whose best M_o lies more than 15 below the layer's
               M_max gets M_max - 15.
  activations  one threshold per tensor (per-tensor), searched over every value of every
               calibration image in the float network.
With both, each layer's requantization ratio (input step x weight step / output step) is a
power of two: its multiplier is 2**(multiplier bits - 1) and the whole rescaling a shift.

Open parameters (the paper's own settings are not at hand; only its abstract and the
documentation of its authors' implementation, Sony's Model Compression Toolkit, were read):

ERROR_P = 2: the error measured is the mean of |x - Q_t(x)|**p over the tensor's values, with
    p = 2 (the mean squared error). Argument: the benchmark's figure of merit, a layer's SQNR
    10 log10(sum x**2 / sum (x - q)**2), is a function of exactly this sum, so the candidate
    of least MSE is the candidate of best SQNR for that tensor alone; and it is the documented
    default of the authors' implementation for both weights and activations
    (QuantizationConfig: activation_error_method=MSE, weights_error_method=MSE, l_p_value=2).
CANDIDATES = 8: the candidates are 2**M for M = ceil(log2 max|x|) - j, j = 0..8 (9 of them).
    j = 0 is the smallest power of two at or above the largest value (it clips by less than
    one step: the largest code is one step below t); each step down halves the step and
    clips more. Argument: at 8 bits, the last candidate, max/256 or less, is below one step of
    the unclipped quantizer (max/127): every value the unclipped quantizer rounds to a nonzero
    code but the largest is then clipped, so a further candidate can only win on a tensor
    whose values are nearly all zero at 8 bits anyway. Powers above the first clip nothing more
    and only coarsen the step, so none is tried. A tensor that is all zeros gets t = 1.
"""
from __future__ import annotations

ERROR_P = 2
CANDIDATES = 8
