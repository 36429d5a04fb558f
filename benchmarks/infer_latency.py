"""Inference latency and peak memory: this engine beside onnxruntime (CPU) and PyTorch.

The same sqnxt23v5_w1 weights (pytorchcv's definition, seeded) run in all three. Each engine lives
in its own worker process (so its peak memory is its own), all workers stay alive, and the parent
asks them for one forward pass at a time in a shuffled round-robin: on a shared, noisy machine
every engine sees the same noise. Same thread count everywhere.

    python benchmarks/infer_latency.py [--threads 1] [--rounds 40] [--batches 1 16]

Needs torch, pytorchcv (--no-deps) and onnxruntime: the README's test install plus
`pip install onnx onnxruntime`.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINES = ("sqnxt-engine", "onnxruntime", "pytorch")


def prepare(workdir: Path) -> None:
    """The shared artefacts: a .pth converted to .npz by sqnxt-convert, and an ONNX export."""
    import torch
    from pytorchcv.models.squeezenext import sqnxt23v5_w1

    from sqnxt_engine.cli.convert import main as convert

    torch.manual_seed(0)
    model = sqnxt23v5_w1().eval()
    torch.save(model.state_dict(), workdir / "model.pth")
    if convert([str(workdir / "model.pth"), "-o", str(workdir / "model.npz"), "--force"]) != 0:
        raise SystemExit("conversion failed")
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(workdir / "model.onnx"),
                      input_names=["x"], dynamic_axes={"x": {0: "n"}}, dynamo=False)


def worker(engine: str, batch: int, threads: int, workdir: Path) -> None:
    """Load one engine, then answer 'run' with the seconds one forward pass took, and 'quit' with
    the process's peak resident memory."""
    import numpy as np

    x = np.random.default_rng(0).normal(size=(batch, 3, 224, 224)).astype(np.float32)
    if engine == "sqnxt-engine":
        from sqnxt_engine.io.model import load_model
        from sqnxt_engine.runtime import Runner
        graph, arrays, _ = load_model(workdir / "model.npz")
        runner = Runner(graph, arrays)
        forward = lambda: runner(x)  # noqa: E731
    elif engine == "onnxruntime":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(workdir / "model.onnx"), so, providers=["CPUExecutionProvider"])
        forward = lambda: sess.run(None, {"x": x})  # noqa: E731
    else:
        import torch
        from pytorchcv.models.squeezenext import sqnxt23v5_w1
        torch.set_num_threads(threads)
        model = sqnxt23v5_w1().eval()
        model.load_state_dict(torch.load(workdir / "model.pth", weights_only=True))
        xt = torch.from_numpy(x)

        def forward():
            with torch.inference_mode():
                return model(xt)
    for _ in range(3):
        forward()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "run":
            t = time.perf_counter()
            forward()
            print(time.perf_counter() - t, flush=True)
        else:
            break
    print(peak_rss_mib(), flush=True)


def peak_rss_mib() -> float:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries that across
    exec, so a worker would report the parent's peak (which loaded torch to export the model)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(batches, threads, rounds, workdir: Path) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    procs = {}
    for batch in batches:
        for engine in ENGINES:
            p = subprocess.Popen([sys.executable, __file__, "--worker", engine, "--batch", str(batch),
                                  "--threads", str(threads), "--workdir", str(workdir)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            if p.stdout.readline().strip() != "ready":
                raise SystemExit(f"{engine} worker failed to start")
            procs[(engine, batch)] = p
    times = {k: [] for k in procs}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(procs)
        rng.shuffle(order)
        for k in order:
            procs[k].stdin.write("run\n")
            procs[k].stdin.flush()
            times[k].append(float(procs[k].stdout.readline()))
    rows = []
    for (engine, batch), p in procs.items():
        p.stdin.write("quit\n")
        p.stdin.flush()
        peak = float(p.stdout.readline())
        p.wait()
        ts = sorted(times[(engine, batch)])
        rows.append({"engine": engine, "batch": batch, "median_ms": statistics.median(ts) * 1e3,
                     "p10_ms": ts[len(ts) // 10] * 1e3, "p90_ms": ts[(9 * len(ts)) // 10] * 1e3,
                     "peak_mib": peak})
    for r in rows:
        base = {e: next(q["median_ms"] for q in rows if q["engine"] == e and q["batch"] == r["batch"])
                for e in ("onnxruntime", "pytorch")}
        r["vs_onnxruntime"] = r["median_ms"] / base["onnxruntime"]
        r["vs_pytorch"] = r["median_ms"] / base["pytorch"]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.batch, args.threads, args.workdir)

    with tempfile.TemporaryDirectory() as d:
        prepare(Path(d))
        rows = measure(args.batches, args.threads, args.rounds, Path(d))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    from sqnxt_engine.cli.common import format_table
    print(f"sqnxt23v5_w1, {args.threads} thread(s), {args.rounds} interleaved rounds, "
          f"median of each; ratios are this row's median over the peer's")
    print(format_table([{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]))


if __name__ == "__main__":
    main()
