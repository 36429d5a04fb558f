"""Training (sqnxt-train's library): any zoo SqueezeNext on Fashion-MNIST with PyTorch, optionally
magnitude-pruned, exported through io.convert into this project's .npz weight file.

PyTorch is an optional extra (`pip install ".[train]"`), used here only; the engine never imports
it. The torch module is built from the zoo's graph (torch_graph.GraphModule), so the network that
is trained is the one the engine runs and the emulator simulates.

Recipe (the defaults; every number is an option):
  data          Fashion-MNIST train split (60,000), normalised (x - 72.94) / 90.02 in pixel
                units (the train set's mean and std); test split (10,000) only for the final score
  augmentation  random crop 28 from the image zero-padded by 2 (in pixel space), horizontal flip p=0.5
  optimiser     SGD, momentum 0.9, Nesterov, batch 128, weight decay 5e-4 on conv/fc weights only
  schedule      learning rate 0.1, linear warm-up over the first 200 steps, cosine to 0
  seed          0 (torch, numpy: initialisation, shuffling, augmentation)
Pruning (--prune S, usually with --init a dense .npz): every conv and fc weight tensor loses the
fraction S of its entries of smallest magnitude (per layer, so that each layer is S sparse, which
is what the accelerator's zero skipping sees per layer); biases and batch norms are kept. The
masks are kept through fine-tuning (weights re-zeroed after every step), so zeros stay zeros.
"""
from __future__ import annotations

import json
import math
import platform
import shlex
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import zoo
from ..errors import UserError
from ..io.images import PRESETS

# the normalisation of the shipped weights: the "fashion-mnist" preset (train split's mean and std)
FMNIST_MEAN, FMNIST_STD = PRESETS["fashion-mnist"].mean[0], PRESETS["fashion-mnist"].std[0]
SMALL_INPUT = {"small_input": True, "stem_stride": 2, "input_size": 28, "in_channels": 1, "num_classes": 10}


@dataclass
class Recipe:
    epochs: int = 6
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 200
    crop_pad: int = 2
    flip: bool = True
    seed: int = 0
    prune: float = 0.0


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
    correct = 0
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = torch.from_numpy(normalise(images[s:s + batch_size]))
            correct += int((model(x).argmax(1).numpy() == labels[s:s + batch_size]).sum())
    return 100.0 * correct / max(len(images), 1)


def train(model, images: np.ndarray, labels: np.ndarray, recipe: Recipe, masks=None, log=print):
    """Train in place with the recipe; masks (from magnitude_masks) keep pruned weights at zero."""
    torch = _torch()
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
    mask_list = [(w, masks[name]) for name, w in weight_tensors(model)] if masks else []
    step = 0
    for epoch in range(recipe.epochs):
        model.train()
        t0, seen, correct, loss_sum = time.time(), 0, 0, 0.0
        order = torch.randperm(len(images), generator=gen)
        for s in range(0, len(images), recipe.batch_size):
            idx = order[s:s + recipe.batch_size]
            xb = augment(x_all[idx], recipe.crop_pad, recipe.flip, gen)
            yb = y_all[idx]
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            out = model(xb)
            loss = torch.nn.functional.cross_entropy(out, yb)
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
        log(f"epoch {epoch + 1}/{recipe.epochs}: loss {loss_sum / seen:.4f}, train acc "
            f"{100.0 * correct / seen:.2f}%, {time.time() - t0:.0f} s")
    return model


def convert_args(pth, output, arch: str, options: dict, float16: bool) -> list[str]:
    """The sqnxt-convert arguments equivalent to train_and_export's conversion of a training
    export (recorded in the manifest, so that the conversion can be repeated by hand)."""
    return ([str(pth), "-o", str(output), "--model", arch, "--zoo-options", json.dumps(options),
             "--preprocess", "fashion-mnist", "--labels", "fashion-mnist"] + ["--float16"] * float16)


def train_and_export(arch: str, output, options: dict, recipe: Recipe, init=None,
                     limit_train: int | None = None, limit_test: int | None = None, threads: int = 2,
                     float16: bool = False, force: bool = False, command: str = "",
                     log=print) -> dict:
    """Train the zoo model `arch` (built with `options`) on Fashion-MNIST with `recipe`, starting
    from the weight file `init` if given, and write it as the weight file `output` (beside it the
    training record, `<output>.train.json`); returns that record. `command` is recorded as the
    command line that asked for it."""
    torch = _torch()
    from ..io.convert import convert
    from ..io.datasets import load_dataset
    from ..io.files import check_out, write_atomic
    from ..io.weights import load_weights
    from .torch_graph import GraphModule

    output = Path(output)
    record_path = output.with_suffix(".train.json")
    check_out(output, force)  # both, before hours of training
    check_out(record_path, force)
    torch.manual_seed(recipe.seed)
    np.random.seed(recipe.seed)
    torch.set_num_threads(threads)
    arch = zoo.canonical(arch)
    graph = zoo.build(arch, **options)
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
    t0 = time.time()
    if recipe.epochs:
        train(model, x_train, y_train, recipe, masks, log)
    seconds = time.time() - t0
    acc = torch_accuracy(model, x_test, y_test)
    log(f"test top-1 (PyTorch, float32): {acc:.2f}%")

    with tempfile.TemporaryDirectory() as tmp:
        pth = Path(tmp) / (output.stem + ".pth")
        torch.save(model.export_state_dict(), pth)
        log("as: sqnxt-convert " + shlex.join(convert_args(pth, output, arch, options, float16)))
        convert(pth, output, arch, options, preprocess="fashion-mnist", labels="fashion-mnist",
                float16=float16, force=force)
    arrays, _ = load_weights(output, graph)
    zeros, total = sparsity_of(arrays, graph)
    record = {"architecture": arch, "zoo_options": options, "dataset": "fashion-mnist",
              "recipe": asdict(recipe), "init": Path(init).name if init else None,
              "command": command, "train_images": len(x_train),
              "training_seconds": round(seconds, 1), "threads": threads,
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "torch": torch.__version__, "test_images": len(x_test), "torch_top1_float32": round(acc, 2),
              "weight_sparsity": round(zeros / total, 4), "float16": float16}
    text = json.dumps(record, indent=2) + "\n"
    write_atomic(record_path, lambda f: f.write(text.encode()), force)
    return record
