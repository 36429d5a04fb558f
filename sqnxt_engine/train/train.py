"""Training (sqnxt-train's library): a zoo network (any SqueezeNext, the CIFAR ResNets and
ShiftResNets) on Fashion-MNIST with PyTorch, optionally magnitude-pruned, exported through
io.convert into this project's .npz weight file.

PyTorch is an optional extra (`pip install ".[train]"`), used here only; the engine never imports
it. The torch module is built from the zoo's graph (torch_graph.GraphModule), so the network that
is trained is the one the engine runs and the emulator simulates.

Recipe (the defaults; every number is an option):
  data          Fashion-MNIST train split (60,000), normalised (x - 72.94) / 90.02 in pixel
                units (the train set's mean and std); test split (10,000) only for the final score
  augmentation  random crop 28 from the image zero-padded by 2 (in pixel space), horizontal flip p=0.5;
                optional random erasing (Zhong et al., arXiv 1708.04896: --erase-p, a rectangle
                of 2-25% of the image filled with N(0, 1) noise, the normalised data's own scale)
  loss          cross-entropy; optional label smoothing (--label-smoothing)
  optimiser     SGD, momentum 0.9, Nesterov, batch 128, weight decay 5e-4 on conv/fc weights only
  schedule      learning rate 0.1, linear warm-up over the first 200 steps, cosine to 0, 30 epochs
  seed          0 (torch, numpy: initialisation, shuffling, augmentation)
  device        "auto": CUDA when torch sees a GPU, else the CPU (batches are augmented on the
                CPU, so a seed gives the same batches on both)
Erasing and smoothing are off by default: in the short runs this project could afford
(benchmarks/recipe_ablation.py, docs/shift.md) both lowered held-out top-1; they stay options for
a full-length comparison. The shipped files had 5 epochs and were still improving, hence 30.
Pruning (--prune S, usually with --init a dense .npz): every conv and fc weight tensor loses the
fraction S of its entries of smallest magnitude (per layer, so that each layer is S sparse, which
is what the accelerator's zero skipping sees per layer); biases and batch norms are kept. The
masks are kept through fine-tuning (weights re-zeroed after every step), so zeros stay zeros.
"""
from __future__ import annotations

import ctypes
import json
import math
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import zoo
from ..errors import UserError
from ..zoo.preprocess import PRESETS

# the normalisation of the shipped weights: the "fashion-mnist" preset (train split's mean and std)
FMNIST_MEAN, FMNIST_STD = PRESETS["fashion-mnist"].mean[0], PRESETS["fashion-mnist"].std[0]
SMALL_INPUT = {"small_input": True, "stem_stride": 2, "input_size": 28, "in_channels": 1, "num_classes": 10}
# the CIFAR ResNets keep their stride-1 3x3 stem: 28 -> 28 -> 14 -> 7
CIFAR_FORM = {"input_size": 28, "in_channels": 1, "num_classes": 10}
ERASE_MIN_AREA = 0.02  # Zhong et al.'s lower bound on the erased fraction of the image
ERASE_ASPECT = (0.3, 1 / 0.3)  # their range of the rectangle's aspect ratio (log-uniform here)


def fashion_mnist_options(arch: str) -> dict:
    """The zoo options of a network's Fashion-MNIST form: grey 28x28 input, 10 classes;
    SqueezeNexts take the small-input stem (3x3, stride 2, no max pool)."""
    from ..zoo import resnet
    return dict(CIFAR_FORM if resnet.spec_from_name(zoo.canonical(arch)) is not None else SMALL_INPUT)


@dataclass
class Recipe:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 200
    crop_pad: int = 2
    flip: bool = True
    erase_p: float = 0.0
    erase_max_area: float = 0.25
    label_smoothing: float = 0.0
    seed: int = 0
    prune: float = 0.0

    def __post_init__(self):
        """Each value in its range (a recipe comes from a command line or a checkpoint's run):
        UserError naming the option otherwise."""
        for name, lo, hi, closed in _RECIPE_RANGES:
            v = getattr(self, name)
            kind = int if isinstance(getattr(Recipe, name), int) else float
            typed = isinstance(v, (int, float)) and not isinstance(v, bool) and (kind is float or isinstance(v, int))
            inside = typed and math.isfinite(v) and lo <= v and (v <= hi if closed else v < hi)
            if not inside:
                what = "a whole number" if kind is int else "a number"
                span = f"{lo:,} to {hi:,}" if kind is int else f"{lo:g} to {hi:g}"
                raise UserError(f"--{name.replace('_', '-')} must be {what} from {span}"
                                f"{'' if closed else ' (not included)'}, got {v!r:.40}")
        if not isinstance(self.flip, bool):
            raise UserError(f"recipe: flip must be true or false, got {self.flip!r:.40}")


