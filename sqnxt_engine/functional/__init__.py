"""The operators' arithmetic on NCHW batches: NumPy code, and the compiled inference kernels
(`_infer.pyx` in this folder, sqnxt_engine.functional._infer) for the passes NumPy cannot fuse.

Kept free of graph types so that the IR, the runners and the tests can all call the same code.
The NumPy code stays as the reference: `ConvPlan(..., reference=True)` and `max_pool2d_reference`
compute the same outputs without the compiled kernels, and the tests compare the two.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from . import _infer

NO_CLAMP = (-np.inf, np.inf)


def out_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int,
             dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output extent of a window sweep. In ceil mode the last window must start inside the
    input or its leading padding (the PyTorch and Caffe rule)."""
    span = size + pad_lo + pad_hi - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    n = -(-span // stride) + 1
    if (n - 1) * stride >= size + pad_lo:
        n -= 1
    return n


def _pad(x: np.ndarray, top: int, bottom: int, left: int, right: int, value: float) -> np.ndarray:
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    # negative padding (crop) never occurs: callers pass non-negative pads
    out[:, :, top:top + h, left:left + w] = x
    return out


def _windows(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
             ho: int, wo: int):
    """Yield (i, j, view) for every kernel tap: view[n, c, y, x] = xp[n, c, y*sh + i*dh, x*sw + j*dw]."""
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            yield i, j, xp[:, :, r0:r0 + (ho - 1) * sh + 1:sh, c0:c0 + (wo - 1) * sw + 1:sw]


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
           stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """2-D convolution (cross-correlation), NCHW input, OIHW weight, padding (top, bottom, left, right)."""
    return ConvPlan(weight, bias, stride, padding, dilation, groups, x.dtype)(x)


def _kernel_dtype(dtype) -> bool:
    return np.dtype(dtype) in (np.float32, np.float64)


_workspace = threading.local()


def _work(slot: int, shape, dtype) -> np.ndarray:
    """A scratch array of `shape` and `dtype` from this thread's reusable buffer `slot`, grown as
    needed and kept: a temporary of a few hundred KB allocated afresh per call is page-faulted in
    afresh each time (glibc hands freed memory above its trim threshold back to the system), which
    made Winograd's 1x3 8->16 layer at 55x55 take 194 us instead of 42 (MALLOC_TRIM_THRESHOLD_
    raised, the same 42). Only for what does not outlive the call; one buffer per thread, because
    the Runner's batch split runs the same plans side by side."""
    try:
        bufs = _workspace.bufs
    except AttributeError:
        bufs = _workspace.bufs = {}
    key = (shape, dtype)
    buf, last, view = bufs.get(slot, (None, None, None))
    if last == key:
        return view
    nbytes = math.prod(shape) * dtype.itemsize
    if buf is None or buf.nbytes < nbytes:
        buf = np.empty(nbytes, np.uint8)
    view = buf[:nbytes].view(dtype).reshape(shape)
    bufs[slot] = (buf, key, view)
    return view


# Winograd F(4,3) (Lavin and Gray, arXiv 1509.09308): 4 outputs of a 3-tap correlation from 6
# inputs d and the taps g as A^T [(G g) * (B^T d)], 6 multiplies instead of 12. B^T and A^T are
# applied by the compiled transforms (_infer_simd.h); G here, once per plan, in float64.
WINOGRAD_G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                       [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])


