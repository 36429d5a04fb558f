"""A PyTorch module that interprets any graph of the IR, so one definition (the zoo's) serves
training here, and inference and emulation in the engine.

One torch module per IR node, kept in an nn.ModuleDict under the node's name with dots replaced
(torch forbids dots in module names). Conventions match the NumPy operators exactly:
asymmetric padding goes through F.pad (zeros for convs and average pools, -inf for max pools),
pools honour ceil mode, a batch norm is nn.BatchNorm2d with the op's eps.

`export_arrays()` gives the project's array names: `<conv>.weight`, `<conv>.bias`,
`<bn node>.gamma/beta/mean/var` (the zoo names BN nodes `<conv>.bn`), `<fc>.weight/bias`.
`load_arrays()` does the reverse, so a shipped .npz can be fine-tuned.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..functional import shift_into, shift_offsets
from ..graph import ops as O
from ..graph.graph import INPUT, Graph
from ._shift import shift_nhwc


def module_key(node: str) -> str:
    return node.replace(".", "__")


class Padded(nn.Module):
    """F.pad before a module whose own padding is symmetric (or zero)."""

    def __init__(self, inner: nn.Module, pad: tuple[int, int, int, int], value: float = 0.0):
        super().__init__()
        self.inner = inner
        t, b, l, r = pad
        self.pad = (l, r, t, b)  # F.pad order: last axis first
        self.value = value

    def forward(self, x):
        return self.inner(F.pad(x, self.pad, value=self.value))


class Lambda(nn.Module):
    def __init__(self, fn, n_inputs: int | None = 1):
        super().__init__()
        self.fn = fn
        self.n_inputs = n_inputs

    def forward(self, *xs):
        return self.fn(*xs)


def _add(*xs):
    out = xs[0] + xs[1]
    for x in xs[2:]:
        out = out + x
    return out


def _symmetric(pad) -> tuple[int, int] | None:
    t, b, l, r = pad
    return (t, l) if (t == b and l == r) else None


def _conv(op: O.Conv2d, cin: int) -> nn.Module:
    sym = _symmetric(op.padding)
    conv = nn.Conv2d(cin, op.out_channels, op.kernel, op.stride, sym or 0, op.dilation, op.groups, op.bias)
    return conv if sym else Padded(conv, op.padding)


def _pool(op: O._Pool2d) -> nn.Module:
    sym = _symmetric(op.padding)
    # torch pads at most half the kernel; anything else goes through F.pad
    fits = sym is not None and sym[0] <= op.kernel[0] // 2 and sym[1] <= op.kernel[1] // 2
    pad = sym if fits else 0
    if isinstance(op, O.MaxPool):
        pool = nn.MaxPool2d(op.kernel, op.stride, pad, ceil_mode=op.ceil_mode)
        return pool if fits else Padded(pool, op.padding, float("-inf"))
    if not fits and not op.count_include_pad:
        raise NotImplementedError("average pool with large or asymmetric padding excluded from the count")
    pool = nn.AvgPool2d(op.kernel, op.stride, pad, ceil_mode=op.ceil_mode,
                        count_include_pad=op.count_include_pad)
    return pool if fits else Padded(pool, op.padding, 0.0)


def _shift(x, kernel: int, dilation: int, assignment: str, reverse: bool = False):
    """The shift of a tensor in its own memory layout: a channels-last float32 tensor on the CPU
    (how train.train keeps activations there) through train/_shift.pyx, one pass over the tensor;
    anything else through functional.shift_into's slice assignments, one per channel group, which
    are contiguous planes in the NCHW layout."""
    if (x.device.type == "cpu" and x.dtype == torch.float32 and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)):
        out = torch.empty_like(x)  # channels-last too
        offsets = shift_offsets(x.shape[1], kernel, dilation, assignment)
        offsets = -offsets if reverse else offsets
        shift_nhwc(x.detach().permute(0, 2, 3, 1).numpy(), offsets, out.permute(0, 2, 3, 1).numpy())
        return out
    return shift_into(torch.zeros_like(x), x, kernel, dilation, assignment, reverse)


class _ShiftFunction(torch.autograd.Function):
    """The shift with its gradient written out: the backward pass is the opposite shift. Autograd
    through slicing instead (views of a padded copy, or slice assignment) materialises a
    zero-filled tensor of the whole input per channel group in the backward pass, which made a
    ShiftResNet train 5-10x slower than a ResNet of twice its MACs."""

    @staticmethod
    def forward(ctx, x, kernel, dilation, assignment):
        ctx.args = (kernel, dilation, assignment)
        return _shift(x, kernel, dilation, assignment)

    @staticmethod
    def backward(ctx, grad):
        return _shift(grad, *ctx.args, reverse=True), None, None, None


class Shift(nn.Module):
    """The IR's shift, through the engine's own definition (functional.shift_groups)."""

    def __init__(self, op: O.Shift):
        super().__init__()
        self.op = op

    def forward(self, x):
        return _ShiftFunction.apply(x, self.op.kernel, self.op.dilation, self.op.assignment)


def module_for(op: O.Op, in_shapes: list[tuple[int, ...]]) -> nn.Module:
    """The torch module that computes one IR operator."""
    if isinstance(op, O.Conv2d):
        return _conv(op, in_shapes[0][0])
    if isinstance(op, O.BatchNorm):
        return nn.BatchNorm2d(in_shapes[0][0], eps=op.eps)
    if isinstance(op, O.Linear):
        return nn.Linear(in_shapes[0][0], op.out_features, bias=op.bias)
    if isinstance(op, O.ReLU):
        return nn.ReLU(inplace=False)
    if isinstance(op, O.ReLU6):
        return nn.ReLU6()
    if isinstance(op, O.LeakyReLU):
        return nn.LeakyReLU(op.slope)
    if isinstance(op, O.Add):
        return Lambda(_add, None)
    if isinstance(op, O.Concat):
        return Lambda(lambda *xs: torch.cat(xs, 1), None)
    if isinstance(op, O._Pool2d):
        return _pool(op)
    if isinstance(op, O.GlobalAvgPool):
        return nn.AdaptiveAvgPool2d(1)
    if isinstance(op, O.LRN):
        return nn.LocalResponseNorm(op.size, op.alpha, op.beta, op.k)
    if isinstance(op, O.Flatten):
        return nn.Flatten(1)
    if isinstance(op, O.Dropout):
        return nn.Dropout(op.rate)
    if isinstance(op, O.Shift):
        return Shift(op)
    raise NotImplementedError(f"no torch module for {op.kind}")


class GraphModule(nn.Module):
    """Runs an IR graph in PyTorch; returns the graph's first output."""

    def __init__(self, graph: Graph):
        super().__init__()
        self.graph = graph
        self.layers = nn.ModuleDict()
        for layer in graph.layers:
            self.layers[module_key(layer.name)] = module_for(layer.op, list(layer.in_shapes))
        self._plan = [(n.name, module_key(n.name), n.inputs) for n in graph.nodes]
        self._last_use = {}
        for i, (_, _, inputs) in enumerate(self._plan):
            for name in inputs:
                self._last_use[name] = i

    def forward(self, x):
        env = {INPUT: x}
        outputs = set(self.graph.outputs)
        for i, (name, key, inputs) in enumerate(self._plan):
            env[name] = self.layers[key](*(env[n] for n in inputs))
            for n in inputs:  # free activations early: training memory stays small
                if self._last_use.get(n) == i and n not in outputs:
                    env.pop(n, None)
        return env[self.graph.outputs[0]]

    def param_modules(self):
        """(node name, module) for every node with parameters (convs, BNs, fcs)."""
        for name, key, _ in self._plan:
            m = self.layers[key]
            inner = m.inner if isinstance(m, Padded) else m
            if isinstance(inner, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
                yield name, inner

    def named_arrays(self):
        """(project name, tensor) of every parameter and BN running statistic."""
        for name, m in self.param_modules():
            names = O.BatchNorm.torch_names if isinstance(m, nn.BatchNorm2d) else {"weight": "weight", "bias": "bias"}
            tensors = dict(m.named_parameters(recurse=False)) | dict(m.named_buffers(recurse=False))
            for tname, pname in names.items():
                if tensors.get(tname) is not None:
                    yield f"{name}.{pname}", tensors[tname]

    def export_arrays(self) -> dict[str, np.ndarray]:
        """Every parameter (and BN running statistic) as float32 arrays under the project's names."""
        return {k: t.detach().cpu().numpy().astype(np.float32) for k, t in self.named_arrays()}

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """export_arrays() as tensors: a .pth state dict already in this project's naming, which
        sqnxt-convert passes through unchanged."""
        return {k: torch.from_numpy(v) for k, v in self.export_arrays().items()}

    @torch.no_grad()
    def load_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Set every parameter from `<node>.<param>` arrays (exactly the graph's set)."""
        from ..graph.graph import check_weights
        check_weights(self.graph, arrays)
        for key, tensor in self.named_arrays():
            tensor.copy_(torch.from_numpy(np.asarray(arrays[key])))
