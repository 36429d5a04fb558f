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
from struct import error as struct_error

import numpy as np
from PIL import ExifTags, Image, ImageOps

from .. import limits
from ..errors import UserError
from ..zoo.preprocess import PRESETS, RESIZE_FILTERS, Preprocess
from .files import read_regular

__all__ = ["PRESETS", "Preprocess", "batch_from_arrays", "load_batch", "load_image", "preprocess", "to_rgb8"]

# Pillow's filter for each resize filter a model may name
_PIL_FILTERS = {name: getattr(Image.Resampling, name.upper()) for name in RESIZE_FILTERS}


def load_image(path, pre: Preprocess) -> np.ndarray:
    """One image file as a float32 (C, crop, crop) array. UserError names a bad file.

    Images may come from someone else: only a regular file within max_file_bytes is opened, and
    the size its header declares is checked against the max_image_pixels and max_image_aspect
    limits (limits.py) before Pillow decodes a pixel (a 100 kB PNG can declare 50,000 x 50,000)."""
    # from memory: a chunk claiming 4 GB then costs what the file holds (a file's read(n)
    # allocates n bytes before it reads)
    raw = read_regular(path)
    data = io.BytesIO(raw)
    try:
        Image.MAX_IMAGE_PIXELS = None  # the limit is ours (check_image_size), not Pillow's
        check_embedded_images(raw, path)  # ICO, ICNS: Pillow decodes an ICO inside Image.open
        with Image.open(data) as img:
            turn = _orientation(img.info.get("exif"))
            check_image_size(img.size, path, _costing(img), copied=turn != 1)
            check_tiff_tiles(img, path)
            img.load()  # decode now: a truncated or corrupt file fails here, with its name
            # what decoding made (an ICNS takes its embedded image's size), and the orientation,
            # which a PNG may state after its pixels: checked again before the copies are made
            turn = img.getexif().get(ExifTags.Base.Orientation, 1)
            check_image_size(img.size, path, _costing(img), copied=turn != 1)
            rgb = to_rgb8(ImageOps.exif_transpose(img) if turn != 1 else img)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise UserError(f"{path}: not a readable image ({e})") from None
    return preprocess(rgb, pre)


def check_image_size(size: tuple[int, int], path, mode: str | None = None, copied: bool = False,
                     what: str = "image") -> None:
    """The declared width and height against the pixel and aspect-ratio limits, and, given the
    image's Pillow mode, the bytes decoding and converting it take against max_image_bytes
    (working_bytes; copied: the image is also transposed, as its EXIF orientation asks)."""
    w, h = size
    if w <= 0 or h <= 0:
        raise UserError(f"{path}: {what} of {w}x{h} pixels")
    limits.check(f"{path}: {what} of {w}x{h}: pixels", w * h, "max_image_pixels")
    limits.check(f"{path}: {what} of {w}x{h}: aspect ratio", -(-max(w, h) // min(w, h)), "max_image_aspect")
    if mode is not None:
        limits.check(f"{path}: {what} of {w}x{h} {mode}: bytes to decode and convert",
                     working_bytes(size, mode, copied), "max_image_bytes")


# Bytes per pixel of Pillow's decoded image by mode (Pillow keeps RGB, and every 2- or 3-band
# mode, in 4 bytes a pixel); modes not listed: 4
_DECODED = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2, "BGR;15": 2,
            "BGR;16": 2, "BGR;24": 3}
# Bytes per pixel of the full-size images to_rgb8 makes from a mode, beside the decoded one
# (those alive together at its peak); modes not listed: 4 (one convert to RGB)
_ALPHA_PATH = 4 + 4 + 4  # a white RGBA, the composite, the RGB of it
_CONVERTED = {"RGB": 0, "RGBA": _ALPHA_PATH, "LA": 4 + _ALPHA_PATH, "La": 4 + _ALPHA_PATH,
              "PA": 4 + _ALPHA_PATH, "RGBa": 4 + _ALPHA_PATH, "P": 4,
              "I": 1 + 4, "F": 1 + 4, **{m: 1 + 4 for m in ("I;16", "I;16L", "I;16B", "I;16N")}}


def working_bytes(size: tuple[int, int], mode: str, copied: bool = False) -> int:
    """Bytes that load_image takes at most for an image of `size` pixels in Pillow's `mode`:
    the decoded image (twice if `copied`: transposed as its EXIF orientation asks) and the
    full-size images to_rgb8 makes from it (a 16-bit or RGBA image is much more than its pixels
    say: a 16-bit grey PNG of 100 M pixels decodes to 200 MB, an RGBA one to 400 MB and three
    more images of that size on its way to RGB)."""
    decoded = _DECODED.get(mode, 4)
    return size[0] * size[1] * (decoded * (2 if copied else 1) + _CONVERTED.get(mode, 4))


def _costing(img: Image.Image) -> str:
    """The mode whose conversion an image costs: a palette image with a transparent colour goes
    the way of one with alpha (PA)."""
    return "PA" if img.mode == "P" and "transparency" in img.info else img.mode


def _orientation(exif: bytes | None) -> int:
    """The EXIF orientation tag in raw EXIF bytes (1, none, when absent or unreadable)."""
    if not exif:
        return 1
    try:
        found = Image.Exif()
        found.load(exif)
        return found.get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001 -- Pillow reads it again after decoding, and says what is wrong
        return 1


def check_embedded_images(raw: bytes, path) -> None:
    """ICO and ICNS hold several images, and their directory states sizes that the embedded PNG,
    BMP or JPEG 2000 need not keep: Pillow decodes the one it picks whatever size that image's
    own header says (an ICO inside Image.open itself). The header of each image Pillow may decode
    is read here, in place (Pillow's header parsers, nothing decoded, nothing copied), and its
    size checked like any image's. (CUR: Pillow reads its bitmap's header at open, and decodes
    later: load_image checks it as any image.)"""
    from PIL import BmpImagePlugin, IcnsImagePlugin, IcoImagePlugin, PngImagePlugin
    fp = io.BytesIO(raw)
    where: list[tuple[int, int | None]] = []  # (offset, length) of the embedded images
    try:
        if raw[:4] == b"\0\0\1\0":  # ICO: the entry Pillow decodes (the largest, fewest colours)
            entries = IcoImagePlugin.IcoFile(fp).entry
            where = [(entries[0].offset, None)] if entries else []
        elif raw[:4] == b"icns":  # the blocks of the types Pillow reads as PNG or JPEG 2000
            toc = IcnsImagePlugin.IcnsFile(fp).dct
            codes = {code for readers in IcnsImagePlugin.IcnsFile.SIZES.values()
                     for code, reader in readers if reader is IcnsImagePlugin.read_png_or_jpeg2000}
            where = [toc[code] for code in sorted(codes) if code in toc]
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct_error):
        return  # Pillow will say what is wrong with the file
    for offset, length in where:
        head = raw[offset:offset + 12]
        fp.seek(offset)
        try:
            if head[:8] == PngImagePlugin._MAGIC:
                inner = PngImagePlugin.PngImageFile(fp)
            elif head[:4] == b"\xff\x4f\xff\x51" or head == b"\0\0\0\x0cjP  \r\n\x87\n":
                from PIL import Jpeg2KImagePlugin
                inner = Jpeg2KImagePlugin.Jpeg2KImageFile(io.BytesIO(raw[offset:offset + (length or 0)]))
            elif length is None:
                inner = BmpImagePlugin.DibImageFile(fp)  # an ICO's bitmap (height doubled: its mask)
            else:
                continue
        except (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError, struct_error):
            continue  # not one Pillow can read either; Pillow refuses the file when it gets there
        # decoded as RGBA (a masked bitmap) or in its own mode: the costlier of the two
        mode = max((inner.mode, "RGBA"), key=lambda m: working_bytes((1, 1), m))
        check_image_size(inner.size, path, mode, what="embedded image")