# (field, lowest, highest, highest allowed): the ranges where training means what it says
# (crop_pad: at most the 28-pixel side of the images; a wider border pads each batch to
# gigabytes of mostly padding)
_RECIPE_RANGES = (
    ("epochs", 0, 100_000, True), ("batch_size", 1, 1 << 20, True), ("lr", 0, 1e6, True),
    ("momentum", 0, 1, False), ("weight_decay", 0, 1e6, True), ("warmup_steps", 0, 1 << 40, True),
    ("crop_pad", 0, 28, True), ("erase_p", 0, 1, True), ("erase_max_area", 0, 1, True),
    ("label_smoothing", 0, 1, True), ("seed", 0, (1 << 32) - 1, True), ("prune", 0, 1, False),
)


def _torch():
    try:
        import torch
    except ImportError:
        raise UserError('training needs PyTorch: pip install ".[train]"') from None
    return torch


def normalise(images_u8: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28), as the shipped weights' preprocessing does."""
    return ((images_u8.astype(np.float32) - np.float32(FMNIST_MEAN)) / np.float32(FMNIST_STD))[:, None]


def augment(batch, pad: int, flip: bool, gen):
    """Random crop (zero padding in pixel space = -mean/std after normalisation) and h-flip."""
    torch = _torch()
    n, c, h, w = batch.shape
    if pad:
        fill = -FMNIST_MEAN / FMNIST_STD
        padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad), value=fill)
        oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        rows = (oy[:, None] + torch.arange(h))[:, None, :, None].expand(n, c, h, w + 2 * pad)
        padded = padded.gather(2, rows)
        cols = (ox[:, None] + torch.arange(w))[:, None, None, :].expand(n, c, h, w)
        batch = padded.gather(3, cols)
    if flip:
        flipped = torch.rand(n, generator=gen) < 0.5
        batch = torch.where(flipped[:, None, None, None], batch.flip(3), batch)
    return batch


def random_erase(batch, p: float, max_area: float, gen):
    """Random erasing: each image, with probability p, has one rectangle of ERASE_MIN_AREA to
    max_area of its area (aspect ratio log-uniform in ERASE_ASPECT, clipped to the image) replaced
    by N(0, 1) noise. Vectorised over the batch: one mask, no per-image loop."""
    torch = _torch()
    if p <= 0:
        return batch
    n, c, h, w = batch.shape
    area = h * w * (ERASE_MIN_AREA + (max_area - ERASE_MIN_AREA) * torch.rand(n, generator=gen))
    lo, hi = math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])
    ratio = torch.exp(lo + (hi - lo) * torch.rand(n, generator=gen))
    eh = torch.sqrt(area * ratio).round().clamp(1, h).long()
    ew = torch.sqrt(area / ratio).round().clamp(1, w).long()
    y0 = (torch.rand(n, generator=gen) * (h - eh + 1)).long()
    x0 = (torch.rand(n, generator=gen) * (w - ew + 1)).long()
    rows = (torch.arange(h) >= y0[:, None]) & (torch.arange(h) < (y0 + eh)[:, None])
    cols = (torch.arange(w) >= x0[:, None]) & (torch.arange(w) < (x0 + ew)[:, None])
    chosen = torch.rand(n, generator=gen) < p
    mask = (rows[:, :, None] & cols[:, None, :] & chosen[:, None, None])[:, None]
    return torch.where(mask, torch.randn(batch.shape, generator=gen), batch)


