"""Resource limits for reading files that may come from someone else (docs/security.md).

Every loader checks what a file *declares* (sizes, shapes, counts, depth) against these limits
before it allocates or computes anything, so a small hostile file cannot drive the process to
gigabytes or hours. The defaults are well above what any network of this project needs (the
largest shipped model, EfficientNet-Lite0, has 4.7 M parameters in a 19 MB file); a user with a
bigger, trusted file raises one with `--resource-limit NAME=VALUE` on any command, or in Python
with `with limits.using(max_tensor_elements=...)`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields, replace
from math import prod

from .errors import UserError


@dataclass(frozen=True)
class Limits:
    # bytes a loader may read or decompress from one file (zip members, gzip, pickles, protobuf)
    max_file_bytes: int = 1 << 30
    # elements of one tensor: a weight array, a declared input, a node's output, a folded constant
    max_tensor_elements: int = 1 << 28
    # pixels of one decoded image, and its longer side over its shorter one
    max_image_pixels: int = 100_000_000
    max_image_aspect: int = 100
    # bytes one image may take decoded and converted to 8-bit RGB: Pillow's decoded image (its
    # mode's bytes per pixel: 1 for L and P, 2 for 16-bit grey, 4 for RGB, RGBA and 32-bit) plus
    # the full-size copies the conversion makes (io/images.py's working_bytes)
    max_image_bytes: int = 1 << 30
    # nodes of one graph (ONNX, prototxt, a graph stored in a weight file), and arrays in one file
    max_graph_nodes: int = 100_000
    # nesting of JSON, TOML, protobuf text, pickled containers and ONNX sub-graphs
    max_nesting: int = 64
    # elements ONNX constant folding may read and write in all, over the whole import
    max_fold_elements: int = 1 << 26
    # points of one sweep file (networks x hardware points x grid x emulation axes), counted
    # before any is expanded: at a few points a second, the default is hours of work
    max_sweep_points: int = 100_000

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise UserError(f"limit {f.name} must be a positive integer, got {v!r}")


NAMES = tuple(f.name for f in fields(Limits))
_current = Limits()


def current() -> Limits:
    """The limits in force (the defaults unless --resource-limit or `using` changed them)."""
    return _current


def set_limits(new: Limits) -> None:
    global _current
    _current = new


@contextlib.contextmanager
def using(**changes):
    """Limits changed (raised or lowered) for the duration of a `with` block."""
    old = _current
    set_limits(replace(old, **changes))
    try:
        yield _current
    finally:
        set_limits(old)


def parse_limit(text: str) -> tuple[str, int]:
    """'NAME=VALUE' (VALUE an integer, or with a k/M/G suffix: powers of 1024) as (name, value)."""
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or name not in NAMES:
        raise UserError(f"--resource-limit wants NAME=VALUE with NAME one of {', '.join(NAMES)}; got {text!r}")
    value = value.strip()
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(value[-1:].lower(), 1)
    digits = value[:-1] if scale > 1 else value
    if not (digits.isascii() and digits.isdigit()):  # "²" is a digit to isdigit, not to int
        raise UserError(f"--resource-limit {name}: {value!r} is not a positive integer (k, M, G suffixes allowed)")
    return name, int(digits) * scale


LIMIT_HELP = ("raise a resource limit for reading untrusted files, NAME=VALUE (repeatable; "
              f"names: {', '.join(NAMES)}; see docs/security.md)")


def exceeded(what: str, value: int, name: str) -> UserError:
    """The error for a file that declares more than a limit allows, saying how to raise it."""
    return UserError(f"{what} ({value:,}) exceeds the limit {name}={getattr(_current, name):,} "
                     f"(raise it with --resource-limit {name}=N if you trust the file)")


def check(what: str, value: int, name: str) -> None:
    if value > getattr(_current, name):
        raise exceeded(what, value, name)


def check_graph(graph, source: str = "") -> None:
    """A graph read from a file against the limits: its node count, every tensor it computes or
    takes as a parameter, and names that print as one line (they reach terminals)."""
    from .errors import has_controls
    where = f"{source}: " if source else ""
    check(f"{where}graph {graph.name!r:.60}: node count", len(graph.nodes), "max_graph_nodes")
    for name in (graph.name, *(n.name for n in graph.nodes)):
        if not isinstance(name, str) or has_controls(name):
            raise UserError(f"{where}a graph or node name holds control characters: {name!r:.80}")
    shapes = graph.shapes
    for n in graph.nodes:
        out = shapes[n.name]
        check(f"{where}node {n.name!r:.60}: output of shape {out}", prod(out), "max_tensor_elements")
    for pname, shape in graph.param_shapes().items():
        check(f"{where}parameter {pname!r:.60} of shape {shape}", prod(shape), "max_tensor_elements")
    check(f"{where}input of shape {graph.input_shape}", prod(graph.input_shape), "max_tensor_elements")

