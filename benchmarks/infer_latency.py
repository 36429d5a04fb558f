"""Inference latency, throughput and peak memory: this engine beside onnxruntime (CPU) and PyTorch.

Three models, the same weights in all three engines:
- sqnxt23v5_w1 (pytorchcv's definition, seeded; converted to .npz by sqnxt-convert), batch 1 and 16;
- efficientnet-lite0 (efficientnet-lite-pytorch's definition, seeded; converted by sqnxt-convert),
  batch 1 (depthwise convolutions);
- the shipped Fashion-MNIST weights (1.0-SqNxt-23v5-fmnist, 28x28 grey; PyTorch runs the graph
  through sqnxt_engine.train.torch_graph), batch 1 latency and batch 256 throughput (what
  sqnxt-eval does).
Each (engine, model, batch) lives in its own worker process (so its peak memory is its own); for
one thread count all workers stay alive, and the parent asks them for one forward pass at a time
in a shuffled round-robin, so on a shared, noisy machine every engine sees the same noise. The
same thread count everywhere (this engine through sqnxt_engine.runtime.set_threads).

    python benchmarks/infer_latency.py [--threads 1 2] [--rounds 40] [--models ...]
    python benchmarks/infer_latency.py --profile sqnxt23v5_w1 [--batch 1] [--rounds 20]
    python benchmarks/infer_latency.py --products sqnxt23v5_w1 [--threads 1]
    python benchmarks/infer_latency.py --passes fmnist [--batch 1] [--rounds 15] [--threads 1]
    python benchmarks/infer_latency.py --ort-profile sqnxt23v5_w1 [--batch 1] [--rounds 40] [--threads 1]
    python benchmarks/infer_latency.py --simd avx512 avx2 [...]   # this engine once per kernel clone
    python benchmarks/infer_latency.py --baseline SRC [...]       # and this engine as built in SRC

--profile prints where this engine's time goes per operator kind, with the compiled kernels and
with the NumPy reference path (ConvPlan(reference=True), max_pool2d_reference), interleaved;
--products times each convolution's matrix product alone, what no pass around it can remove.
--passes compares the step-by-step pass (Runner.run) with the compiled one (Runner(x)), and splits
the compiled pass's native steps by kind and by the layer they came from (each step timed alone),
interleaved round by round.
--ort-profile prints onnxruntime's own per-node profile summed by node kind, named as --passes
names this engine's layers, to set the two side by side.
--simd runs this engine's compiled kernels with each named clone (sqnxt_engine.functional._infer:
avx512, avx2, baseline), side by side in the same interleaved run (with --profile: one kernels
column per clone); forced avx2 on an AVX-512 CPU stands in for an AVX2-only machine. --baseline
SRC runs this engine a second time, imported from the source tree SRC (another checkout with its
extensions built in place, `python setup.py build_ext --inplace`), in the same interleaved run:
its rows are labelled @base, so a change is measured before and after under the same load. Every
run first prints the CPU model, its vector extensions and the clone the kernels use by default.
Needs torch, pytorchcv and efficientnet-lite-pytorch (--no-deps) and onnxruntime: the README's
test install.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
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
BATCHES = {"sqnxt23v5_w1": (1, 16), "efficientnet-lite0": (1,), "fmnist": (1, 256)}
FMNIST = "1.0-SqNxt-23v5-fmnist"


VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl",
                "avx512_vnni", "avx512_bf16", "amx_tile")


def machine_line() -> str:
    """The CPU model, its vector extensions (from /proc/cpuinfo) and the kernel clones."""
    from sqnxt_engine.functional import _infer
    model, flags = "unknown CPU", set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    runs = [k for k, ok in _infer.simd_clones().items() if ok]
    return (f"cpu: {model}; vector extensions: {' '.join(f for f in VECTOR_FLAGS if f in flags) or 'none known'}; "
            f"kernel clone: {_infer.simd_clone()} (this CPU runs: {', '.join(runs)})")


def engine_label(engine: str, simd: str | None) -> str:
    return engine if simd is None else f"{engine}/{simd}"


def torch_model(model: str, workdir: Path):
    """The PyTorch reference of `model`, in eval mode, with the weights every engine uses."""
    import torch
    if model == "sqnxt23v5_w1":
        from pytorchcv.models.squeezenext import sqnxt23v5_w1
        m = sqnxt23v5_w1()
    elif model == "efficientnet-lite0":
        from efficientnet_lite_pytorch import EfficientNet
        m = EfficientNet.from_name("efficientnet-lite0")
    else:
        from sqnxt_engine.io.model import load_model
        from sqnxt_engine.train.torch_graph import GraphModule
        graph, arrays, _ = load_model(workdir / f"{model}.npz")
        m = GraphModule(graph)
        m.load_arrays(arrays)
        return m.eval()
    m.load_state_dict(torch.load(workdir / f"{model}.pth", weights_only=True))
    return m.eval()


def input_shape(model: str) -> tuple[int, ...]:
    return (1, 28, 28) if model == "fmnist" else (3, 224, 224)


def prepare(model: str, workdir: Path) -> None:
    """The shared artefacts: <model>.npz (sqnxt-convert from a seeded .pth, or the shipped file)
    and <model>.onnx (exported from the PyTorch model)."""
    import shutil

    import torch

    from sqnxt_engine.cli.convert import main as convert
    from sqnxt_engine.io.shipped import shipped_weights

    torch.manual_seed(0)
    if model == "fmnist":
        shutil.copy(shipped_weights(FMNIST), workdir / f"{model}.npz")
    else:
        if model == "sqnxt23v5_w1":
            from pytorchcv.models.squeezenext import sqnxt23v5_w1
            seeded = sqnxt23v5_w1()
        else:
            from efficientnet_lite_pytorch import EfficientNet
            seeded = EfficientNet.from_name("efficientnet-lite0")
        torch.save(seeded.eval().state_dict(), workdir / f"{model}.pth")
        if convert([str(workdir / f"{model}.pth"), "-o", str(workdir / f"{model}.npz"), "--force"]) != 0:
            raise SystemExit(f"{model}: conversion failed")
    # wrapped: the exporter reads `module.graph`, which GraphModule uses for its IR graph
    with contextlib.redirect_stdout(sys.stderr):
        torch.onnx.export(torch.nn.Sequential(torch_model(model, workdir)), torch.zeros((1,) + input_shape(model)),
                          str(workdir / f"{model}.onnx"), input_names=["x"],
                          dynamic_axes={"x": {0: "n"}}, dynamo=False)


def worker(engine: str, model: str, batch: int, threads: int, workdir: Path, simd: str | None = None) -> None:
    """Load one engine, then answer 'run' with the seconds one forward pass took, and 'quit' with
    the process's peak resident memory."""
    import numpy as np

    x = np.random.default_rng(0).normal(size=(batch,) + input_shape(model)).astype(np.float32)
    if engine == "sqnxt-engine":
        from sqnxt_engine.functional import _infer
        from sqnxt_engine.io.model import load_model
        from sqnxt_engine.runtime import Runner, set_threads
        if simd is not None:
            _infer.set_simd(simd)
        set_threads(threads)
        graph, arrays, _ = load_model(workdir / f"{model}.npz")
        runner = Runner(graph, arrays)
        forward = lambda: runner(x)  # noqa: E731
    elif engine == "onnxruntime":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(workdir / f"{model}.onnx"), so, providers=["CPUExecutionProvider"])
        forward = lambda: sess.run(None, {"x": x})  # noqa: E731
    else:
        import torch
        torch.set_num_threads(threads)
        m = torch_model(model, workdir)
        xt = torch.from_numpy(x)

        def forward():
            with torch.inference_mode():
                return m(xt)
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


