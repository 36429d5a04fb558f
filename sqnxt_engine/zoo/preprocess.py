"""What a network takes as input, as a description: `Preprocess` (crop, resize, colour order,
mean and std, resize filter) and the zoo models' presets (`PRESETS`), the one place these numbers
are written. The zoo's graphs carry them in their metadata; io.images applies them to images.

Conventions (one for every model, so weight files and presets read alike): `mean` and `std` are
in 8-bit pixel units (0-255) and listed in the *output* channel order: x = (pixel - mean) / std.
Caffe's SqueezeNext: BGR, mean (104, 117, 123), std 1; ImageNet torch models: RGB,
mean 255 * (0.485, 0.456, 0.406), std 255 * (0.229, 0.224, 0.225); EfficientNet-Lite: RGB,
mean 127, std 128.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

_COLORS = {"RGB": 3, "BGR": 3, "L": 1}
# the resize filters a model may name (io.images maps each to Pillow's filter of that name)
RESIZE_FILTERS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocess:
    crop: int = 224                 # side of the square the network takes
    resize: int | None = 256        # shorter side before cropping; None: shorter side to `crop`
    color: str = "RGB"              # output channels: RGB, BGR, or L (one grey channel)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)  # pixel units, output channel order
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    resize_filter: str = "bilinear"  # one of RESIZE_FILTERS: the model's reference filter

    def __post_init__(self):
        n = _COLORS.get(self.color)
        if n is None:
            raise UserError(f"unknown colour order {self.color!r} (RGB, BGR, L)")
        if self.resize_filter not in RESIZE_FILTERS:
            raise UserError(f"unknown resize filter {self.resize_filter!r} ({', '.join(RESIZE_FILTERS)})")
        mean, std = _per_channel(self.mean, n, "mean"), _per_channel(self.std, n, "std")
        if min(std) <= 0:
            raise UserError(f"std must be positive, got {std}")
        if self.crop <= 0 or (self.resize is not None and self.resize < self.crop):
            raise UserError(f"cannot crop {self.crop} from an image resized to {self.resize}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def channels(self) -> int:
        return _COLORS[self.color]

    def meta(self) -> dict:
        """The metadata keys of this preprocessing, as weight files and zoo graphs store them."""
        return {"input_size": self.crop, "resize": self.resize, "color": self.color,
                "mean": self.mean, "std": self.std, "resize_filter": self.resize_filter}

    @classmethod
    def from_meta(cls, meta: Mapping) -> Preprocess:
        """From a weight file's or a zoo graph's metadata: input_size (the crop; an int or a
        [C, H, W] list), resize, color, mean, std, resize_filter."""
        size = meta.get("input_size", 224)
        crop = int(size[-1] if isinstance(size, (list, tuple)) else size)
        return cls(crop=crop, resize=meta.get("resize", crop), color=meta.get("color", "RGB"),
                   mean=tuple(meta.get("mean", (0.0,))), std=tuple(meta.get("std", (1.0,))),
                   resize_filter=meta.get("resize_filter", "bilinear"))


def for_network(input_shape, *metas: Mapping) -> Preprocess:
    """Preprocess.from_meta of the metadata given (a later mapping's keys win), with the
    network's own input side (input_shape's last) where none states an input_size: an ONNX
    model's input is its declared shape, not 224."""
    merged: dict = {"input_size": int(input_shape[-1])}
    for m in metas:
        merged.update(m)
    return Preprocess.from_meta(merged)


def _per_channel(values, n: int, what: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in np.atleast_1d(values))
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise UserError(f"{what} needs 1 or {n} values, got {len(values)}")
    return values


PRESETS = {
    "caffe-squeezenext": Preprocess(227, 256, "BGR", (104.0, 117.0, 123.0), (1.0,)),
    "imagenet-torch": Preprocess(224, 256, "RGB", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
    # EfficientNet-Lite: the TensorFlow reference the weights were trained with
    # (efficientnet_lite_builder.py: MEAN_RGB 127.0, STDDEV_RGB 128.0, "inception-style" for
    # quantization); evaluation crops the centre 224/(224+32) of the shorter side (crop_padding
    # 32): shorter side to 256, then a 224 centre crop. The PyTorch port has no preprocessing of
    # its own (its only example, commented out, is torchvision's ImageNet normalisation copied
    # from efficientnet_pytorch, which these weights were not trained with). The resize is bicubic
    # (preprocessing.py's _resize_image: tf.compat.v1.image.resize_bicubic).
    "efficientnet-lite": Preprocess(224, 256, "RGB", (127.0,), (128.0,), "bicubic"),
    # the shipped Fashion-MNIST weights: 28x28 grey, the train split's mean and std in pixel units
    # (computed: 72.940, 90.021); sqnxt-train normalises with these too
    "fashion-mnist": Preprocess(28, 28, "L", (72.94,), (90.02,)),
    # CIFAR-10 (the zoo's ResNets and ShiftResNets): the train split's per-channel mean and std,
    # 255 * (0.4914, 0.4822, 0.4465) and 255 * (0.2470, 0.2435, 0.2616) as published with CIFAR
    # training code (no CIFAR-10 copy on these machines to recompute them from)
    "cifar10": Preprocess(32, 32, "RGB", (125.31, 122.96, 113.86), (62.99, 62.09, 66.71)),
}
