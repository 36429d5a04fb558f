"""What sqnxt-train's CPU settings buy: seconds per training step of each network, three ways.

  nchw            torch's default layout; the shift through functional.shift_into (one slice
                  assignment per channel group); glibc's malloc as it comes
  channels-last   activations channels-last (what train.train does on the CPU); the shift through
                  sqnxt_engine/train/_shift.pyx, one gather pass
  + reuse memory  the above, and train.reuse_freed_memory (malloc keeps freed blocks for the next
                  tensor instead of mapping fresh pages: no first-touch page faults)

One training step = forward, cross-entropy, backward and a Nesterov SGD step on a batch of 128
normalised 28x28 images, exactly the operations of train.train's loop (the batch is random: the
data do not change the work). Each (network, setting) runs in its own process, since the malloc
setting cannot be undone, with --warmup untimed steps, then --steps timed ones. It prints the
process's CPU time per step (time.process_time; page faults count as the kernel time they take)
and the wall clock, and each setting's speed-up over nchw. Ratios, not absolute times, are the
result: the machine is shared.

    python benchmarks/train_step.py [--models ResNet-20 ShiftResNet-20-e6] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

MODELS = ["1.0-SqNxt-23v5", "1.0-Shift-SqNxt-23v5", "ResNet-20", "ShiftResNet-20-e3", "ShiftResNet-20-e6"]
SETTINGS = ["nchw", "channels-last", "+ reuse memory"]


def worker(arch: str, setting: str, threads: int, warmup: int, steps: int) -> dict:
    import torch

    from sqnxt_engine import zoo
    from sqnxt_engine.train.torch_graph import GraphModule
    from sqnxt_engine.train.train import fashion_mnist_options, reuse_freed_memory
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if setting == "+ reuse memory":
        reuse_freed_memory()
    layout = torch.contiguous_format if setting == "nchw" else torch.channels_last
    model = GraphModule(zoo.build(arch, **fashion_mnist_options(arch))).train().to(memory_format=layout)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(128, 1, 28, 28).contiguous(memory_format=layout)
    y = torch.randint(0, 10, (128,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    return {"cpu": (time.process_time() - cpu) / steps, "wall": (time.perf_counter() - wall) / steps}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: CPU time is the work)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "SETTING"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.threads, args.warmup, args.steps)))
        return 0
    print(f"seconds per training step (batch 128), {args.threads} thread(s), {args.steps} steps after "
          f"{args.warmup} warm-up; CPU time (wall clock)")
    print(f"| network | {' | '.join(SETTINGS)} | speed-up, CPU time |")
    print("|---|" + "---|" * (len(SETTINGS) + 1))
    for arch in args.models:
        got = {}
        for setting in SETTINGS:
            out = subprocess.run([sys.executable, __file__, "--worker", arch, setting, "--threads", str(args.threads),
                                  "--warmup", str(args.warmup), "--steps", str(args.steps)],
                                 check=True, capture_output=True, text=True).stdout
            got[setting] = json.loads(out.strip().splitlines()[-1])
        cells = [f"{got[s]['cpu']:.3f} ({got[s]['wall']:.3f})" for s in SETTINGS]
        ups = " / ".join(f"{got['nchw']['cpu'] / got[s]['cpu']:.2f}x" for s in SETTINGS[1:])
        print(f"| {arch} | {' | '.join(cells)} | {ups} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