def reuse_freed_memory() -> None:
    """Ask glibc's malloc to serve large blocks from its heap and keep what is freed there for
    the next tensor, instead of mapping fresh pages for every large tensor (its default above
    32 MB, and by default above 128 kB until such a block is freed) and unmapping them again: a
    training step allocates and frees the same activation sizes hundreds of times, and every fresh
    page costs a page fault on first touch. On this project's 2-core virtual machine that was
    half of a ShiftResNet-20-e6 training step (docs/shift.md, "Training time on the CPU"). The
    process keeps its peak memory instead of returning it. Other C libraries: nothing happens."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_max = -1, -4  # glibc's malloc.h
    mallopt(m_mmap_max, 0)
    mallopt(m_trim_threshold, 2**31 - 1)


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda' without one is a user error."""
    torch = _torch()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no CUDA device (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, not {name!r}")
    return name


def device_name(device: str) -> str:
    """How the training record names the device: 'cpu', or 'cuda (<GPU model>)'."""
    return f"cuda ({_torch().cuda.get_device_name()})" if device == "cuda" else "cpu"


def weight_tensors(model):
    """(name, parameter) of every conv and fc weight: what pruning and weight decay act on."""
    from torch import nn
    return [(f"{name}.weight", m.weight) for name, m in model.param_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))]


def magnitude_masks(model, sparsity: float) -> dict:
    """Per layer: zero the `sparsity` fraction of smallest-magnitude weights; returns the masks."""
    torch = _torch()
    if not 0.0 <= sparsity < 1.0:
        raise UserError(f"sparsity must be in [0, 1), got {sparsity}")
    masks = {}
    with torch.no_grad():
        for name, w in weight_tensors(model):
            k = int(round(sparsity * w.numel()))
            mask = torch.ones_like(w, dtype=torch.bool)
            if k:
                order = w.abs().flatten().argsort(stable=True)
                mask.view(-1)[order[:k]] = False
            w.mul_(mask)
            masks[name] = mask
    return masks


def sparsity_of(arrays: dict, graph) -> tuple[int, int]:
    """(zeros, total) over the conv and fc weights of a weight dict."""
    from ..graph import ops as O
    zeros = total = 0
    for layer in graph.layers:
        if isinstance(layer.op, (O.Conv2d, O.Linear)):
            w = arrays[f"{layer.name}.weight"]
            zeros += int((w == 0).sum())
            total += w.size
    return zeros, total


