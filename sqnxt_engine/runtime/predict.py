"""Classifying with a weight file: the network, its preprocessing and class names together
(`Classifier`), images or arrays to top classes (`classify`), and top-1 on a labelled set
(`engine_accuracy`). The commands sqnxt-infer and sqnxt-eval are these functions plus output."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError
from ..graph.graph import Graph
from ..io.images import Preprocess, batch_from_arrays, load_batch
from ..io.labels import labels_for
from ..io.model import is_quantized, load_model
from ..io.network_spec import NetworkSpec
from ..progress import progress_bar
from ..zoo.preprocess import for_network
from .runner import Runner

if TYPE_CHECKING:
    from ..quant.model import QuantizedModel


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities along the last axis, computed in float64 (stable for large logits)."""
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class Classifier:
    """A network with its weights, the preprocessing they were trained with and their class
    names: `Classifier.load("1.0-SqNxt-23v5-fmnist")`, then `top(prepare(images))`."""
    graph: Graph
    weights: dict
    meta: dict
    preprocess: Preprocess
    labels: list[str]
    runner: Runner | QuantizedModel

    @classmethod
    def load(cls, weights: str | Path, preprocess: dict | None = None,
             labels: list[str] | None = None) -> Classifier:
        """From a weight file or name (see io.model.load_model) or an .onnx model, checked that
        the preprocessing gives the channels the network takes. A quantized file (sqnxt-quant's)
        runs through the pure-integer runner. The preprocessing is the file's metadata (where it
        says nothing: the network's input side, no border cropped, no normalisation); `preprocess`
        (metadata keys: input_size, resize, mean, std, ...) and `labels` replace what it says."""
        onnx = Path(str(weights)).suffix.lower() == ".onnx"
        if onnx:
            graph, arrays, meta, _ = NetworkSpec.of(file=str(weights)).load()
        else:  # checked against the file's architecture, once, by load_model
            graph, arrays, meta = load_model(weights, quantized=None)
        pre = for_network(graph.input_shape, graph.meta, meta, preprocess or {})
        if pre.channels != graph.input_shape[0]:
            raise UserError(f"{weights}: preprocessing gives {pre.channels} channels, "
                            f"{graph.name} takes {graph.input_shape[0]}")
        if len(graph.input_shape) == 3 and (pre.crop, pre.crop) != tuple(graph.input_shape[1:]):
            # the runner would refuse the batch, but only after every image was resized to it
            raise UserError(f"{weights}: preprocessing gives {pre.crop}x{pre.crop} images, {graph.name} "
                            f"takes {graph.input_shape[1]}x{graph.input_shape[2]}")
        classes = graph.output_shape()[0]
        if labels is not None and len(labels) != classes:
            raise UserError(f"{len(labels)} class names for the {classes} classes of {graph.name}")
        labels = labels_for(meta, classes) if labels is None else labels
        if is_quantized(meta):  # the integer runner, imported only for a quantized file
            from ..quant.model import QuantizedModel
            runner = QuantizedModel.from_arrays(graph, arrays, meta, source=weights)
        else:
            runner = Runner(graph, arrays, checked=not onnx)
        return cls(graph, arrays, meta, pre, labels, runner)

    def prepare(self, images_u8) -> np.ndarray:
        """8-bit images (arrays) as the network's input batch, as sqnxt-infer prepares files."""
        return batch_from_arrays(images_u8, self.preprocess)

    def load_images(self, paths: Sequence) -> np.ndarray:
        """Image files as the network's input batch."""
        return load_batch(paths, self.preprocess)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(N, classes) softmax of the network's output for an input batch."""
        return softmax(self.runner(x).reshape(len(x), -1))

    def top(self, x: np.ndarray, k: int = 5) -> list[list[dict]]:
        """Per input: its `k` most probable classes as {class_id, label, probability}."""
        return self.ranked(self.probabilities(x), k)

    def ranked(self, probabilities: np.ndarray, k: int = 5) -> list[list[dict]]:
        """Per row of `probabilities` (from `probabilities`): its `k` most probable classes as
        {class_id, label, probability}."""
        out = []
        for p in probabilities:
            best = np.argsort(-p, kind="stable")[:k]
            out.append([{"class_id": int(i), "label": self.labels[i], "probability": float(p[i])}
                        for i in best])
        return out


def classify(paths: Sequence, weights: str | Path, top: int = 5, batch_size: int = 16,
             preprocess: dict | None = None, labels: list[str] | None = None) -> list[dict]:
    """Per image file: its path and the top `top` classes as {class_id, label, probability}
    (preprocess, labels: as Classifier.load's)."""
    net = Classifier.load(weights, preprocess, labels)
    results = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        with np.errstate(over="ignore", invalid="ignore"):  # found below, said in one line
            probabilities = net.probabilities(net.load_images(chunk))  # one forward pass per batch
        bad = [str(p) for p, row in zip(chunk, probabilities) if not np.isfinite(row).all()]
        if bad:  # finite weights can still overflow float32; never print "nan%"
            raise UserError(f"{weights}: the network's output is NaN or infinite for {bad[0]}")
        for path, best in zip(chunk, net.ranked(probabilities, top)):
            results.append({"path": str(path), "top": best})
    return results


def engine_accuracy(weights: str | Path, images: np.ndarray, labels: np.ndarray,
                    batch_size: int = 250, label: str = "eval") -> tuple[int, int]:
    """(correct, total) top-1 of the engine (float32 runner) on uint8 images; a progress bar
    on a terminal."""
    net = Classifier.load(weights)
    correct = nonfinite = 0
    with progress_bar(len(images), label) as bar:
        for s in range(0, len(images), batch_size):
            with np.errstate(over="ignore", invalid="ignore"):  # overflow: counted below, one line
                logits = net.runner(net.prepare(images[s:s + batch_size])).reshape(-1, len(net.labels))
            nonfinite += int((~np.isfinite(logits).all(axis=1)).sum())
            correct += int((logits.argmax(1) == labels[s:s + batch_size]).sum())
            bar.update(len(logits))
            if not nonfinite:
                bar.set_postfix_str(f"top-1 {100.0 * correct / min(s + batch_size, len(images)):.2f}%")
    if nonfinite:  # argmax of NaN is the first class: an accuracy from these would mean nothing
        raise UserError(f"{weights}: the network's output is NaN or infinite for {nonfinite:,} of "
                        f"{len(images):,} images; no accuracy computed")
    return correct, len(images)
