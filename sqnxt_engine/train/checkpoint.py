"""Training state saved after every epoch (sqnxt-train --checkpoint FILE), so that a run that is
stopped (the process killed, the machine taken back, a session's time used up) continues from its
last finished epoch when the same command is run again, and ends with the same weights as one
uninterrupted run on the same device and thread count.

What an epoch boundary needs, and nothing else: the module's parameters and buffers (batch-norm
statistics), the optimiser's momentum buffers, the step count (the learning rate is a function of
it), the batch generator's state (shuffling and augmentation draw from it), and the seconds trained
so far. Pruning masks are not saved: they are recomputed from the --init file before the state is
restored. The optimiser's hyper-parameters come from the recipe, not from the file. It also keeps
the run's parts so far (epochs, torch threads, device of each stretch between stops), which are
recorded, not checked: a run may be continued on another thread count or device, and the manifest
says which epochs ran how.

The file carries the identity of the run that wrote it (network, zoo options, recipe, the sha256 of
the --init file, the number of training images). A checkpoint of any other run is refused with
one line instead of being continued: resuming a different recipe would silently train a model no
command describes.

Format and threat model: an `.npz` of plain arrays (`model.<name>`, `momentum.<index>`,
`generator`) plus one JSON string under `__meta__`, the weight files' container (io/weights.py's
write_npz_with_meta and read_npz_with_meta); it is read through io/npz.py,
which bounds every size before anything is inflated and never unpickles, so a file swapped in by
someone else can at worst be refused.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError

FORMAT = 2  # 2: parts (epochs, threads, device) replace the list of epochs continued at


def run_parts(earlier: list[dict], first_epoch: int, last_epoch: int, setting: dict) -> list[dict]:
    """A run's parts, one per stretch between stops, each {"epochs": [first, last], "threads",
    "device"}: the `earlier` ones, then the current one from `first_epoch` (1-based) to
    `last_epoch` with `setting`, if it has trained an epoch yet. A run never stopped has one."""
    if last_epoch < first_epoch:
        return list(earlier)
    return earlier + [{"epochs": [first_epoch, last_epoch], **setting}]


class Checkpoint:
    """The training state of one run at `path`. identity: plain JSON values that must match for a
    saved state to be continued (see the module's docstring); setting: how this part of the run
    trains ({"threads": n, "device": name}), recorded in its part."""

    def __init__(self, path, identity: dict, setting: dict):
        self.path = Path(path)
        self.identity = json.loads(json.dumps({"format": FORMAT, **identity}))  # as it reads back
        self.setting = dict(setting)
        self.earlier_parts: list[dict] = []  # the parts before the last stop, as read back
        self.first_epoch = 1  # this part's first epoch (1-based)

    def parts(self, last_epoch: int) -> list[dict]:
        """The run's parts up to `last_epoch` (run_parts)."""
        return run_parts(self.earlier_parts, self.first_epoch, last_epoch, self.setting)

    def save(self, model, optimizer, generator, progress: dict) -> None:
        """Write the state after an epoch (progress: epoch, step, seconds), atomically: a run
        killed while saving leaves the previous epoch's file."""
        from ..io.weights import write_npz_with_meta
        arrays = {f"model.{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        for index, state in optimizer.state_dict()["state"].items():
            if state.get("momentum_buffer") is not None:
                arrays[f"momentum.{index}"] = state["momentum_buffer"].detach().cpu().numpy()
        arrays["generator"] = generator.get_state().numpy()
        meta = json.dumps({"identity": self.identity, "parts": self.parts(progress["epoch"]), **progress},
                          allow_nan=False)
        write_npz_with_meta(self.path, arrays, meta, force=True)

    def restore(self, model, optimizer, generator, epochs: int | None = None,
                steps_per_epoch: int | None = None) -> dict | None:
        """Load a saved state into the three objects and return its progress (epoch, step,
        seconds), or None when there is no file yet. Every value is checked against the run first
        (the recipe's `epochs`, its `steps_per_epoch` where given; the arrays' names, shapes and
        dtypes against the three objects): a file that does not fit is refused as damaged, left
        as it is, and nothing is loaded."""
        import torch

        from ..io.weights import read_npz_with_meta
        if not self.path.exists():
            return None
        try:
            arrays, meta = read_npz_with_meta(self.path, "a sqnxt-train checkpoint")
        except UserError as e:
            raise UserError(f"{self.path}: {e}") from None
        theirs = meta.get("identity") if isinstance(meta, dict) else None
        if not isinstance(theirs, dict):
            raise UserError(f"{self.path}: not a sqnxt-train checkpoint (no identity)")
        if theirs != self.identity:
            keys = sorted(k for k in self.identity.keys() | theirs.keys() if theirs.get(k) != self.identity.get(k))
            raise UserError(f"{self.path}: written by a different run ({', '.join(keys)} differ); "
                            f"remove it or name another --checkpoint")
        _check_progress(self.path, meta, epochs, steps_per_epoch)
        _check_arrays(self.path, arrays, model, optimizer, generator)
        try:
            progress = {k: meta[k] for k in ("epoch", "step", "seconds")}
            self.earlier_parts = [{"epochs": [int(part["epochs"][0]), int(part["epochs"][1])],
                                   "threads": int(part["threads"]), "device": str(part["device"])}
                                  for part in meta["parts"]]
            self.first_epoch = int(progress["epoch"]) + 1
            model.load_state_dict({k[6:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("model.")})
            momentum = {int(k[9:]): {"momentum_buffer": torch.from_numpy(v)}
                        for k, v in arrays.items() if k.startswith("momentum.")}
            optimizer.load_state_dict({"state": momentum, "param_groups": optimizer.state_dict()["param_groups"]})
            generator.set_state(torch.from_numpy(arrays["generator"]))
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:  # missing or misshapen entries
            raise UserError(f"{self.path}: a damaged checkpoint ({type(e).__name__}: {str(e)[:120]})") from None
        return progress

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _damaged(path, what: str) -> UserError:
    return UserError(f"{path}: a damaged checkpoint ({what}); remove it or name another --checkpoint")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_progress(path, meta: dict, epochs: int | None, steps_per_epoch: int | None) -> None:
    """epoch, step, seconds and parts as this run could have written them: integers in range
    (an epoch after the recipe's last, or a step count other than the epochs' steps, would train
    a schedule no command describes), parts covering epochs 1..epoch one after another."""
    for key in ("epoch", "step", "seconds", "parts"):
        if key not in meta:
            raise _damaged(path, f"no {key}")
    epoch, step, seconds, parts = (meta[k] for k in ("epoch", "step", "seconds", "parts"))
    last = epochs if epochs is not None else 1 << 31
    if not _is_int(epoch) or not 1 <= epoch <= last:
        raise _damaged(path, f"epoch {epoch!r:.40} is not a whole number from 1 to {last}")
    if not _is_int(step) or step < 0 or (steps_per_epoch is not None and step != epoch * steps_per_epoch):
        want = f"{epoch * steps_per_epoch:,}" if steps_per_epoch is not None else "a whole number >= 0"
        raise _damaged(path, f"step {step!r:.40} after {epoch} epochs, not {want}")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
        raise _damaged(path, f"seconds {seconds!r:.40} is not a finite number >= 0")
    if not isinstance(parts, list) or not parts:
        raise _damaged(path, f"parts {parts!r:.40} is not a list of the run's parts")
    following = 1
    for part in parts:
        ok = (isinstance(part, dict) and set(part) == {"epochs", "threads", "device"}
              and isinstance(part["epochs"], list) and len(part["epochs"]) == 2
              and all(_is_int(e) for e in part["epochs"]) and part["epochs"][0] == following
              and following <= part["epochs"][1] <= epoch
              and _is_int(part["threads"]) and part["threads"] >= 1
              and isinstance(part["device"], str) and len(part["device"]) <= 200)
        if not ok:
            raise _damaged(path, f"part {part!r:.80} does not follow epochs 1..{following - 1}")
        following = part["epochs"][1] + 1
    if following != epoch + 1:
        raise _damaged(path, f"its parts end at epoch {following - 1}, not at epoch {epoch}")


def _check_arrays(path, arrays: dict, model, optimizer, generator) -> None:
    """Every array named as the objects name theirs, of their shape and dtype: model.<name> for
    each entry of the module's state, momentum.<index> for a parameter of the optimiser, generator;
    float values finite."""
    import numpy as np
    import torch
    want = {f"model.{k}": v for k, v in model.state_dict().items()}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    want.update({f"momentum.{i}": p for i, p in enumerate(params)})
    want["generator"] = generator.get_state()
    for name, a in arrays.items():
        ref = want.get(name)
        if ref is None:
            raise _damaged(path, f"an array {name!r:.60} that this run does not have")
        shape, dtype = tuple(ref.shape), torch.empty(0, dtype=ref.dtype).numpy().dtype
        if a.shape != shape or a.dtype != dtype:
            raise _damaged(path, f"{name} is {a.dtype} {a.shape}, this run's is {dtype} {shape}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise _damaged(path, f"{name} holds NaN or infinite values")
    missing = [k for k in want if not k.startswith("momentum.") and k not in arrays]
    if missing:
        raise _damaged(path, f"no array {missing[0]!r:.60}")