def check_tiff_tiles(img: Image.Image, path) -> None:
    """A TIFF's decoder allocates a buffer per tile or strip from sizes the header states
    (TileWidth x TileLength, or the width x RowsPerStrip): each within max_image_bytes."""
    if img.format != "TIFF":
        return
    tags = img.tag_v2
    w, h = img.size
    tile_w, tile_h = tags.get(322), tags.get(323)
    rows = tags.get(278)
    samples = tags.get(277, 1)
    bits = tags.get(258, (8,))
    bits = max(bits) if isinstance(bits, tuple) and bits else bits
    try:
        if tile_w is not None or tile_h is not None:
            pixels = int(tile_w or 1) * int(tile_h or 1)
        else:
            pixels = w * min(int(rows), h) if rows is not None else 0
        tile_bytes = pixels * int(samples) * -(-int(bits) // 8)
    except (TypeError, ValueError):
        return  # Pillow refuses the tags when it decodes
    limits.check(f"{path}: TIFF tile or strip", tile_bytes, "max_image_bytes")


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
        return Image.fromarray(_wide_to_8bit(img), "L").convert("RGB")
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


def _wide_to_8bit(img: Image.Image, rows: int = 1 << 20) -> np.ndarray:
    """A 16- or 32-bit grey image as uint8, x / 257 rounded and clipped to 0-255, a strip of rows
    at a time (whole, the float64 arithmetic took 24 bytes a pixel more than the result).
    For integers, rint(x / 257) == (x + 128) // 257: x / 257 is never halfway between two."""
    w, h = img.size
    out = np.empty((h, w), np.uint8)
    step = max(1, rows // max(w, 1))
    for top in range(0, h, step):
        strip = np.asarray(img.crop((0, top, w, min(h, top + step))), dtype=np.int64)
        out[top:top + step] = (np.clip(strip, 0, 65535) + 128) // 257
    return out


def preprocess(rgb: Image.Image, pre: Preprocess) -> np.ndarray:
    """An 8-bit RGB image resized, centre-cropped and normalised to float32 (C, H, W)."""
    w, h = rgb.size
    short = pre.resize or pre.crop
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    if size != rgb.size:  # the resized image is made whole: bounded as a decoded one is
        limits.check(f"resizing a {w}x{h} image to {size[0]}x{size[1]}: pixels", size[0] * size[1],
                     "max_image_pixels")
        limits.check(f"resizing a {w}x{h} image to {size[0]}x{size[1]}: bytes", 4 * size[0] * size[1],
                     "max_image_bytes")
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
