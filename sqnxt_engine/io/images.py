"""Image files -> network input: Pillow decoding, 8-bit RGB, resize, centre crop, normalise, as
a `Preprocess` says (zoo/preprocess.py: the description, its conventions, and the presets).

Conventions:
- Resizing follows torchvision's PIL path, which the torch-trained weights were evaluated
  with: shorter side to `resize` (the longer side truncated), then a centre crop of `crop` x
  `crop` with the offsets rounded. The filter is the model's (`resize_filter` in its metadata):
  "bilinear" for torchvision's models (Pillow's bilinear filter widens with the scale factor:
  antialiased, as torchvision's PIL path and antialias=True are), "bicubic" for EfficientNet-Lite,
  whose TensorFlow reference resizes bicubically.
- Transparent images are composited on white: a viewer shows them so, whereas dropping the
  alpha channel exposes whatever colour happens to sit under transparent pixels (often black).
- 16-bit images (Pillow modes I;16*, and I, which is how Pillow opens 16-bit PNG and TIFF)
  are scaled by 1/257 to 8 bits (65535 -> 255), not clipped.
Output: float32, CHW for one image and NCHW for a batch.
"""
from __future__ import annotations

import io
from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageOps

from ..errors import UserError
from ..zoo.preprocess import PRESETS, RESIZE_FILTERS, Preprocess
from . import limits
from .files import read_regular

__all__ = ["PRESETS", "Preprocess", "batch_from_arrays", "load_batch", "load_image", "preprocess", "to_rgb8"]

# Pillow's filter for each resize filter a model may name
_PIL_FILTERS = {name: getattr(Image.Resampling, name.upper()) for name in RESIZE_FILTERS}


def load_image(path, pre: Preprocess) -> np.ndarray:
    """One image file as a float32 (C, crop, crop) array. UserError names a bad file.

    Images may come from someone else: only a regular file within max_file_bytes is opened, and
    the size its header declares is checked against the max_image_pixels and max_image_aspect
    limits (io/limits.py) before Pillow decodes a pixel (a 100 kB PNG can declare 50,000 x 50,000)."""
    # from memory: a chunk claiming 4 GB then costs what the file holds (a file's read(n)
    # allocates n bytes before it reads)
    data = io.BytesIO(read_regular(path))
    try:
        Image.MAX_IMAGE_PIXELS = None  # the limit is ours (check_image_size), not Pillow's
        with Image.open(data) as img:
            check_image_size(img.size, path)
            img.load()  # decode now: a truncated or corrupt file fails here, with its name
            rgb = to_rgb8(ImageOps.exif_transpose(img))
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise UserError(f"{path}: not a readable image ({e})") from None
    return preprocess(rgb, pre)


def check_image_size(size: tuple[int, int], path) -> None:
    """The declared width and height against the pixel and aspect-ratio limits."""
    w, h = size
    if w <= 0 or h <= 0:
        raise UserError(f"{path}: image of {w}x{h} pixels")
    limits.check(f"{path}: image of {w}x{h}: pixels", w * h, "max_image_pixels")
    limits.check(f"{path}: image of {w}x{h}: aspect ratio", -(-max(w, h) // min(w, h)), "max_image_aspect")


def load_batch(paths: Iterable, pre: Preprocess) -> np.ndarray:
    """Image files as one float32 (N, C, crop, crop) batch."""
    images = [load_image(p, pre) for p in paths]
    if not images:
        return np.empty((0, pre.channels, pre.crop, pre.crop), np.float32)
    return np.stack(images)


def batch_from_arrays(images_u8, pre: Preprocess) -> np.ndarray:
    """8-bit images (a uint8 (N, H, W) grey array, or a list of (H, W) / (H, W, 3) arrays) as the
    network's float32 (N, C, crop, crop) input, exactly as `load_batch` prepares the same images
    saved as PNG files."""
    if isinstance(images_u8, np.ndarray) and images_u8.ndim == 3 and pre.color == "L" and \
            images_u8.shape[1] == images_u8.shape[2] == pre.crop and (pre.resize or pre.crop) == pre.crop:
        mean = np.float32(pre.mean[0])
        std = np.float32(pre.std[0])
        return ((images_u8.astype(np.float32) - mean) / std)[:, None]  # same arithmetic, no PIL
    return np.stack([preprocess(Image.fromarray(np.asarray(img)).convert("RGB"), pre) for img in images_u8])


def to_rgb8(img: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB (see the module notes on alpha and 16-bit)."""
    if img.mode == "RGB":
        return img
    if img.mode == "I" or img.mode.startswith("I;16"):
        wide = np.asarray(img, dtype=np.float64)
        grey = np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    if img.mode == "F":  # float samples: taken as 0-255, clipped (there is no common range)
        img = img.convert("L")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def preprocess(rgb: Image.Image, pre: Preprocess) -> np.ndarray:
    """An 8-bit RGB image resized, centre-cropped and normalised to float32 (C, H, W)."""
    w, h = rgb.size
    short = pre.resize or pre.crop
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    if size != rgb.size:
        rgb = rgb.resize(size, _PIL_FILTERS[pre.resize_filter])
        w, h = size
    top, left = int(round((h - pre.crop) / 2.0)), int(round((w - pre.crop) / 2.0))
    rgb = rgb.crop((left, top, left + pre.crop, top + pre.crop))
    if pre.color == "L":
        x = np.asarray(rgb.convert("L"), dtype=np.float32)[None]
    else:
        x = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)
        if pre.color == "BGR":
            x = x[::-1]
    mean = np.asarray(pre.mean, np.float32)[:, None, None]
    std = np.asarray(pre.std, np.float32)[:, None, None]
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)
