"""Writes the example PNGs: the first Fashion-MNIST test image of each class, as 28x28 grey PNG
named fmnist-<test index>-<label>.png. Run: python examples/make_examples.py"""
from pathlib import Path

from PIL import Image

from sqnxt_engine.io.datasets import load_dataset
from sqnxt_engine.io.labels import FASHION_MNIST

images, labels = load_dataset("fashion-mnist", "test")
here = Path(__file__).parent
for cls, name in enumerate(FASHION_MNIST):
    i = int((labels == cls).nonzero()[0][0])
    slug = name.lower().replace("/", "-").replace(" ", "-")
    Image.fromarray(images[i], "L").save(here / f"fmnist-{i:05d}-{slug}.png", optimize=True)
