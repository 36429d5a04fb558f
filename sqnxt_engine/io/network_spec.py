"""A network description a command or a sweep can name, store and rebuild: `NetworkSpec`.

A spec is one of
  - a zoo model by name, with zoo options (SqueezeNextSpec fields for SqueezeNexts, e.g.
    {"depths": [3, 5, 12, 1], "stem_kernel": 3}), run with seeded random weights;
  - a file: an .npz weight file (or a shipped / fetchable weight name), an .onnx model (its own
    weights), or a .prototxt (a graph only: seeded random weights).

It is frozen and picklable (worker processes rebuild the network from it), `key()` is a stable
string for a results database, and `name` says what the network is in every report: a zoo model
with options is never named after the model it started from alone.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from .files import is_file
from .structured_text import check_json_depth

if TYPE_CHECKING:  # the zoo and the graph are imported when a spec is made or loaded, so that
    from ..graph.graph import Graph  # every command's parser (cli/common) can import this module

GRAPH_ONLY = (".prototxt",)  # files that describe a graph without weights
NETWORK_FILES = (".npz", ".onnx", ".prototxt")


@dataclass(frozen=True)
class NetworkSpec:
    """model: a zoo name; zoo_options: its options as canonical JSON ("" for none: a string keeps
    the spec hashable); file: a network file or weight name (instead of model); seed: the random
    weights of a zoo model or a graph-only file."""
    model: str | None = None
    zoo_options: str = ""
    file: str | None = None
    seed: int = 0

    @classmethod
    def of(cls, model: str | None = None, zoo_options: dict | None = None, file: str | None = None,
           seed: int = 0) -> NetworkSpec:
        """A checked spec: exactly one of model and file; zoo options only with a zoo model
        (a weight file records its own, an ONNX or prototxt file is its own graph)."""
        if (model is None) == (file is None):
            raise UserError("a network is a zoo model or a file, not both or neither")
        if file is not None and zoo_options:
            raise UserError(f"{file}: zoo options apply to a zoo model, not to a file (a weight file "
                            "records its own options, an ONNX or prototxt file is its own graph)")
        if model is not None:
            from .. import zoo
            model = zoo.canonical(model)
        text = json.dumps(zoo_options, sort_keys=True, separators=(",", ":")) if zoo_options else ""
        return cls(model, text, None if file is None else str(file), int(seed))

    @classmethod
    def parse(cls, text: str, zoo_options: dict | None = None, seed: int = 0) -> NetworkSpec:
        """A spec from a command line word: a file (by suffix, or an existing path), else a zoo
        name, optionally followed by its options as a JSON object (`NAME{"depths": [...]}`);
        `zoo_options` apply to a zoo name that has none of its own."""
        text = text.strip()
        if "{" in text:
            model, _, rest = text.partition("{")
            return cls.of(model.strip(), parse_zoo_options("{" + rest, f"{model.strip()}'s options"),
                          seed=seed)
        if Path(text).suffix.lower() in NETWORK_FILES or os.path.exists(text):
            return cls.of(file=text, seed=seed)
        return cls.of(text, zoo_options, seed=seed)

    @property
    def options(self) -> dict:
        return json.loads(self.zoo_options) if self.zoo_options else {}

    @property
    def uses_seed(self) -> bool:
        """Whether the weights are seeded random ones (a zoo model, a graph-only file)."""
        return self.file is None or Path(self.file).suffix.lower() in GRAPH_ONLY

    @property
    def name(self) -> str:
        """What the network is, for reports: the zoo name with its options
        (`1.0-SqNxt-23v5[depths=3-5-12-1,stem_kernel=3]`), or the file's name without suffix."""
        if self.file is not None:
            # a shipped name such as 1.0-SqNxt-23-fmnist has a dot but no file suffix
            path = Path(self.file)
            return path.stem if path.suffix.lower() in NETWORK_FILES else path.name
        if not self.zoo_options:
            return self.model
        return f"{self.model}[{','.join(f'{k}={_short(v)}' for k, v in self.options.items())}]"

    def key(self) -> str:
        """A stable string naming exactly this network (and its random weights where seeded): a
        file by its content's SHA-256, so an edited file is a new key."""
        seed = f"@seed{self.seed}" if self.uses_seed else ""
        if self.file is None:
            return f"zoo:{self.model}{self.zoo_options}{seed}"
        path = Path(self.file)
        if is_file(path):
            # streamed, regular files only; imported here so the parsers' import stays light
            from .weights import sha256_file
            return f"file:{path.name}:sha256={sha256_file(path)[:16]}{seed}"
        return f"weights:{self.file}{seed}"  # a shipped or fetchable name: fixed content

    def load(self, quantized: bool | None = False) -> tuple[Graph, dict, dict, str]:
        """(graph, weights, meta, name): the graph renamed to `name`, so that every report of
        it says what it is. quantized as load_model's (weight files only)."""
        from .. import zoo
        from ..graph.graph import Graph
        from ..graph.seeded_weights import random_weights
        meta: dict = {}
        if self.file is None:
            graph = zoo.build(self.model, **self.options)
            weights = random_weights(graph, self.seed)
        else:
            suffix = Path(self.file).suffix.lower()
            if suffix in (".onnx", ".prototxt"):
                if quantized:
                    refuse_graph_file(self.file, "this")
                from .model import load_graph
                if suffix == ".onnx":
                    from .onnx_import import read_onnx
                    graph, weights = read_onnx(self.file)
                else:
                    graph = load_graph(self.file)
                    weights = random_weights(graph, self.seed)
            else:
                from .model import load_model
                graph, weights, meta = load_model(self.file, quantized=quantized)
        if graph.name != self.name:
            graph = Graph(self.name, graph.input_shape, graph.nodes, graph.outputs, graph.meta)
        return graph, weights, meta, self.name


def refuse_graph_file(file: str, who: str) -> None:
    """A UserError for an ONNX or prototxt file where only a quantized weight file will do."""
    if Path(file).suffix.lower() in (".onnx", ".prototxt"):
        raise UserError(f"{file}: {who} needs a quantized weight file, not a {Path(file).suffix} network "
                        "(make one: sqnxt-convert it to an .npz, then sqnxt-quant)")


def _short(value) -> str:
    """An option value as the network's name shows it: lists joined by '-' ([3,5,12,1] -> 3-5-12-1)."""
    if isinstance(value, (list, tuple)):
        return "-".join(_short(v) for v in value)
    return json.dumps(value) if isinstance(value, (bool, type(None))) else str(value)


def parse_zoo_options(text: str, what: str = "--zoo-options") -> dict:
    """A JSON object of zoo options from a user, or a one-line UserError naming `what`."""
    check_json_depth(text, what)  # json recurses per level: 50,000 `[` are a RecursionError
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{what} is not JSON ({e})") from None
    if not isinstance(value, dict):
        raise UserError(f"{what} must be a JSON object, e.g. '{{\"depths\": [3, 5, 12, 1]}}'")
    return value


def split_networks(text: str) -> list[str]:
    """A comma-separated list of networks, where a zoo name's JSON options may hold commas
    ('A,B{"depths":[3,5,12,1]},net.onnx' -> three words)."""
    words, depth, start, quoted = [], 0, 0, False
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "{[":
            depth += 1
        elif not quoted and ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0 and not quoted:
            words.append(text[start:i])
            start = i + 1
    words.append(text[start:])
    return [w.strip() for w in words if w.strip()]