class ConvPlan:
    """A convolution prepared once for its weights: the scheme that moves the least memory is
    chosen, and the weights are laid out for it, so a forward pass does only the arithmetic.

    Schemes: 1x1 kernels are one matrix product; depthwise kernels accumulate one scaled shifted
    view per tap; other stride-1 kernels (SqueezeNext's 1x3 and 3x1) gather their taps from the
    input flattened with its padded row length `wp` (tap (i, j) is then the contiguous run starting
    at i*dh*wp + j*dw, so the gather is kh*kw block copies) and do one matrix product, computing
    wp - wo spare columns per row that are cropped; strided kernels gather the taps through one
    strided view (im2col) and do one matrix product per group. On the compiled path, 1x3 and 3x1
    kernels (stride 1, one group) are "winograd": Winograd's F(4,3) where `winograd_wins` says it
    saves enough multiplies on the input's size (else flat): the input transform (compiled) makes
    6 matrices of C rows, one product each with the transformed weights (6, O, C), so half the
    multiplies of the flat product, and the output transform (compiled) makes the outputs with the
    bias and clamp. winograd=True / False forces it on / off (the integer runner's exact sums:
    off). Its float32 error is a few times the direct product's (docs/inference-speed.md).
    Small 1x1 kernels (`_direct_pointwise`'s rule) skip BLAS: the compiled direct kernel computes
    them with the bias and clamp (direct=True / False forces it on / off).
    Kernels over at most PHASED_MAX_CHANNELS input channels (stems: an RGB or grey image), one
    group, not 1x1, are "phased" on the compiled path: no gathered columns and no product, the
    compiled kernel (_infer.phased_conv) sums every tap straight from the input split into phase
    planes, a block of output channels at a time, with the bias and clamp (phased=True / False
    forces it on / off).

    `clamp` = (lo, hi) fuses an activation that is a clamp (ReLU (0, inf), ReLU6 (0, 6)) into the
    plan. By default (float32 and float64) the compiled kernels do the passes around the matrix
    products: bias, clamp and the flat scheme's crop in one pass over each product's output, and
    depthwise kernels directly. reference=True runs the NumPy code instead.
    """

    REFERENCE = False  # True: plans built from now on run the NumPy path (benchmarks' profile)

    def __init__(self, weight, bias, stride, padding, dilation, groups, dtype, clamp=None,
                 reference: bool = False, winograd: bool | None = None, direct: bool | None = None,
                 phased: bool | None = None, interleave: bool | None = None):
        self.dtype = np.dtype(dtype)
        self.clamp = tuple(float(v) for v in clamp) if clamp is not None else None
        self.reference = reference or self.REFERENCE or not _kernel_dtype(self.dtype)
        self.o, self.cg, self.kh, self.kw = weight.shape
        self.stride, self.padding, self.dilation, self.groups = tuple(stride), tuple(padding), tuple(dilation), groups
        og = self.o // groups
        w = np.asarray(weight, dtype=self.dtype)
        self.interleave = interleave  # a depthwise kernel's form: None, the rule's (per size)
        self.direct = False  # a 1x1 kernel that may run on the direct kernel (per input size)
        forced_phased, phased = bool(phased), self._phased(phased, winograd)
        if self.kh == self.kw == 1:
            self.scheme = "pointwise"
            self.direct = self._direct_pointwise(direct)
        elif direct:
            raise ValueError("the direct kernel runs pointwise (1x1) convolutions only")
        elif self.cg == 1 and og == 1 and not forced_phased:
            self.scheme = "depthwise"
            self.taps = np.ascontiguousarray(w.reshape(self.o, self.kh * self.kw).T)[:, None, :, None, None]
            self.planes = np.ascontiguousarray(w.reshape(self.o, self.kh, self.kw))
        elif phased:
            self.scheme = "phased"
            self.phased_w = _infer.phased_weights(w, self.dtype)
        elif self.stride == (1, 1):
            self.scheme = "winograd" if self._winograd(winograd) else "flat"
        else:
            self.scheme = "im2col"
        self.wmat = np.ascontiguousarray(w.reshape(groups, og, self.cg * self.kh * self.kw))
        if groups == 1:
            self.wmat = self.wmat[0]
        if self.scheme == "winograd":  # U[xi] = (G g)[xi] for every (o, c): (6, O, C)
            taps = np.asarray(weight, dtype=np.float64).reshape(self.o, self.cg, 3)
            self.wino = np.ascontiguousarray(np.einsum("xk,ock->xoc", WINOGRAD_G, taps), dtype=self.dtype)
        self.bias = None if bias is None else np.asarray(bias, dtype=self.dtype).reshape(1, self.o, 1, 1)
        self.bias1 = None if bias is None else np.ascontiguousarray(self.bias.reshape(self.o))
        # Looked up once, not per call: on 28x28 inputs a forward pass is ~100 small convolutions,
        # and the per-call Python work is a measurable part of each.
        self._clamp_args = self.clamp or NO_CLAMP
        self._forward = getattr(self, ("_" if self.reference else "_fast_") + self.scheme)
        self._out_hw = {}
        self._wino_use = {}  # (h, w): whether the winograd scheme uses Winograd on that input size
        self._direct_use = {}  # (n, h, w): whether a pointwise plan uses the direct kernel on that size

    # The phased scheme's rule: layers of at most this many input channels (per group, one group).
    PHASED_MAX_CHANNELS = 4
    PHASED = True  # False: plans built from now on gather and multiply their stems (benchmarks' baseline)

    def _phased(self, choice, winograd) -> bool:
        """Whether a kernel that is neither 1x1 nor depthwise is "phased": `choice` if given (True
        where it does not apply, or with winograd=True, is a ValueError), else with at most
        PHASED_MAX_CHANNELS input channels unless winograd=True.

        Multiplies: the same as the product's (plus wq - wo spare columns a row, and the band's run
        padded to whole vector blocks: 3-6% on the stems). Memory: the phase planes are the input,
        zero-bordered, once; im2col writes and the product reads C*kh*kw words per output pixel
        (147 on a 7x7 RGB stem, 7 MB on a 224x224 image), then a second pass adds the bias. With C
        this small the taps of one stretch of outputs (C*kh*kw vectors) stay in L1 while every
        block of output channels is summed; with many channels they would not, and the product's
        blocking wins, so the rule stops at a handful. Measured in docs/inference-speed.md."""
        applies = (not self.reference and self.groups == 1 and (self.kh, self.kw) != (1, 1)
                   and self.cg <= self.PHASED_MAX_CHANNELS)
        if choice and not applies:
            raise ValueError("the phased kernel runs convolutions of at most "
                             f"{self.PHASED_MAX_CHANNELS} input channels, one group, not 1x1, "
                             "on the compiled float path")
        if choice and winograd:
            raise ValueError("a plan is phased or winograd, not both")
        return bool(choice) if choice is not None else applies and self.PHASED and not winograd

    def _winograd(self, choice):
        """Whether the plan has the "winograd" scheme: `choice` if given (True where Winograd does
        not apply is a ValueError), else where it applies (WINOGRAD = True; per input size, the
        rule in winograd_wins decides each call)."""
        applies = (not self.reference and self.groups == 1 and self.dilation == (1, 1)
                   and (self.kh, self.kw) in ((1, 3), (3, 1)))
        if choice and not applies:
            raise ValueError("Winograd F(4,3) runs 1x3 and 3x1 kernels at stride 1, dilation 1, "
                             "one group, on the compiled float path")
        self._wino_forced = choice is not None
        return bool(choice) if choice is not None else applies and self.WINOGRAD

    # The direct pointwise kernel's rule (direct_pointwise_wins): planes of at least
    # POINTWISE_DIRECT_PIXELS pixels whose input is at most POINTWISE_DIRECT_BYTES, or layers of at
    # most POINTWISE_DIRECT_MAX input and output channels.
    POINTWISE_DIRECT_PIXELS = 784
    POINTWISE_DIRECT_BYTES = 256 * 1024
    POINTWISE_DIRECT_MAX = 32
    # Off by default: a plan built while True uses the direct kernel where the rule says so. The
    # kernel gained 0.67-1.03x on the layers the rule picks (docs/inference-speed.md), but the
    # compiled pass does not mirror it, so each such layer leaves the native pass for Python: the
    # Fashion-MNIST model at batch 1 took 1.57 ms with it against 1.27 without (best of 5 x 50
    # passes, one thread, load about 10; /tmp script at the merge, not a benchmark).
    DIRECT = False

    def _direct_pointwise(self, choice) -> bool:
        """Whether a 1x1 kernel may run on the direct kernel (_infer.pointwise): `choice` if given
        (True where it does not apply is a ValueError; True forces it on every input size), else
        where it applies, direct_pointwise_wins deciding per input size."""
        applies = (not self.reference and self.groups == 1 and self.stride == (1, 1)
                   and self.padding == (0, 0, 0, 0))
        if choice and not applies:
            raise ValueError("the direct kernel runs 1x1 convolutions at stride 1, unpadded, one group, "
                             "on the compiled float path")
        self._direct_forced = bool(choice)
        return bool(choice) if choice is not None else applies and self.DIRECT

    def direct_pointwise_wins(self, h: int, w: int, n: int = 1) -> bool:
        """The plan rule for a 1x1 kernel on n images of h x w: the direct kernel instead of a
        BLAS product with its epilogue after it for a single image (n = 1) when the plane has at
        least POINTWISE_DIRECT_PIXELS pixels and the input at most POINTWISE_DIRECT_BYTES, or the
        layer at most POINTWISE_DIRECT_MAX input and output channels.

        Multiplies: the same. Memory: the direct kernel holds 4 output channels x 3 vectors of
        pixels in registers while it adds every input channel, and applies the bias and clamp
        while the block is in L1; it packs nothing, but reads the whole input once per 4 output
        channels. BLAS packs both operands and blocks them for the caches, runs its kernel at
        close to this core's peak (34-51 GMAC/s on every 1x1 layer of sqnxt23v5_w1 and
        EfficientNet-Lite0), and leaves the output to a second pass, the epilogue. On planes of
        28x28 and more the output is past L1 and that second pass is what the direct kernel
        saves, while its O/4 reads of an input of at most 256 KB stay in L2; inputs of 0.45-1.8 MB
        (read from L3 O/4 times) made it up to 1.3x slower with the AVX2 clone. On smaller planes
        BLAS's blocking wins (up to 1.6x on 14x14 and 7x7 with 64 to 1152 channels; 2.3-8.6x on
        2x2, where the vector blocks do not fill), except on the smallest layers, where the call
        and the packing cost more than the product (at most 32 channels in and out). On the
        layers the rule picks in sqnxt23v5_w1, EfficientNet-Lite0 and the Fashion-MNIST model,
        both clones: 0.78-1.03x at batch 1 (docs/inference-speed.md, `benchmarks/conv_schemes.py
        --pointwise MODEL`). With several images the same layers were mixed at batch 16
        (0.81-1.12x) and lost at batch 256 (1.16-1.64x, `--batch N`): the rule keeps BLAS there."""
        if n != 1:
            return False
        if self.cg <= self.POINTWISE_DIRECT_MAX and self.o <= self.POINTWISE_DIRECT_MAX:
            return True
        return (h * w >= self.POINTWISE_DIRECT_PIXELS
                and self.cg * h * w * self.dtype.itemsize <= self.POINTWISE_DIRECT_BYTES)

    WINOGRAD = True  # False: plans built from now on keep 1x3 / 3x1 kernels flat (benchmarks' baseline)
    # The multiply-adds per image Winograd must save to be used (winograd_wins).
    WINOGRAD_MIN_SAVED = 300_000

    def winograd_wins(self, h: int, w: int) -> bool:
        """The plan rule for a 1x3 / 3x1 kernel on an h x w input: Winograd F(4,3) when it saves at
        least WINOGRAD_MIN_SAVED multiply-adds per image.

        Multiplies: the flat product does 3 per output channel, input channel and column, over ho
        rows of the padded row length (wp - wo spare columns per row for a 1x3); F(4,3) does 6 per
        tile of 4 outputs, tiles whole (a 3x1's last tile row may overhang the plane: 4 rows
        computed for the 2 of a 2x2 plane, so nothing saved there). Saved: C*O*(3*flat - 6*tiles).
        Memory: the transforms write and read 6/4 (C + O) words per output (the products' inputs
        and outputs), the flat gather 3C; on planes in cache both are cheap beside the products.
        The fixed cost is two compiled passes and a stack of six products, about 4 us per call on
        the development machine, the time of about 200,000 multiply-adds at its BLAS rate; the
        bound leaves a margin for the products of depth C instead of 3C running further below
        peak. Measured (docs/inference-speed.md): every 1x3 / 3x1 layer of sqnxt23v5_w1 saves
        0.60M-1.2M and runs in 0.26-0.71x the flat scheme's time at batch 1 and 16; the
        Fashion-MNIST model's save 0-197K (planes of 14x14 down to 2x2, 8-128 channels) and
        would run in 0.74-1.37x at batch 1, 0.36-3.2x at batch 256 (its 3x1 layers lose at
        both): they stay flat."""
        _, wp, cols = self._wino_plane(h, w)
        ho, _ = self.out_hw(h, w)
        saved = self.cg * self.o * (3 * ho * wp - 6 * cols)
        return saved >= self.WINOGRAD_MIN_SAVED

    def _wino_plane(self, h, w):
        """(hp, wp, columns): the padded plane Winograd's transforms work on for an h x w input,
        and its tile columns per image (_infer.winograd_tiles)."""
        t, b, l, r = self.padding
        hp, wp = h + t + b, w + l + r
        return hp, wp, _infer.winograd_tiles(self.kh, hp, wp)[1]

    def out_hw(self, h, w):
        hw = self._out_hw.get((h, w))
        if hw is None:
            t, b, l, r = self.padding
            hw = self._out_hw[h, w] = (out_size(h, self.kh, self.stride[0], t, b, self.dilation[0]),
                                       out_size(w, self.kw, self.stride[1], l, r, self.dilation[1]))
        return hw

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(self.dtype, copy=False)
        n, c, h, w = x.shape
        ho, wo = self.out_hw(h, w)
        if not self.reference:
            return self._forward(np.ascontiguousarray(x), n, c, ho, wo)
        y = self._forward(x, n, c, ho, wo)
        if self.bias is not None:
            y += self.bias
        if self.clamp is not None:
            np.clip(y, *self.clamp, out=y)
        return y

    # --- a compiled plan's steps (runtime.runner.CompiledPass): this plan's compiled path ---

    def native_steps(self, plan, x: np.ndarray, y: np.ndarray, temp) -> bool:
        """Add to `plan` (an _infer.Plan) the native steps that compute y = self(x) into the given
        contiguous buffers: the same operations in the same order as the compiled path below (so
        y is that path's bit for bit), i.e. the gathers and epilogues of _infer and np.matmul's
        own BLAS calls (matmul_steps). temp(shape): a scratch array that lives for this step only.
        False (the plan is then left for the caller to discard) for the NumPy reference path and
        for products NumPy would not give to BLAS: the runner calls this plan from Python there."""
        # each scheme's steps mirror its _fast_ method below: a scheme or forward pass they do
        # not mirror is left to Python (change the two together)
        mirrored = {"pointwise": ConvPlan._fast_pointwise, "depthwise": ConvPlan._fast_depthwise,
                    "flat": ConvPlan._fast_flat, "im2col": ConvPlan._fast_im2col,
                    "winograd": ConvPlan._fast_winograd, "phased": ConvPlan._fast_phased}
        if self.reference or getattr(self._forward, "__func__", None) is not mirrored.get(self.scheme):
            return False
        n, c, h, w = x.shape
        ho, wo = self.out_hw(h, w)
        # not mirrored yet, so left to Python: the direct 1x1 kernel
        if self.scheme == "pointwise" and self._uses_direct(n, ho, wo):
            return False
        o = self.o
        lo, hi = self._clamp_args
        t, b, l, r = self.padding
        # the winograd scheme on a size the rule leaves flat is the flat scheme's steps
        scheme = self.scheme
        if scheme == "winograd" and not self._uses_winograd(h, w):
            scheme = "flat"
        if scheme == "winograd":
            hp, wp, cols = self._wino_plane(h, w)
            v, m = temp((6, c, n * cols)), temp((6, o, n * cols))
            plan.add(_infer.OP_WINO_IN, (x, v), (n * c, n, c, h, w, self.kh, t, l, hp, wp))
            if not matmul_steps(plan, self.wino, v[None], m[None]):
                return False
            plan.add(_infer.OP_WINO_OUT, (m, y, self.bias1), (n * o, n, o, ho, wo, self.kh, wp), lo, hi)
            return True
        if scheme == "phased":
            plan.add(_infer.OP_PHASED, (x, self.phased_w, self.bias1, y), (n * ho,) + self._phased_ints(x), lo, hi)
            return True
        if scheme == "depthwise":
            plan.add(_infer.OP_DEPTHWISE, (x, self.planes, self.bias1, y),
                     (n * c, c, h, w, self.kh, self.kw, ho, wo, *self.stride, *self.dilation, t, l,
                      self._interleaves(ho, wo)), lo, hi)
            return True
        epilogue = (_infer.OP_BIAS_CLAMP, (y, self.bias1), (n * o, o, ho * wo))
        taps = (self.kh, self.kw)
        if scheme == "flat":
            wp = w + l + r
            cols = temp((n, c * self.kh * self.kw, ho * wp))
            plan.add(_infer.OP_FLAT, (x, cols), (n * c, h, w, *taps, *self.dilation, t, l, wp, ho * wp))
            if wp == wo:
                return self._product_steps(plan, cols, y, n, epilogue)
            prod = temp((n, o, ho * wp))
            crop = (_infer.OP_CROP, (prod, y, self.bias1), (n * o, o, ho, wo, wp))
            return self._product_steps(plan, cols, prod, n, crop)
        if scheme == "pointwise" and self.padding == (0, 0, 0, 0) and self.stride == (1, 1):
            return self._product_steps(plan, x.reshape(n, c, h * w), y, n, epilogue)
        # im2col, and a padded or strided 1x1 kernel (its one tap gathered the same way), in bands
        # of output rows: a band's product is copied into y unless one band is all of y; the
        # bands take turns in the same two scratch arrays, as the compiled path's do
        rows = ho if scheme == "pointwise" else self._band_rows(c, ho, wo)
        k = c * self.kh * self.kw
        cols_flat = temp((n * k * rows * wo,))
        prod_flat = temp((n * o * rows * wo,)) if rows < ho else None
        for r0 in range(0, ho, rows):
            band = min(rows, ho - r0)
            cols = cols_flat[: n * k * band * wo].reshape(n, k, band * wo)
            plan.add(_infer.OP_IM2COL, (x, cols), (n * c, h, w, *taps, *self.stride, *self.dilation,
                                                   t, l, r0, band, wo))
            if band == ho:
                return self._product_steps(plan, cols, y, n, epilogue)
            prod = prod_flat[: n * o * band * wo].reshape(n, o, band * wo)
            if not self._product_steps(plan, cols, prod, n, None):
                return False
            plan.add(_infer.OP_COPY, (prod, (y, r0 * wo)), (n * o, band * wo, band * wo, ho * wo))
        plan.add(*epilogue, lo, hi)
        return True

    def pools_natively(self) -> bool:
        """Whether native_pooled_steps can add this plan's steps with a max pool fused in: the
        phased scheme, its compiled path in use."""
        return not self.reference and getattr(self._forward, "__func__", None) is ConvPlan._fast_phased

    def native_pooled_steps(self, plan, x: np.ndarray, y: np.ndarray, kernel, stride, top: int,
                            left: int) -> None:
        """Add to `plan` the step that computes y = max_pool2d(self(x), kernel, stride, padding)
        bit for bit (top and left: the pool's padding; y's shape: its output, ceil mode's
        included) without self(x): OP_PHASED_POOL, the phased scheme's rows pooled band by band
        in cache (_infer.phased_pool). For pools_natively() plans only."""
        plan.add(_infer.OP_PHASED_POOL, (x, self.phased_w, self.bias1, y),
                 (x.shape[0] * y.shape[2],) + self._phased_ints(x) + tuple(y.shape[2:]) + tuple(kernel) + tuple(stride)
                 + (top, left), *self._clamp_args)

    def _phased_ints(self, x) -> tuple:
        """OP_PHASED's integers after the first (the rows it splits): the convolution's geometry."""
        _, c, h, w = x.shape
        t, _, l, _ = self.padding
        return (c, h, w, self.kh, self.kw, *self.out_hw(h, w), *self.stride, *self.dilation, t, l, self.o)

    def _product_steps(self, plan, cols, out, n, epilogue) -> bool:
        """The product of the weights and gathered columns (n, C*kh*kw, P) into out (n, O, P),
        then `epilogue` (kind, arrays, integers) with this plan's clamp. At one image without
        groups the threads' shares of the product (rows) and of the epilogue (planes) are the same
        channels, so the threads go on from one to the other without waiting."""
        g, p = self.groups, cols.shape[-1]
        cols = cols.reshape((n, -1, p) if g == 1 else (n, g, -1, p))
        out = out.reshape((n, self.o, -1) if g == 1 else (n, g, self.o // g, -1))
        if not matmul_steps(plan, self.wmat, cols, out):
            return False
        if epilogue is not None:
            plan.add(*epilogue, *self._clamp_args, barrier=True)
            if n == 1 and g == 1:
                plan.set_barrier(len(plan) - 2, False)
        return True

    def _band_rows(self, c, ho, wo):
        """Output rows per band of the im2col scheme: about BAND_BYTES of gathered columns."""
        return max(1, min(ho, self.BAND_BYTES // max(1, c * self.kh * self.kw * wo * self.dtype.itemsize)))

    # --- compiled path: the same products, the passes around them in _infer ---

    def _uses_direct(self, n, ho, wo) -> bool:
        """Whether this pointwise plan computes n images of ho x wo with the direct kernel (the
        rule's answer, kept per size)."""
        if not self.direct:
            return False
        use = self._direct_use.get((n, ho, wo))
        if use is None:
            use = self._direct_use[n, ho, wo] = self._direct_forced or self.direct_pointwise_wins(ho, wo, n)
        return use

    def _fast_pointwise(self, x, n, c, ho, wo):
        if self._uses_direct(n, ho, wo):
            y = np.empty((n, self.o, ho, wo), dtype=self.dtype)
            _infer.pointwise(x.reshape(n, c, ho * wo), self.wmat, self.bias1, y.reshape(n, self.o, ho * wo),
                             *self._clamp_args)
            return y
        y = self._pointwise(x, n, c, ho, wo)
        _infer.bias_clamp(y.reshape(n, self.o, ho * wo), self.bias1, *self._clamp_args)
        return y

    def _interleaves(self, ho, wo) -> bool:
        """Whether this depthwise plan runs the interleaved form on an ho x wo output: `interleave`
        if given, else depthwise_interleaves's rule."""
        if self.interleave is not None:
            return self.interleave
        return self.depthwise_interleaves(ho, wo)

    # The interleaved depthwise form's rule: strided, or output rows at most this wide.
    DEPTHWISE_INTERLEAVE_MAX_WIDTH = 28

    def depthwise_interleaves(self, ho, wo) -> bool:
        """The plan rule for a depthwise kernel: the interleaved form (_infer.depthwise, channels in
        the vector lanes) at a stride above 1 or where the output rows are at most
        DEPTHWISE_INTERLEAVE_MAX_WIDTH wide, the phase-plane form elsewhere.

        Multiplies: the phase-plane form computes wq - wo spare outputs a row ((kw-1)*dw // sw: 4 of
        11 on a 7x7 plane with a 5x5 kernel) and pads each plane's run to whole 32-float blocks (96
        for 77); the interleaved form computes the outputs only. Memory and calls: the phase-plane
        form copies each plane into sh*sw phase planes with a call per row and phase, and each
        output row back with two calls; the interleaved form moves every input and output through
        4x4 shuffle transposes, once, with no call per row. Measured on EfficientNet-Lite0's
        layers (docs/inference-speed.md, min of 30, one thread; AVX-512 / AVX2 / baseline clones):
        interleaved 0.23-0.65x at stride 2, 0.36-0.92x on 28x28 outputs and smaller, 0.82-1.11x on
        56x56 and 112x112 at stride 1, where the phase-plane form stays."""
        return self.stride != (1, 1) or wo <= self.DEPTHWISE_INTERLEAVE_MAX_WIDTH

    def _fast_phased(self, x, n, c, ho, wo):
        y = np.empty((n, self.o, ho, wo), dtype=self.dtype)
        t, _, l, _ = self.padding
        _infer.phased_conv(x, self.phased_w, self.bias1, y, self.kh, self.kw, *self.stride, *self.dilation,
                           t, l, *self._clamp_args)
        return y

    def _fast_depthwise(self, x, n, c, ho, wo):
        y = np.empty((n, self.o, ho, wo), dtype=self.dtype)
        t, _, l, _ = self.padding
        _infer.depthwise(x, self.planes, self.bias1, y, *self.stride, *self.dilation, t, l,
                         *self._clamp_args, self._interleaves(ho, wo))
        return y

    def _fast_flat(self, x, n, c, ho, wo):
        y, wp = self._flat_product(x, n, c, ho, _infer.flat_columns)
        if wp == wo:
            _infer.bias_clamp(y.reshape(n, self.o, ho * wo), self.bias1, *self._clamp_args)
            return y
        out = np.empty((n, self.o, ho, wo), dtype=self.dtype)
        _infer.bias_clamp_crop(y, out, self.bias1, *self._clamp_args)
        return out

    def _uses_winograd(self, h, w) -> bool:
        """Whether this winograd-scheme plan uses Winograd on an h x w input (else the flat
        scheme: the rule's answer, kept per size)."""
        use = self._wino_use.get((h, w))
        if use is None:
            use = self._wino_use[h, w] = self._wino_forced or self.winograd_wins(h, w)
        return use

    def _fast_winograd(self, x, n, c, ho, wo):
        if not self._uses_winograd(x.shape[2], x.shape[3]):
            return self._fast_flat(x, n, c, ho, wo)
        t, _, l, _ = self.padding
        hp, wp, cols = self._wino_plane(x.shape[2], x.shape[3])
        v = _work(0, (6, c, n * cols), self.dtype)
        _infer.winograd_input(x, v, self.kh, t, l, hp, wp)
        m = np.matmul(self.wino, v, out=_work(1, (6, self.o, n * cols), self.dtype))
        y = np.empty((n, self.o, ho, wo), dtype=self.dtype)
        _infer.winograd_output(m, y, self.bias1, *self._clamp_args, self.kh, wp)
        return y

    def _fast_im2col(self, x, n, c, ho, wo):
        # The gather stays NumPy's: a compiled gather by bounds with each band's epilogue done in
        # cache measured the same (stem 3.57 vs 3.60 ms, best of 60); only the epilogue is fused.
        y = self._im2col(x, n, c, ho, wo)
        _infer.bias_clamp(y.reshape(n, self.o, ho * wo), self.bias1, *self._clamp_args)
        return y

    def _matmul(self, cols, n, ho, wo):
        """The weight matrix times gathered columns (n, groups, K, ho*wo) or (n, K, ho*wo)."""
        return np.matmul(self.wmat, cols).reshape(n, self.o, ho, wo)

    def _pointwise(self, x, n, c, ho, wo):
        t, b, l, r = self.padding
        sh, sw = self.stride
        if (t, b, l, r) != (0, 0, 0, 0):
            x = _pad(x, t, b, l, r, 0.0)
        if (sh, sw) != (1, 1):
            x = x[:, :, : (ho - 1) * sh + 1: sh, : (wo - 1) * sw + 1: sw]
        cols = x.reshape(n, c, ho * wo) if self.groups == 1 else x.reshape(n, self.groups, self.cg, ho * wo)
        return self._matmul(cols, n, ho, wo)

    def _depthwise(self, x, n, c, ho, wo):
        xp = _pad(x, *self.padding, 0.0)
        y = np.zeros((n, self.o, ho, wo), dtype=self.dtype)
        tmp = np.empty_like(y)
        (sh, sw), (dh, dw) = self.stride, self.dilation
        for i, j, view in _windows(xp, self.kh, self.kw, sh, sw, dh, dw, ho, wo):
            y += np.multiply(view, self.taps[i * self.kw + j], out=tmp)
        return y

    def _flat(self, x, n, c, ho, wo):
        y, wp = self._flat_product(x, n, c, ho)
        return y if wp == wo else np.ascontiguousarray(y[:, :, :, :wo])

    def _flat_product(self, x, n, c, ho, gather=None):
        """The product over the padded row length wp, spare columns included: (y, wp). gather:
        the compiled gather (_infer.flat_columns), else NumPy's padded copy and block copies."""
        t, b, l, r = self.padding
        dh, dw = self.dilation
        wp = x.shape[3] + l + r
        run = ho * wp
        cols = np.empty((n, c, self.kh * self.kw, run), dtype=self.dtype)
        if gather is not None:
            gather(x, cols, self.kh, self.kw, dh, dw, t, l, wp)
        else:
            spare = 1 if self.kw > 1 else 0  # the last tap's run overhangs the last row by (kw-1)*dw
            flat = _pad(x, t, b + spare, l, r, 0.0).reshape(n, c, -1)
            for i in range(self.kh):
                for j in range(self.kw):
                    start = i * dh * wp + j * dw
                    cols[:, :, i * self.kw + j] = flat[:, :, start:start + run]
        cols = cols.reshape((n, -1, run) if self.groups == 1 else (n, self.groups, -1, run))
        return self._matmul(cols, n, ho, wp), wp

    # Gathered columns above this many bytes are built and multiplied in bands of output rows, so
    # that each band's columns are still in cache when the matrix product reads them.
    BAND_BYTES = 1 << 20

    def _im2col(self, x, n, c, ho, wo):
        xp = _pad(x, *self.padding, 0.0)
        s = xp.strides
        (sh, sw), (dh, dw) = self.stride, self.dilation
        k = self.cg * self.kh * self.kw
        rows = self._band_rows(c, ho, wo)
        y = np.empty((n, self.o, ho, wo), dtype=self.dtype)
        for r0 in range(0, ho, rows):
            r = min(rows, ho - r0)
            band = xp[:, :, r0 * sh:]
            taps = np.lib.stride_tricks.as_strided(
                band, (n, c, self.kh, self.kw, r, wo), (s[0], s[1], s[2] * dh, s[3] * dw, s[2] * sh, s[3] * sw),
                writeable=False)
            shape = (n, -1, r * wo) if self.groups == 1 else (n, self.groups, k, r * wo)
            y[:, :, r0:r0 + r] = self._matmul(taps.reshape(shape), n, r, wo)  # the reshape: one copy
        return y


def matmul_steps(plan, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
    """Add to `plan` (an _infer.Plan) the BLAS calls np.matmul(a, b, out=out) makes, with the
    arguments it passes them, so that the plan's products are NumPy's bit for bit. a: (M, K) or
    (G, M, K); b: (N, K, P) or (N, G, K, P); out: b's leading axes, then (M, P); all C-contiguous.
    NumPy runs each product as a gemm when M, K and P all exceed 1, and a gemv (column-major,
    transposed) when P is 1 alone; other cases (a dot, or its own loop) are not added: False."""
    m, k = a.shape[-2:]
    p = b.shape[-1]
    if min(m, k) < 2 or p < 1 or not all(v.flags.c_contiguous for v in (a, b, out)):
        return False
    groups = a.shape[0] if a.ndim == 3 else 1
    images = b.shape[0]
    if p == 1:
        kind, ints = _infer.OP_GEMV, (k, m, k, 1, 1)
    else:
        kind, ints = _infer.OP_GEMM, (_infer.NO_TRANS, _infer.NO_TRANS, m, p, k, k, p, p)
    a_step, b_step, out_step = m * k, k * p, m * p
    if groups == 1:   # one step over the images: a is the same matrix for each
        plan.add(kind, (a, b, out), ints + (images, 0, b_step, out_step))
    else:             # one step per image over its groups
        for i in range(images):
            plan.add(kind, (a, (b, i * groups * b_step), (out, i * groups * out_step)),
                     ints + (groups, a_step, b_step, out_step))
    return True


def linear_steps(plan, x: np.ndarray, weight: np.ndarray, out: np.ndarray) -> bool:
    """Add to `plan` the BLAS call np.matmul(x, weight.T, out=out) makes (a fully connected
    layer's product), so that the plan's is NumPy's bit for bit. x: (N, K), weight: (M, K), out:
    (N, M); all C-contiguous. One image is NumPy's vector-matrix case, the gemv matmul_steps adds
    for weight @ x; several are a row-major gemm of x by the transposed weight; other cases are
    not added: False."""
    (n, k), m = x.shape, weight.shape[0]
    if not all(v.flags.c_contiguous for v in (x, weight, out)):
        return False
    if n == 1:
        return matmul_steps(plan, weight, x.reshape(1, k, 1), out.reshape(1, m, 1))
    if min(n, m, k) < 2:
        return False
    plan.add(_infer.OP_GEMM, (x, weight, out), (_infer.NO_TRANS, _infer.TRANS, n, m, k, k, k, m, 1, 0, 0, 0))
    return True


def _pool_geometry(x, kernel, stride, padding, ceil_mode):
    kh, kw = kernel
    sh, sw = stride
    top, bottom, left, right = padding
    h, w = x.shape[2:]
    ho = out_size(h, kh, sh, top, bottom, 1, ceil_mode)
    wo = out_size(w, kw, sw, left, right, 1, ceil_mode)
    # ceil mode: windows may overhang the bottom/right beyond the explicit padding
    extra_b = max(0, (ho - 1) * sh + kh - (h + top + bottom))
    extra_r = max(0, (wo - 1) * sw + kw - (w + left + right))
    return ho, wo, extra_b, extra_r


def max_pool2d(x, kernel, stride, padding=(0, 0, 0, 0), ceil_mode=False):
    """Max pool; windows overhanging the input (padding, ceil mode) are clipped to it. Compiled
    for float32 and float64 (one pass, each window read once); max_pool2d_reference otherwise."""
    if not (_kernel_dtype(x.dtype) and x.ndim == 4):
        return max_pool2d_reference(x, kernel, stride, padding, ceil_mode)
    ho, wo, _, _ = _pool_geometry(x, kernel, stride, padding, ceil_mode)
    out = np.empty(x.shape[:2] + (ho, wo), dtype=x.dtype)
    _infer.max_pool(np.ascontiguousarray(x), out, *kernel, *stride, padding[0], padding[2])
    return out


def max_pool2d_reference(x, kernel, stride, padding=(0, 0, 0, 0), ceil_mode=False):
    """Max pool in NumPy, separably: the max over a window is the max over its rows of the max over its
    columns, so a kh x kw window costs kw + kh comparisons per output instead of kh * kw.
    A ceil-mode window overhanging the input is clipped to it (no padded copy is made)."""
    ho, wo, _, _ = _pool_geometry(x, kernel, stride, padding, ceil_mode)
    if any(padding):
        top, bottom, left, right = padding
        x = _pad(x, top, bottom, left, right, -np.inf)
    (kh, kw), (sh, sw) = kernel, stride
    cols = _strided_max(x, kw, sw, wo, axis=3)
    return _strided_max(cols, kh, sh, ho, axis=2)


def _strided_max(x, k, s, n, axis):
    """out[..., o, ...] = max over t < k of x[..., o*s + t, ...] along `axis`, for o < n; taps past
    the end of the axis are left out (the first tap always exists)."""
    def taps(t):
        index = [slice(None)] * x.ndim
        index[axis] = slice(t, t + (n - 1) * s + 1, s)
        return x[tuple(index)]
    out = taps(0).copy()
    for t in range(1, k):
        view = taps(t)
        m = view.shape[axis]
        if m == n:
            np.maximum(out, view, out=out)
        elif m > 0:
            head = [slice(None)] * x.ndim
            head[axis] = slice(0, m)
            np.maximum(out[tuple(head)], view, out=out[tuple(head)])
    return out


def global_avg_pool(x):
    """The mean of each plane of x (N, C, H, W), as (N, C, 1, 1). Float32 and float64 through
    _infer.plane_means (summed in double, one summation order for the step-by-step and the
    compiled pass); NumPy's mean otherwise."""
    if not (_kernel_dtype(x.dtype) and x.ndim == 4 and x.shape[2] * x.shape[3] > 0):
        return x.mean(axis=(2, 3), keepdims=True, dtype=x.dtype)
    n, c = x.shape[:2]
    out = np.empty((n, c, 1, 1), dtype=x.dtype)
    _infer.plane_means(np.ascontiguousarray(x).reshape(n * c, -1), out.reshape(-1))
    return out


def avg_pool2d(x, kernel, stride, padding=(0, 0, 0, 0), ceil_mode=False, count_include_pad=True):
    """Average pool. The divisor counts explicit padding when count_include_pad (PyTorch's and
    Caffe's default) but never the ceil-mode overhang."""
    ho, wo, eb, er = _pool_geometry(x, kernel, stride, padding, ceil_mode)
    top, bottom, left, right = padding
    xp = _pad(x, top, bottom + eb, left, right + er, 0.0)
    total = np.zeros(x.shape[:2] + (ho, wo), dtype=x.dtype)
    for _, _, view in _windows(xp, kernel[0], kernel[1], stride[0], stride[1], 1, 1, ho, wo):
        total += view
    h, w = x.shape[2:]
    mask = np.zeros((1, 1, h + top + bottom + eb, w + left + right + er), dtype=x.dtype)
    if count_include_pad:
        mask[:, :, : h + top + bottom, : w + left + right] = 1
    else:
        mask[:, :, top:top + h, left:left + w] = 1
    count = np.zeros((1, 1, ho, wo), dtype=x.dtype)
    for _, _, view in _windows(mask, kernel[0], kernel[1], stride[0], stride[1], 1, 1, ho, wo):
        count += view
    return total / count


def lrn(x, size: int, alpha: float, beta: float, k: float):
    """Local response normalisation across channels: x / (k + alpha/size * sum_window x^2)^beta."""
    sq = x * x
    c = x.shape[1]
    half = size // 2
    acc = np.zeros_like(x)
    padded = np.concatenate([np.zeros_like(sq[:, :half]), sq,
                             np.zeros_like(sq[:, : size - 1 - half])], axis=1)
    for i in range(size):
        acc += padded[:, i:i + c]
    return x / (k + (alpha / size) * acc) ** beta


def batch_norm(x, gamma, beta, mean, var, eps):
    scale, shift = bn_scale_shift(gamma, beta, mean, var, eps)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return x * scale.astype(x.dtype).reshape(shape) + shift.astype(x.dtype).reshape(shape)


def bn_scale_shift(gamma, beta, mean, var, eps):
    """Batch norm as y = x * scale + shift, computed in float64 so folding loses nothing."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    shift = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return scale, shift


SHIFT_ASSIGNMENTS = ("interleaved", "grouped")


def shift_groups(channels: int, kernel: int, dilation: int, assignment: str):
    """The shift (Wu et al., arXiv 1711.08141) as k^2 channel groups: yields (channel slice, dy, dx)
    for every group, out[c, y, x] = in[c, y + dy, x + dx] for c in the slice, zero outside the image.

    Only the first C' = floor(C / k^2) k^2 channels move; channels C' and above stay (no group).
    Group g (g = 0 .. k^2 - 1) moves by dx = d((g mod k) - k//2), dy = d((g div k) - k//2).
    "interleaved" (the authors' CUDA code): channel c < C' is in group c mod k^2, so a group is the
    strided slice g::k^2. "grouped" (the paper's text): group g is the contiguous run of C'/k^2
    channels starting at g C'/k^2. Between two 1x1 convolutions the two differ by a permutation
    of channels only."""
    k2 = kernel * kernel
    per = channels // k2
    if per == 0:
        return
    moved = per * k2
    for g in range(k2):
        dy = dilation * (g // kernel - kernel // 2)
        dx = dilation * (g % kernel - kernel // 2)
        sl = slice(g, moved, k2) if assignment == "interleaved" else slice(g * per, (g + 1) * per)
        yield sl, dy, dx


def shift_offsets(channels: int, kernel: int, dilation: int, assignment: str) -> np.ndarray:
    """Per-channel (dy, dx) of the shift, shape (C, 2); (0, 0) for the channels that stay."""
    out = np.zeros((channels, 2), dtype=np.int64)
    for sl, dy, dx in shift_groups(channels, kernel, dilation, assignment):
        out[sl] = (dy, dx)
    return out


def _span(size: int, offset: int) -> tuple[slice, slice]:
    """(destination, source) rows of out[y] = in[y + offset] that lie inside the image."""
    lo, hi = max(0, -offset), min(size, size - offset)
    if hi <= lo:
        return slice(0, 0), slice(0, 0)
    return slice(lo, hi), slice(lo + offset, hi + offset)


def shift_into(out, x, kernel: int, dilation: int, assignment: str, reverse: bool = False):
    """Write shift(x) into `out`, a zero-filled array of x's shape (N, C, H, W); with reverse=True
    the opposite shift (every offset negated), which is the shift's adjoint, i.e. its gradient.
    Each group is one slice assignment from x into out, so nothing is copied but what lands in
    out; basic slicing only, so the same code serves NumPy arrays and torch tensors (the training
    module's forward and backward passes)."""
    _, c, h, w = x.shape
    sign = -1 if reverse else 1
    for sl, dy, dx in shift_groups(c, kernel, dilation, assignment):
        (ty, sy), (tx, sx) = _span(h, sign * dy), _span(w, sign * dx)
        out[:, sl, ty, tx] = x[:, sl, sy, sx]
    moved = c // (kernel * kernel) * kernel * kernel
    out[:, moved:] = x[:, moved:]
    return out


def shift(x: np.ndarray, kernel: int = 3, dilation: int = 1, assignment: str = "interleaved") -> np.ndarray:
    """The shift of an NCHW batch (see shift_groups); zeros enter at the borders."""
    return shift_into(np.zeros_like(x), x, kernel, dilation, assignment)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) in x's precision, without overflow warnings for large |x| (the exponent is
    of -|x| only)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def hard_sigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """max(0, min(1, alpha x + beta)) (ONNX HardSigmoid; PyTorch's hardsigmoid is alpha 1/6)."""
    return np.clip(x * x.dtype.type(alpha) + x.dtype.type(beta), 0, 1)


RESIZE_MODES = ("nearest", "linear")
# how an output pixel's centre maps back onto the input (ONNX coordinate_transformation_mode)
RESIZE_COORDINATES = ("half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners")
# which input pixel a nearest resize takes at a fractional source position (ONNX nearest_mode)
NEAREST_ROUNDING = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _source_positions(n_in: int, n_out: int, coordinates: str) -> np.ndarray:
    """Where each of n_out output positions falls on the n_in input positions (ONNX's formulas,
    with the scale n_out / n_in)."""
    out = np.arange(n_out, dtype=np.float64)
    scale = n_out / n_in
    if coordinates == "align_corners":
        return out * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    if coordinates == "asymmetric":
        return out / scale
    if coordinates == "pytorch_half_pixel" and n_out == 1:
        return np.zeros(1)
    return (out + 0.5) / scale - 0.5


def _nearest_index(pos: np.ndarray, n_in: int, rounding: str) -> np.ndarray:
    index = {"round_prefer_floor": np.ceil(pos - 0.5), "round_prefer_ceil": np.floor(pos + 0.5),
             "floor": np.floor(pos), "ceil": np.ceil(pos)}[rounding]
    return np.clip(index, 0, n_in - 1).astype(np.intp)


def _linear_axis(x: np.ndarray, axis: int, n_out: int, coordinates: str) -> np.ndarray:
    n_in = x.shape[axis]
    pos = np.clip(_source_positions(n_in, n_out, coordinates), 0, n_in - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    shape = [1] * x.ndim
    shape[axis] = n_out
    frac = (pos - lo).astype(x.dtype).reshape(shape)
    a, b = np.take(x, lo, axis=axis), np.take(x, hi, axis=axis)
    return a + (b - a) * frac


def resize(x: np.ndarray, size: tuple[int, int], mode: str = "nearest",
           coordinates: str = "half_pixel", nearest: str = "round_prefer_floor") -> np.ndarray:
    """An NCHW batch resized to size (H, W) as ONNX Resize computes it: nearest (the input pixel
    at each output's source position, rounded by `nearest`) or linear (bilinear, the source
    position clamped to the input); `coordinates` maps output positions onto the input."""
    if mode == "nearest":
        rows = _nearest_index(_source_positions(x.shape[2], size[0], coordinates), x.shape[2], nearest)
        cols = _nearest_index(_source_positions(x.shape[3], size[1], coordinates), x.shape[3], nearest)
        return x[:, :, rows][:, :, :, cols]
    return _linear_axis(_linear_axis(x, 2, size[0], coordinates), 3, size[1], coordinates)