def torch_accuracy(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 (percent) of a module on uint8 images, in eval mode."""
    torch = _torch()
    model.eval()
    device = next(model.parameters()).device
    correct = nonfinite = 0
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = torch.from_numpy(normalise(images[s:s + batch_size])).to(device)
            out = model(x)
            nonfinite += int((~torch.isfinite(out).all(1)).sum())
            correct += int((out.argmax(1).cpu().numpy() == labels[s:s + batch_size]).sum())
    if nonfinite:  # a diverged run: argmax of NaN is no prediction
        raise UserError(f"the network's output is NaN or infinite for {nonfinite:,} of {len(images):,} "
                        "test images (training diverged?); no accuracy computed")
    return 100.0 * correct / max(len(images), 1)


def train(model, images: np.ndarray, labels: np.ndarray, recipe: Recipe, masks=None, log=print,
          device: str = "cpu", checkpoint=None) -> float:
    """Train in place with the recipe on `device` (the model moves there; batches are augmented
    on the CPU, then moved); masks (from magnitude_masks) keep pruned weights at zero. With a
    checkpoint (checkpoint.Checkpoint) the state is saved after every epoch, and a saved state is
    continued from. Returns the seconds spent training, over every run that contributed. On the
    CPU the module is moved to the channels-last layout, and the process keeps freed memory from
    then on (reuse_freed_memory)."""
    torch = _torch()
    reuse_freed_memory()
    # channels-last on the CPU: torch's CPU convolutions (oneDNN) run faster in it; 1.3-1.7x per
    # training step across the zoo's Fashion-MNIST networks (docs/shift.md, "Training time on the CPU")
    layout = torch.channels_last if device == "cpu" else torch.contiguous_format
    model.to(device, memory_format=layout)
    gen = torch.Generator().manual_seed(recipe.seed)
    decay = {id(p) for _, p in weight_tensors(model)}
    params = list(model.parameters())
    opt = torch.optim.SGD([{"params": [p for p in params if id(p) in decay], "weight_decay": recipe.weight_decay},
                           {"params": [p for p in params if id(p) not in decay], "weight_decay": 0.0}],
                          lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0)
    steps_per_epoch = math.ceil(len(images) / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    warm = min(recipe.warmup_steps, total // 2)

    def lr_at(step):
        if step < warm:
            return recipe.lr * (step + 1) / warm
        return 0.5 * recipe.lr * (1 + math.cos(math.pi * (step - warm) / max(total - warm, 1)))

    x_all = torch.from_numpy(normalise(images))
    y_all = torch.from_numpy(labels.astype(np.int64))
    mask_list = [(w, masks[name].to(device)) for name, w in weight_tensors(model)] if masks else []
    step = first_epoch = 0
    seconds = 0.0
    saved = checkpoint.restore(model, opt, gen, recipe.epochs, steps_per_epoch) if checkpoint else None
    if saved:
        first_epoch, step, seconds = saved["epoch"], saved["step"], saved["seconds"]
        log(f"continuing from {checkpoint.path}: {first_epoch} of {recipe.epochs} epochs done")
    for epoch in range(first_epoch, recipe.epochs):
        model.train()
        t0, seen, correct, loss_sum = time.time(), 0, 0, 0.0
        order = torch.randperm(len(images), generator=gen)
        for s in range(0, len(images), recipe.batch_size):
            idx = order[s:s + recipe.batch_size]
            xb = augment(x_all[idx], recipe.crop_pad, recipe.flip, gen)
            xb = random_erase(xb, recipe.erase_p, recipe.erase_max_area, gen).to(device, memory_format=layout)
            yb = y_all[idx].to(device)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            out = model(xb)
            loss = torch.nn.functional.cross_entropy(out, yb, label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if mask_list:
                with torch.no_grad():
                    for w, m in mask_list:
                        w.mul_(m)
            step += 1
            seen += len(idx)
            correct += int((out.argmax(1) == yb).sum())
            loss_sum += loss.item() * len(idx)
            if not math.isfinite(loss_sum):  # diverged: every later step, and any accuracy, is NaN
                raise UserError(f"training diverged at epoch {epoch + 1}, step {step}: the loss is "
                                f"{loss.item()}; lower --lr (now {recipe.lr:g})")
        seconds += time.time() - t0
        if checkpoint:
            checkpoint.save(model, opt, gen, {"epoch": epoch + 1, "step": step, "seconds": seconds})
        log(f"epoch {epoch + 1}/{recipe.epochs}: loss {loss_sum / seen:.4f}, train acc "
            f"{100.0 * correct / seen:.2f}%, {time.time() - t0:.0f} s")
    return seconds


def convert_args(pth, output, arch: str, options: dict, float16: bool) -> list[str]:
    """The sqnxt-convert arguments equivalent to train_and_export's conversion of a training
    export (recorded in the manifest, so that the conversion can be repeated by hand)."""
    return ([str(pth), "-o", str(output), "--model", arch, "--zoo-options", json.dumps(options),
             "--preprocess", "fashion-mnist", "--labels", "fashion-mnist"] + ["--float16"] * float16)


def export_weights(model, output, arch: str, options: dict, float16: bool = False, force: bool = False,
                   log=print) -> None:
    """Write a trained GraphModule as the engine's weight file `output`: its PyTorch state
    converted by sqnxt-convert's path (the command that repeats it is logged), with Fashion-MNIST's
    preprocessing and labels."""
    torch = _torch()
    from ..io.convert import convert
    with tempfile.TemporaryDirectory() as tmp:
        pth = Path(tmp) / (Path(output).stem + ".pth")
        torch.save(model.export_state_dict(), pth)
        log("as: sqnxt-convert " + shlex.join(convert_args(pth, output, arch, options, float16)))
        convert(pth, output, arch, options, preprocess="fashion-mnist", labels="fashion-mnist",
                float16=float16, force=force)


def run_record(recipe: Recipe, seconds: float, saver, setting: dict) -> dict:
    """The fields of a finished training run's record (`<weights>.train.json`, what the manifest
    tool reads) that say how it ran: the recipe, the seconds trained over every stop, the parts
    (epochs, threads, device of each stretch between stops: the checkpoint's when there was one,
    else one part in `setting`), the machine and torch."""
    from .checkpoint import run_parts
    return {"recipe": asdict(recipe), "training_seconds": round(seconds, 1),
            "parts": saver.parts(recipe.epochs) if saver else run_parts([], 1, recipe.epochs, setting),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "torch": _torch().__version__}


def write_run_record(path, record: dict, force: bool) -> None:
    """`record` as JSON at `path`, written atomically."""
    from ..io.files import write_atomic
    text = json.dumps(record, indent=2) + "\n"
    write_atomic(path, lambda f: f.write(text.encode()), force)


def train_and_export(arch: str, output, options: dict, recipe: Recipe, init=None,
                     limit_train: int | None = None, limit_test: int | None = None, threads: int = 2,
                     float16: bool = False, force: bool = False, command: str = "",
                     log=print, device: str = "auto", checkpoint=None) -> dict:
    """Train the zoo model `arch` (built with `options`) on Fashion-MNIST with `recipe`, starting
    from the weight file `init` if given, and write it as the weight file `output` (beside it the
    training record, `<output>.train.json`); returns that record. `command` is recorded as the
    command line that asked for it. device: auto, cpu or cuda (resolve_device). checkpoint: a
    path where the training state is kept between epochs (checkpoint.py): a run stopped part-way
    continues from it when called again, and it is removed once the weight file is written."""
    torch = _torch()
    from ..io.datasets import load_dataset
    from ..io.files import check_out
    from ..io.weights import load_weights
    from .torch_graph import GraphModule

    output = Path(output)
    record_path = output.with_suffix(".train.json")
    check_out(output, force)  # both, before hours of training
    check_out(record_path, force)
    if checkpoint:
        check_out(checkpoint, force=True)  # its folder exists; a file there is a regular one
    torch.manual_seed(recipe.seed)
    np.random.seed(recipe.seed)
    torch.set_num_threads(threads)
    device = resolve_device(device)
    arch = zoo.canonical(arch)
    graph = zoo.build(arch, **options)
    if tuple(graph.input_shape) != (1, 28, 28) or graph.output_shape()[0] != 10:
        raise UserError(f"{arch} with zoo options {json.dumps(options)[:120]} takes {graph.input_shape} and "
                        f"gives {graph.output_shape()[0]} classes; Fashion-MNIST needs (1, 28, 28) and 10 "
                        f"(leave --zoo-options out for the Fashion-MNIST form)")
    model = GraphModule(graph)
    if init:
        arrays, _ = load_weights(init, graph)
        model.load_arrays(arrays)
    x_train, y_train = load_dataset("fashion-mnist", "train")
    x_test, y_test = load_dataset("fashion-mnist", "test")
    x_train, y_train = x_train[:limit_train], y_train[:limit_train]
    x_test, y_test = x_test[:limit_test], y_test[:limit_test]
    if init:
        log(f"start ({init}): test top-1 {torch_accuracy(model, x_test, y_test):.2f}%")
    masks = None
    if recipe.prune:
        masks = magnitude_masks(model, recipe.prune)
        log(f"pruned to {recipe.prune:.0%}: test top-1 before fine-tuning {torch_accuracy(model, x_test, y_test):.2f}%")
    from .checkpoint import Checkpoint
    saver = None
    setting = {"threads": threads, "device": device_name(device)}  # recorded with the epochs it trained
    if checkpoint:
        from ..io.weights import sha256_file
        saver = Checkpoint(checkpoint, {"architecture": arch, "zoo_options": options, "recipe": asdict(recipe),
                                        "init_sha256": sha256_file(init) if init else None,
                                        "train_images": len(x_train)}, setting)
    seconds = train(model, x_train, y_train, recipe, masks, log, device, saver) if recipe.epochs else 0.0
    acc = torch_accuracy(model, x_test, y_test)
    log(f"test top-1 (PyTorch, float32): {acc:.2f}%")

    export_weights(model, output, arch, options, float16, force, log)
    arrays, _ = load_weights(output, graph)
    zeros, total = sparsity_of(arrays, graph)
    record = {"architecture": arch, "zoo_options": options, "dataset": "fashion-mnist",
              **run_record(recipe, seconds, saver, setting), "init": Path(init).name if init else None,
              "command": command, "train_images": len(x_train), "test_images": len(x_test),
              "torch_top1_float32": round(acc, 2), "weight_sparsity": round(zeros / total, 4),
              "float16": float16}
    write_run_record(record_path, record, force)
    if saver:
        saver.remove()
    return record
