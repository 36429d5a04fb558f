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

    def restore(self, model, optimizer, generator) -> dict | None:
        """Load a saved state into the three objects and return its progress (epoch, step,
        seconds), or None when there is no file yet."""
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
