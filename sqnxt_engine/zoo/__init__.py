"""The model zoo: every network by name. `build(name)` returns its Graph; `names()` lists them."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..errors import UserError
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

BASELINES: dict[str, Callable[[], Graph]] = {
    "AlexNet": baselines.alexnet,
    "SqueezeNet-v1.0": partial(baselines.squeezenet, "1.0"),
    "SqueezeNet-v1.1": partial(baselines.squeezenet, "1.1"),
    "TinyDarknet": baselines.tiny_darknet,
    "MobileNet-v1": baselines.mobilenet_v1,
    "efficientnet-lite0": efficientnet_lite0,
}


def names() -> list[str]:
    """Every model the zoo builds by name, in listing order."""
    return paper_names() + pytorchcv_names() + list(BASELINES) + resnet.names()


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum() or ch == ".")


_CANONICAL = {_key(n): n for n in names()}
_CANONICAL.update({_key("SqueezeNet v1.0"): "SqueezeNet-v1.0", _key("Tiny Darknet"): "TinyDarknet",
                   _key("MobileNet"): "MobileNet-v1"})


def canonical(name: str) -> str:
    """The zoo's spelling of a model name (case, spaces and dashes do not matter)."""
    found = _CANONICAL.get(_key(name))
    if found is None:
        raise UserError(f"unknown model {name!r}; `sqnxt-models` lists them")
    return found


def build(name: str, **options) -> Graph:
    """Build a model by name. SqueezeNext models take SqueezeNextSpec fields as options
    (e.g. small_input=True, in_channels=1, num_classes=10, input_size=28)."""
    name = canonical(name) if _key(name) in _CANONICAL else name
    spec = spec_from_name(name)
    if spec is not None:
        return build_squeezenext(with_options(spec, **options), name)
    if resnet.spec_from_name(name) is not None:
        return resnet.build(name, **options)
    if name in BASELINES:
        if options:
            raise UserError(f"{name} takes no options (got {sorted(options)})")
        return BASELINES[name]()
    raise UserError(f"unknown model {name!r}; `sqnxt-models` lists them")


__all__ = ["SqueezeNextSpec", "build", "build_squeezenext", "canonical", "names", "spec_from_name"]
