# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The shift (functional.shift_groups) of a channels-last (N, H, W, C) float32 array: the training
module's forward and backward pass on the CPU (train/torch_graph.py), where torch keeps
activations channels-last because its convolutions run faster so (docs/shift.md, "Training time on
the CPU").

In channels-last memory a pixel's channels are contiguous, so a shift group (every k^2-th channel,
or a run of channels) is a strided slice, and assigning the k^2 groups one after another reads and
writes every cache line of the tensor k^2 times. Here each output pixel's C values are gathered in
one pass from the source pixels, each channel at its own fixed distance: the tensor is read once
and written once. Values are only copied, so the result equals functional.shift exactly.
"""
import numpy as np


def shift_nhwc(const float[:, :, :, ::1] x, offsets, float[:, :, :, ::1] out):
    """out[n, y, x, c] = x[n, y + dy, x + dx, c] with (dy, dx) = offsets[c], zero where that lies
    outside the image. offsets: (C, 2) integers, functional.shift_offsets (negated: the opposite
    shift, which is the shift's gradient). out must not overlap x."""
    cdef Py_ssize_t n = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
    cdef Py_ssize_t i, y, xx, ch, sy, sx, margin_y = 0, margin_x = 0
    if (out.shape[0], out.shape[1], out.shape[2], out.shape[3]) != (n, h, w, c):
        raise ValueError(f"out has shape {(out.shape[0], out.shape[1], out.shape[2], out.shape[3])}, "
                         f"x {(n, h, w, c)}")
    off = np.ascontiguousarray(offsets, dtype=np.intp)
    if off.shape != (c, 2):
        raise ValueError(f"offsets must have shape ({c}, 2), not {off.shape}")
    cdef Py_ssize_t[:, ::1] o = off
    # distance of each channel's source from the output, in elements of the flat array
    cdef Py_ssize_t[::1] delta = (off[:, 0] * w + off[:, 1]) * c
    if c:
        margin_y, margin_x = int(np.abs(off[:, 0]).max()), int(np.abs(off[:, 1]).max())
    cdef const float* src
    cdef float* dst
    if n * h * w * c == 0:
        return
    with nogil:
        for i in range(n):
            for y in range(h):
                for xx in range(w):
                    src = &x[i, y, xx, 0]
                    dst = &out[i, y, xx, 0]
                    if margin_y <= y < h - margin_y and margin_x <= xx < w - margin_x:
                        for ch in range(c):  # every source inside the image
                            dst[ch] = src[ch + delta[ch]]
                    else:
                        for ch in range(c):
                            sy = y + o[ch, 0]
                            sx = xx + o[ch, 1]
                            dst[ch] = src[ch + delta[ch]] if (0 <= sy < h and 0 <= sx < w) else 0
