"""pytorchcv state dicts -> the zoo's parameter names, and which SqueezeNext a state dict is.

The zoo's pytorchcv-family graphs name their nodes after pytorchcv's module paths, so the
mapping is a few generic rules rather than a table per model. pytorchcv wraps every conv in
a ConvBlock `P` holding `P.conv` (nn.Conv2d) and `P.bn` (nn.BatchNorm2d); the zoo has a conv
node `P` followed by a batch-norm node `P.bn`:
    P.conv.weight / P.conv.bias      -> P.weight / P.bias
    B.weight / B.bias                -> B.gamma / B.beta      (B any batch norm)
    B.running_mean / B.running_var   -> B.mean / B.var
    B.num_batches_tracked            -> dropped (training bookkeeping)
    anything else (e.g. output.weight of the nn.Linear) keeps its name.
A batch norm is recognised by its `running_mean`, a ConvBlock by its `P.bn` batch norm,
so a module that merely happens to be called `conv` or `bn` is left alone.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from ..errors import UserError
from ..graph import ops as O

# pytorchcv's SqueezeNext names: units per stage -> version, stem channels -> width suffix
# (pytorchcv scales the 64-channel stem with the width, unlike the paper's Caffe files).
_VERSIONS = {(6, 6, 8, 1): "23", (2, 4, 14, 1): "23v5"}
_WIDTHS = {64: "w1", 96: "w3d2", 128: "w2"}
_STEM = "features.init_block.conv.conv.weight"

def convert_pytorchcv(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The state dict's arrays under the zoo's `<node>.<param>` names (same order)."""
    state = _strip_data_parallel(state)
    bns = {k[: -len(".running_mean")] for k in state if k.endswith(".running_mean")}
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module in bns:
            if param == "num_batches_tracked":
                continue
            if param not in O.BatchNorm.torch_names:
                raise UserError(f"unexpected batch-norm entry {key}")
            name = f"{module}.{O.BatchNorm.torch_names[param]}"
        elif module.endswith(".conv") and module[: -len(".conv")] + ".bn" in bns:
            name = f"{module[: -len('.conv')]}.{param}"
        else:
            name = key
        if name in out:
            raise UserError(f"{key} and another entry both map to {name}")
        out[name] = value
    return out


def _strip_data_parallel(state):
    """nn.DataParallel saves every key under `module.`; the model's own names follow."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def recognise_pytorchcv(state: Mapping[str, np.ndarray]) -> str | None:
    """pytorchcv's model name (sqnxt23_w1, sqnxt23v5_w3d2, ...) for a SqueezeNext state dict,
    from its units per stage and stem width; None when it is not one of the six."""
    state = _strip_data_parallel(state)
    units: dict[int, set[int]] = {}
    for key in state:
        m = re.match(r"features\.stage(\d+)\.unit(\d+)\.", key)
        if m:
            units.setdefault(int(m[1]), set()).add(int(m[2]))
    depths = tuple(len(units[s]) for s in sorted(units))
    if sorted(units) != list(range(1, len(units) + 1)) or depths not in _VERSIONS:
        return None
    stem = state.get(_STEM)
    if stem is None or np.ndim(stem) != 4 or stem.shape[0] not in _WIDTHS:
        return None
    return f"sqnxt{_VERSIONS[depths]}_{_WIDTHS[stem.shape[0]]}"
