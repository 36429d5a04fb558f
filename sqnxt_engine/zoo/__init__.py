"""The model zoo: every network by name. `build(name)` returns its Graph; `names()` lists them."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..errors import UserError, name_key, unknown_name
from ..graph.graph import Graph
from . import baselines, resnet
from .efficientnet import efficientnet_lite0
from .squeezenext import (
    SqueezeNextSpec,
    build_squeezenext,
    paper_names,
    pytorchcv_names,
    spec_from_name,
    with_options,
)

# the zoo's networks that are not SqueezeNext: the paper's Table 3 baselines and EfficientNet-Lite0
OTHER_MODELS: dict[str, Callable[[], Graph]] = {
    "AlexNet": baselines.alexnet,
    "SqueezeNet-v1.0": partial(baselines.squeezenet, "1.0"),
    "SqueezeNet-v1.1": partial(baselines.squeezenet, "1.1"),
    "TinyDarknet": baselines.tiny_darknet,
    "MobileNet-v1": baselines.mobilenet_v1,
    "efficientnet-lite0": efficientnet_lite0,
}


def names() -> list[str]:
    """Every model the zoo builds by name, in listing order."""
    return paper_names() + pytorchcv_names() + list(OTHER_MODELS) + resnet.names()


_CANONICAL = {name_key(n): n for n in names()}
_CANONICAL.update({name_key("SqueezeNet v1.0"): "SqueezeNet-v1.0", name_key("Tiny Darknet"): "TinyDarknet",
                   name_key("MobileNet"): "MobileNet-v1"})


def canonical(name: str) -> str:
    """The zoo's spelling of a model name (case, spaces and dashes do not matter)."""
    found = _CANONICAL.get(name_key(name))
    if found is None:
        raise unknown_name("model", name, names(), "`sqnxt-models` lists them")
    return found


def model_named_in(text: str) -> str | None:
    """The zoo model a name starts with (the longest that fits: "1.0-sqnxt-23v5-imagenet" ->
    1.0-SqNxt-23v5), or None."""
    key = name_key(text)
    found = [n for k, n in _CANONICAL.items() if key.startswith(k)]
    return max(found, key=lambda n: len(name_key(n)), default=None)


def build(name: str, **options) -> Graph:
    """Build a model by name. SqueezeNext models take SqueezeNextSpec fields as options
    (e.g. small_input=True, in_channels=1, num_classes=10, input_size=28)."""
    name = canonical(name) if name_key(name) in _CANONICAL else name
    spec = spec_from_name(name)
    if spec is not None:
        return _bounded(build_squeezenext(with_options(spec, **options), name), options)
    if resnet.spec_from_name(name) is not None:
        return _bounded(resnet.build(name, **options), options)
    if name in OTHER_MODELS:
        if options:
            raise UserError(f"{name} takes no options (got {sorted(options)})")
        return OTHER_MODELS[name]()
    raise unknown_name("model", name, names(), "`sqnxt-models` lists them")


def _bounded(graph: Graph, options: dict) -> Graph:
    """A graph built with a user's options (an input_size of 100,000: a 3 x 100,000 x 100,000
    input) within the resource limits, as a graph read from a file is, before anything runs it."""
    if options:
        from .. import limits
        limits.check_graph(graph, f"{graph.name} with zoo options {options}"[:200])
    return graph


def summary(name: str) -> dict:
    """One model's row of the zoo listing: name, input side, parameters, MACs."""
    g = build(name)
    return {"name": name, "input_size": g.input_shape[1], "params": g.params, "macs": g.macs}


__all__ = ["SqueezeNextSpec", "build", "build_squeezenext", "canonical", "names", "spec_from_name", "summary"]