def measure(models, threads, rounds, workdir: Path, burst: int = 1, simds=(None,), baseline=None) -> list[dict]:
    """Each round gives every worker, in shuffled order, a turn of `burst` timed passes in a row.
    With burst 1 every pass starts cold from the machine's point of view (another engine just
    ran); with more threads than one, that cold start is mostly waking the thread pool and
    waiting for the previous worker's pool (OpenBLAS, onnxruntime and OpenMP threads spin a while
    after their work) to yield the cores, so the two-thread rows use bursts (docs/inference-speed.md)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    # (engine, clone, source tree): this engine once per clone, and again from `baseline` if given
    ours = [(s, None) for s in simds] + ([(s, baseline) for s in simds] if baseline else [])
    variants = [(e, s, src) for e in ENGINES for s, src in (ours if e == "sqnxt-engine" else [(None, None)])]
    procs = {}
    for model in models:
        for batch in BATCHES[model]:
            for engine, simd, src in variants:
                label = engine_label(engine, simd) + ("@base" if src else "")
                penv = dict(env, PYTHONPATH=os.pathsep.join([str(src)] + [p for p in [env.get("PYTHONPATH")] if p])) \
                    if src else env
                p = subprocess.Popen([sys.executable, __file__, "--worker", engine, "--model", model,
                                      "--batch", str(batch), "--threads", str(threads),
                                      "--workdir", str(workdir)] + (["--simd", simd] if simd else []),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=penv)
                if p.stdout.readline().strip() != "ready":
                    raise SystemExit(f"{label} worker for {model} failed to start")
                procs[(model, batch, label)] = p
    times = {k: [] for k in procs}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(procs)
        rng.shuffle(order)
        for k in order:
            for _ in range(burst):
                procs[k].stdin.write("run\n")
                procs[k].stdin.flush()
                times[k].append(float(procs[k].stdout.readline()))
    rows = []
    for (model, batch, engine), p in procs.items():
        p.stdin.write("quit\n")
        p.stdin.flush()
        peak = float(p.stdout.readline())
        p.wait()
        ts = sorted(times[(model, batch, engine)])
        median = statistics.median(ts)
        rows.append({"model": model, "threads": threads, "batch": batch, "engine": engine,
                     "median_ms": median * 1e3, "p10_ms": ts[len(ts) // 10] * 1e3,
                     "p90_ms": ts[(9 * len(ts)) // 10] * 1e3, "images_per_s": batch / median,
                     "peak_mib": peak})
    for r in rows:
        ort = next(q["median_ms"] for q in rows
                   if (q["model"], q["batch"], q["engine"]) == (r["model"], r["batch"], "onnxruntime"))
        r["vs_onnxruntime"] = r["median_ms"] / ort
    return rows


def profile(model: str, batch: int, rounds: int, simds=(None,)) -> None:
    """Per operator kind, median milliseconds per forward pass: compiled kernels (with each clone
    in `simds`, None: the default one) vs the NumPy reference path, the runs interleaved in an
    order that alternates round by round."""
    import numpy as np

    import sqnxt_engine.functional as F
    from sqnxt_engine.functional import _infer
    from sqnxt_engine.runtime import Runner

    with tempfile.TemporaryDirectory() as d:
        graph, arrays = load_engine_model(model, Path(d))
    fast = Runner(graph, arrays)
    F.ConvPlan.REFERENCE = True  # plans built now run the NumPy path
    try:
        ref = Runner(graph, arrays)
    finally:
        F.ConvPlan.REFERENCE = False
    default = _infer.simd_clone()
    kernels = ["kernels" if s is None else f"kernels_{s}" for s in simds]
    clone_of = dict(zip(kernels, [s or default for s in simds]))
    times = {n: collections.defaultdict(list) for n in kernels + ["numpy"]}
    totals = {n: [] for n in kernels + ["numpy"]}
    current: dict = {}

    def timed(step):
        run = step.run

        def wrapper(xs):
            t = time.perf_counter()
            y = run(xs)
            if step.activation is not None and not step.act_in_run:
                step.activation.apply_(y)
            current[step.op.describe()] = current.get(step.op.describe(), 0.0) + time.perf_counter() - t
            return y
        return wrapper

    for runner in (fast, ref):
        for step in runner.steps:
            step.run = timed(step)
            step.act_in_run = True  # the wrapper applies an unfused activation inside the timing
            step.in_place = False  # time the residual adds through their run as well
    x = np.random.default_rng(0).normal(size=(batch,) + graph.input_shape).astype(np.float32)
    pool = F.max_pool2d
    runs = [(n, fast) for n in kernels] + [("numpy", ref)]
    for i in range(rounds + 1):
        for name, runner in runs if i % 2 else runs[::-1]:
            F.max_pool2d = pool if name != "numpy" else F.max_pool2d_reference
            _infer.set_simd(clone_of.get(name, default))
            current.clear()
            t = time.perf_counter()
            runner.run(x)  # step by step (the compiled pass of runner(x) has no steps to time)
            if i:  # the first round warms up
                totals[name].append(time.perf_counter() - t)
                for k, v in current.items():
                    times[name][k].append(v)
    F.max_pool2d = pool
    _infer.set_simd(default)
    med = {n: {k: statistics.median(v) * 1e3 for k, v in t.items()} for n, t in times.items()}
    print(f"{model}, batch {batch}, {rounds} interleaved rounds, median ms per forward pass; whole pass: "
          + ", ".join(f"{n} {statistics.median(totals[n]) * 1e3:.2f}" for n in kernels + ["numpy"]))
    from sqnxt_engine.cli.common import format_table
    kinds = sorted(med["numpy"], key=lambda k: -med["numpy"][k])
    rows = []
    for k in kinds:
        row = {"operator": k, "numpy_ms": round(med["numpy"][k], 2)}
        for n in kernels:
            row[f"{n}_ms"] = round(med[n][k], 2)
            row["ratio" if n == "kernels" else f"ratio_{n[len('kernels_'):]}"] = round(med[n][k] / med["numpy"][k], 2)
        rows.append(row)
    print(format_table(rows))


def load_engine_model(model: str, workdir: Path):
    """(graph, arrays) of `model` as this engine loads it (the shipped file, or a converted one)."""
    from sqnxt_engine.io.model import load_model
    if model == "fmnist":
        from sqnxt_engine.io.shipped import shipped_weights
        path = shipped_weights(FMNIST)
    else:
        prepare(model, workdir)
        path = workdir / f"{model}.npz"
    graph, arrays, _ = load_model(path)
    return graph, arrays


def passes(model: str, batch: int, rounds: int, threads: int) -> None:
    """The Python a step-by-step pass spends around its arithmetic: Runner.run (step by step)
    against Runner(x) (the compiled pass, runtime.runner.CompiledPass), the compiled pass's native
    stretches alone, and each native step alone (Plan.run over that step only, less the cost of
    an empty call), summed by kind; medians over rounds of 20 passes, the kinds interleaved."""
    import numpy as np

    from sqnxt_engine.cli.common import format_table
    from sqnxt_engine.functional import _infer
    from sqnxt_engine.runtime import Runner
    from sqnxt_engine.runtime.threads import single_threaded_blas

    with tempfile.TemporaryDirectory() as d:
        graph, arrays = load_engine_model(model, Path(d))
    runner = Runner(graph, arrays)
    x = np.random.default_rng(0).normal(size=(batch,) + graph.input_shape).astype(np.float32)
    runner(x)
    compiled = runner._passes[0]
    plan, native = compiled.plan, [s for s in compiled.stretches if isinstance(s[0], int)]
    kind_name = {getattr(_infer, k): k[3:].lower() for k in dir(_infer) if k.startswith("OP_")}

    def median_of(f, n):
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    whole = {"step-by-step pass (Runner.run)": lambda: runner.run(x),
             "compiled pass (Runner(x))": lambda: runner(x)}
    alone = {"its native stretches alone": lambda: [plan.run(a, b, threads) for a, b in native],
             "an empty Plan.run call": lambda: plan.run(0, 0, threads)}
    times = collections.defaultdict(list)
    steps = []
    for _ in range(rounds):
        for name, f in whole.items():
            times[name].append(median_of(f, 20))
        # as Runner(x) runs them: BLAS on one thread where the plan's own threads split the steps
        with single_threaded_blas() if threads > 1 else contextlib.nullcontext():
            for name, f in alone.items():
                times[name].append(median_of(f, 20))
            steps.append([median_of(lambda i=i: plan.run(i, i + 1, threads), 5) for i in range(len(plan))])
    empty = statistics.median(times["an empty Plan.run call"])
    per_step = np.median(np.array(steps), axis=0) - empty
    print(f"{model}, batch {batch}, {threads} thread(s), {rounds} rounds, median ms; "
          f"{len(runner.steps)} steps, {len(plan)} native calls in {len(native)} stretch(es), "
          f"{len(compiled.stretches) - len(native)} step(s) from Python")
    print(format_table([{"what": k, "ms": round(statistics.median(v) * 1e3, 3)} for k, v in times.items()]))
    print(format_table(summed_by(((kind_name[kind], t * 1e3) for kind, t in zip(plan.kinds(), per_step)),
                                 "native step", "ms, each alone, summed")))

    # the same times by the layer each step came from (CompiledPass.spans), to set beside
    # onnxruntime's per-node profile; a pool folded into its convolution is counted there
    def layer(step):
        conv = getattr(step.run, "conv_plan", None)
        return step.op.describe() + (f" ({conv.scheme})" if conv is not None else "")
    print(format_table(summed_by(((layer(step), float(per_step[a:b].sum()) * 1e3)
                                  for step, a, b in compiled.spans if b > a),
                                 "layer", "ms, each step alone, summed")))


def summed_by(pairs, name: str, column: str) -> list[dict]:
    """Table rows of (key, milliseconds) pairs summed by key: the key, how many, the sum, the
    largest sum first."""
    sums: dict = collections.defaultdict(lambda: [0, 0.0])
    for key, ms in pairs:
        sums[key][0] += 1
        sums[key][1] += ms
    return [{name: k, "count": n, column: round(t, 3)}
            for k, (n, t) in sorted(sums.items(), key=lambda kv: -kv[1][1])]


def ort_profile(model: str, batch: int, rounds: int, threads: int) -> None:
    """onnxruntime's own per-node profile (SessionOptions.enable_profiling) of `model`, summed by
    the kind of node in its optimised graph (a convolution by kernel, stride and groups, as
    --passes names this engine's layers): median microseconds of each node over `rounds` passes
    after five unprofiled ones, summed; onnxruntime's fused NCHWc convolutions include their
    activation."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from sqnxt_engine.cli.common import format_table

    with tempfile.TemporaryDirectory() as d:
        prepare(model, Path(d))
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.optimized_model_filepath = str(Path(d) / "optimized.onnx")
        so.enable_profiling, so.profile_file_prefix = True, str(Path(d) / "profile")
        sess = ort.InferenceSession(str(Path(d) / f"{model}.onnx"), so, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).normal(size=(batch,) + input_shape(model)).astype(np.float32)
        for _ in range(5 + rounds):
            sess.run(None, {"x": x})
        events = json.loads(Path(sess.end_profiling()).read_text())
        nodes = {n.name: n for n in onnx.load(str(Path(d) / "optimized.onnx")).graph.node}

    def kind(name, op_name):
        node = nodes.get(name)
        if node is None or "Conv" not in node.op_type:
            return op_name
        a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
        (kh, kw), (sh, sw) = a.get("kernel_shape", (0, 0)), a.get("strides", (1, 1))
        return (f"conv {kh}x{kw}" + (f"/{sh}" if (sh, sw) != (1, 1) else "")
                + (f" g{a['group']}" if a.get("group", 1) > 1 else ""))
    times: dict = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            times[e["name"][: -len("_kernel_time")], e["args"].get("op_name")].append(e["dur"])
    pairs = [(kind(name, op_name), statistics.median(durations[5:] or durations) / 1e3)
             for (name, op_name), durations in times.items()]
    print(f"onnxruntime {ort.__version__}, {model}, batch {batch}, {threads} thread(s), median of "
          f"{rounds} profiled passes per node, ms; total {sum(ms for _, ms in pairs):.3f}")
    print(format_table(summed_by(pairs, "node", "ms")))


def products(model: str) -> None:
    """What bounds the engine: each convolution's matrix product alone (np.matmul on the layer's
    GEMM shape as ConvPlan runs it, flat-scheme spare columns included), best of 7, batch 1."""
    import numpy as np

    from sqnxt_engine import zoo
    from sqnxt_engine.graph import ops as O

    graph = zoo.build(model)
    rng = np.random.default_rng(0)
    totals: dict[str, float] = {}
    for layer in graph.layers:
        op = layer.op
        if not isinstance(op, O.Conv2d):
            continue
        c, _, w = layer.in_shapes[0]
        o, ho, wo = op.output_shape(list(layer.in_shapes))
        cg, (kh, kw) = c // op.groups, op.kernel
        if cg == 1 and o == op.groups and (kh, kw) != (1, 1):
            continue  # depthwise: no matrix product
        if (kh, kw) != (1, 1) and op.stride == (1, 1):  # the flat scheme computes padded rows
            wo = w + op.padding[2] + op.padding[3] + (1 if kw > 1 else 0)
        a = rng.random((o, cg * kh * kw), dtype=np.float32)
        b = rng.random((cg * kh * kw, ho * wo), dtype=np.float32)
        best = float("inf")
        for _ in range(7):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        totals[op.describe()] = totals.get(op.describe(), 0.0) + best * 1e3
    print(f"{graph.name}: matrix products alone, best of 7 each, batch 1: {sum(totals.values()):.2f} ms "
          "(" + ", ".join(f"{k} {v:.2f}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1])) + ")")


def schemes(model: str, rounds: int, simds) -> None:
    """Each convolution that has two compiled forms, timed in both on its own input (random
    weights, batch 1, min over `rounds` interleaved bursts of 3 calls): a stem's "phased" scheme against the
    gather-and-multiply one it replaces (phased=False), a depthwise layer's interleaved form
    against its phase planes (interleave=True / False). Per clone; `rule` is what ConvPlan picks."""
    import numpy as np

    from sqnxt_engine import zoo
    from sqnxt_engine.cli.common import format_table
    from sqnxt_engine.functional import ConvPlan, _infer
    from sqnxt_engine.graph import ops as O

    # The kernels, not the allocator: glibc maps large arrays fresh and unmaps them on free, so
    # every call of a plan that allocates megabytes would fault its pages in again (the compiled
    # pass allocates nothing). Large blocks stay in the heap from here on (Linux / glibc only).
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)   # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass
    graph = zoo.build(model)
    rng = np.random.default_rng(0)
    rows = []
    for layer in graph.layers:
        op = layer.op
        if not isinstance(op, O.Conv2d):
            continue
        c, h, w = layer.in_shapes[0]
        o = op.output_shape(list(layer.in_shapes))[0]
        cg = c // op.groups
        wt = rng.normal(size=(o, cg) + tuple(op.kernel))
        args = (wt, rng.normal(size=o), op.stride, op.padding, op.dilation, op.groups, np.float32, (0.0, 6.0))
        rule = ConvPlan(*args)
        if rule.scheme == "depthwise":
            forms = {"interleaved": ConvPlan(*args, interleave=True), "phase planes": ConvPlan(*args, interleave=False)}
            chosen = "interleaved" if rule.depthwise_interleaves(*rule.out_hw(h, w)) else "phase planes"
        elif rule.scheme == "phased":
            alt = ConvPlan(*args, phased=False)
            forms, chosen = {"phased": rule, alt.scheme: alt}, "phased"
        else:
            continue
        x = rng.normal(size=(1, c, h, w)).astype(np.float32)
        for simd in simds:
            if simd is not None:
                _infer.set_simd(simd)
            best = dict.fromkeys(forms, float("inf"))
            for _ in range(rounds):
                for name, plan in forms.items():
                    for _ in range(3):  # a burst: the first call after the other form may fault in pages
                        t = time.perf_counter()
                        plan(x)
                        best[name] = min(best[name], time.perf_counter() - t)
            (a, ta), (b, tb) = best.items()
            rows.append({"layer": f"{op.describe()} {c}->{o} {h}x{w}", "clone": _infer.simd_clone(),
                         "form_a": a, "ms_a": round(ta * 1e3, 3), "form_b": b, "ms_b": round(tb * 1e3, 3),
                         "a_over_b": round(ta / tb, 2), "rule": chosen})
    _infer.set_simd("auto")
    print(f"{graph.name}: each layer with two compiled forms, batch 1, min over {rounds} interleaved bursts of 3 calls")
    print(format_table(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--models", nargs="+", choices=list(BATCHES), default=list(BATCHES))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--burst", type=int, default=1, metavar="K",
                    help="timed passes per worker turn (see measure)")
    ap.add_argument("--profile", choices=list(BATCHES), help="per-operator profile of this engine")
    ap.add_argument("--passes", choices=list(BATCHES), help="step-by-step vs compiled pass of this engine")
    ap.add_argument("--ort-profile", choices=list(BATCHES), help="onnxruntime's own per-node profile")
    ap.add_argument("--products", choices=["sqnxt23v5_w1", "efficientnet-lite0"],
                    help="time each conv's matrix product alone")
    ap.add_argument("--schemes", choices=["sqnxt23v5_w1", "efficientnet-lite0"],
                    help="time each layer with two compiled forms (stem, depthwise) in both")
    ap.add_argument("--simd", nargs="+", metavar="CLONE",
                    help="run this engine's kernels with each of these clones (avx512, avx2, baseline)")
    ap.add_argument("--baseline", type=Path, metavar="SRC",
                    help="also run this engine imported from the source tree SRC, built in place (rows @base)")
    ap.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help="batch of --profile, --passes and --ort-profile")
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.model, args.batch, args.threads[0], args.workdir,
                      args.simd[0] if args.simd else None)
    from sqnxt_engine.functional import _infer
    runs = [k for k, ok in _infer.simd_clones().items() if ok]
    for simd in args.simd or ():
        if simd not in runs:
            ap.error(f"--simd {simd}: this CPU runs the clones {', '.join(runs)}")
    print(machine_line(), file=sys.stderr if args.json else sys.stdout)
    simds = tuple(args.simd) if args.simd else (None,)
    if args.products:
        from sqnxt_engine.runtime import set_threads
        set_threads(args.threads[0])
        return products(args.products)
    if args.schemes:
        from sqnxt_engine.runtime import set_threads
        set_threads(args.threads[0])
        return schemes(args.schemes, args.rounds, tuple(args.simd) if args.simd else tuple(runs[:2]))
    if args.profile:
        from sqnxt_engine.runtime import set_threads
        set_threads(args.threads[0])
        return profile(args.profile, args.batch, args.rounds, simds)
    if args.ort_profile:
        return ort_profile(args.ort_profile, args.batch, args.rounds, args.threads[0])
    if args.passes:
        from sqnxt_engine.runtime import set_threads
        set_threads(args.threads[0])
        return passes(args.passes, args.batch, args.rounds, args.threads[0])

    rows = []
    with tempfile.TemporaryDirectory() as d:
        for model in args.models:
            prepare(model, Path(d))
        for threads in args.threads:
            rows += measure(args.models, threads, args.rounds, Path(d), args.burst, simds, args.baseline)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    from sqnxt_engine.cli.common import format_table
    print(f"{args.rounds} interleaved rounds per thread count, {args.burst} timed pass(es) per turn, "
          f"median of each; vs_onnxruntime is "
          f"this row's median over onnxruntime's (same model, batch, threads)")
    print(format_table([{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]))


if __name__ == "__main__":
    main()
