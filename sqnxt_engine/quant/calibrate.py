"""Activation ranges from a calibration set: the float plan runs on batches of calibration images
and each tensor (the input and every step's output) gets one range, layer-wise.

Rules:
  auto          max at 16 bits, percentile:99.99 at 8 bits (the default): with 2**15 steps,
                rounding error is negligible and clipping an outlier costs more than it saves;
                with 2**7 steps, one outlier stretching the scale costs every other value;
  max           the largest |value| seen;
  percentile:P  the P-th percentile of |value| over every value of every calibration image
                (exact: each tensor keeps only its largest (1 - P/100) share of values, which is
                all the percentile needs), so rare outliers do not stretch the scale;
  pow2          a power-of-two threshold of least quantization error over the calibration
                values (pow2.py, HPTQ's search; its step is the threshold / 2**(b-1), or / 2**b
                for unsigned codes): the largest |value| first (calibrate with 'max'), then
                the candidates' errors over the calibration images again (quantize_network).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from ..errors import UserError
from ..graph.graph import INPUT
from .plan import FloatPlan

AUTO_RULES = {8: "percentile:99.99", 16: "max"}


def resolve_rule(rule: str, bits: int) -> str:
    """The rule 'auto' stands for at `bits`; any other rule as it is (checked)."""
    rule = AUTO_RULES[bits] if rule == "auto" else rule
    parse_rule(rule)
    return rule


def parse_rule(rule: str) -> float | None:
    """None for 'max' and 'pow2', P for 'percentile:P' (0 < P < 100)."""
    if rule in ("max", "pow2"):
        return None
    name, _, value = rule.partition(":")
    try:
        p = float(value)
    except ValueError:
        p = -1.0
    if rule == "auto":  # resolved by resolve_rule before calibration
        return None
    if name != "percentile" or not 0 < p < 100:
        raise UserError(f"activation rule must be auto, max, pow2 or percentile:P with 0 < P < 100, "
                        f"got {rule!r}")
    return p


def calibrate(plan: FloatPlan, batches: Iterable[np.ndarray], images: int, rule: str = "max",
              on_batch: Callable[[int], None] | None = None) -> dict[str, float]:
    """{tensor name: range} over `batches` (float input batches holding `images` images in all);
    on_batch(n) is called after each batch of n images (a progress bar)."""
    if rule == "pow2":
        raise ValueError("calibrate: rule 'pow2' takes a second pass (quantize_network)")
    p = parse_rule(rule)
    run = plan.executor(np.float32)
    names = [INPUT] + [s.name for s in plan.steps]
    sizes = {n: math.prod(plan.graph.shapes[n] if n != INPUT else plan.graph.input_shape) for n in names}
    keep = {n: max(1, math.ceil(images * sizes[n] * (1 - p / 100))) for n in names} if p else {}
    top: dict[str, np.ndarray] = {}
    seen = nonfinite = 0
    for x in batches:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: counted here, one line below
            env = run(x)
        bad = np.zeros(len(x), bool)
        for n in names:
            bad |= ~np.isfinite(env[n]).reshape(len(x), -1).all(axis=1)
            a = np.abs(env[n]).reshape(-1)
            if p is None:
                top[n] = np.maximum(top.get(n, np.float32(0)), a.max(initial=0))
            else:
                merged = a if n not in top else np.concatenate([top[n], a])
                k = keep[n]
                top[n] = merged if merged.size <= k else np.partition(merged, merged.size - k)[-k:]
        seen += len(x)
        nonfinite += int(bad.sum())
        if on_batch:
            on_batch(len(x))
    if not seen:
        raise UserError("the calibration set is empty")
    if seen != images:
        raise ValueError(f"calibrate: {seen} images seen, {images} announced")
    if nonfinite:  # a NaN range would quietly become a scale of 1, an infinite one a scale of inf
        raise UserError(f"the float network's activations are NaN or infinite for {nonfinite:,} of "
                        f"{seen:,} calibration images; no ranges computed")
    if p is None:
        return {n: float(top[n]) for n in names}
    # the P-th percentile of all images * size values is the k-th largest, with k as kept
    return {n: float(top[n].min()) for n in names}


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class CalibrationSet:
    """The images activations are calibrated on: a data set's *train* split (its first `count`
    images; never the test split accuracy is measured on), a folder of image files, or image
    files. `batches(pre, size)` yields preprocessed float32 batches."""

    def __init__(self, sources: list[str], count: int = 500):
        from pathlib import Path

        from ..io.datasets import DATASETS, load_dataset
        self.arrays, self.paths = None, []
        if len(sources) == 1 and sources[0] in DATASETS:
            split = "test" if sources[0] == "imagenet-samples" else "train"  # its only split
            images, _ = load_dataset(sources[0], split)
            self.arrays = images[:count]
            self.name = f"{sources[0]} {split} split, {len(self.arrays)} images"
        else:
            for src in sources:
                p = Path(src)
                if p.is_dir():
                    self.paths += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
                elif p.is_file():
                    self.paths.append(p)
                else:
                    raise UserError(f"{src}: no such file, folder or data set (data sets: "
                                    f"{', '.join(DATASETS)})")
            self.paths = self.paths[:count]
            self.name = f"{len(self.paths)} image files"
        if len(self) == 0:
            raise UserError(f"the calibration set {' '.join(sources)} holds no images")

    def __len__(self) -> int:
        return len(self.arrays) if self.arrays is not None else len(self.paths)

    def batches(self, pre, size: int = 32):
        from ..io.images import batch_from_arrays, load_batch
        for s in range(0, len(self), size):
            if self.arrays is not None:
                yield batch_from_arrays(self.arrays[s:s + size], pre)
            else:
                yield load_batch(self.paths[s:s + size], pre)
