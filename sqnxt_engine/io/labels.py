"""Class names for a weight file: a list in its metadata, or the name of a known label set."""
from __future__ import annotations

from importlib import resources

FASHION_MNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"]


def _packaged(name: str) -> list[str] | None:
    try:
        text = resources.files("sqnxt_engine.data").joinpath(f"{name}_classes.txt").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return None
    return [line.strip() for line in text.splitlines() if line.strip()]


def labels_for(meta: dict, num_classes: int) -> list[str]:
    """`num_classes` names: the metadata's own list, a known set ("imagenet", "fashion-mnist"),
    or "class N" where nothing better is known."""
    labels = meta.get("labels")
    if isinstance(labels, list):
        names = [str(x) for x in labels]
    elif labels == "fashion-mnist":
        names = FASHION_MNIST
    elif isinstance(labels, str):
        names = _packaged(labels) or []
    else:
        names = []
    if len(names) != num_classes:
        return [f"class {i}" for i in range(num_classes)]
    return names
