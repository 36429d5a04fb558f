"""`sqnxt-emu validate`: the emulator against published hardware figures.

Three suites, each reference shipped with the package (sqnxt_engine/data/validation/, its README
names the sources) and each emulator figure computed here from the kernels' counts:
- SCALE-Sim's systolic-array RTL (an N x N by N x N product on an N x N output-stationary
  array): compute cycles, the array's N MAC steps plus its pipeline skew (rows + cols - 2, the
  hardware's fill/drain, charged once: the product is one tile), with the untiled MOC-MOP
  mapping (rows over the N output channels, columns over the N pixels), i.e. 3N - 2.
- Eyeriss, JSSC 2017, Table V (preset eyeriss, AlexNet CONV1-5, batch 4): MACs, active PEs
  (the PEs busy per array cycle on average, MACs / cycles, as nn_dataflow's reproduction
  computes them), processing latency, DRAM traffic (bytes moved, MB = 10^6 bytes).
- Eyeriss, ISCA 2016, Figure 10 (preset eyeriss-isca16, AlexNet batch 16): the energy of the
  MACs (ALU), of DRAM and of the register files, in units of 10^9 MACs.
AlexNet is the zoo's (the Caffe model: grouped CONV2/4/5, 227 x 227 input). The kernels run one
image: a batch of n is n images one after the other (a convolution's weights fetched again per
image: the emulator has no batch loop), except the fully connected layers, run as a 1x1
convolution over the n images (their weights fetched once, as a batch does). Each row: the
reference, the emulator, their ratio, the published acceptance band (where the source gives one)
and PASS / FAIL; rows without a band say "-". Nothing here is fitted: the presets' open
parameters were decided before any comparison (emu/hardware.py's module docstring).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import resources

from ..errors import UserError
from ..graph import ops as O
from ..io.structured_text import load_json
from ..kernels import ConvShape, Dataflow, Mapping, count
from ..zoo import build
from . import search as S
from . import timing as T
from .energy import energy
from .hardware import hardware_from_dict, load_hardware
from .network import conv_shape
from .workers import available_cpus, pool, worker_count

REFERENCES = ("scalesim_rtl.json", "eyeriss_jssc17_table5.json", "eyeriss_isca16_fig10.json")
MAX_REFERENCE_BYTES = 1 << 16


def reference(name: str) -> dict:
    """One shipped reference file, parsed (bounded size, JSON only: no code runs)."""
    f = resources.files("sqnxt_engine.data") / "validation" / name
    text = f.read_text("utf-8")
    if len(text) > MAX_REFERENCE_BYTES:
        raise UserError(f"validation/{name}: larger than {MAX_REFERENCE_BYTES} bytes")
    doc = load_json(text, f"validation/{name}")
    if not isinstance(doc, dict) or "source" not in doc:
        raise UserError(f"validation/{name}: not a reference file (no source)")
    return doc


@dataclass(frozen=True)
class Row:
    """One compared figure. band: (kind, lo, hi): "ratio" (lo <= emulator / reference <= hi),
    "abs" (|emulator - reference| < hi) or "exact"; None where the source gives no band."""
    suite: str
    item: str
    quantity: str
    reference: float
    emulator: float
    band: tuple | None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.emulator / self.reference if self.reference else float("nan")

    @property
    def status(self) -> str:
        if self.band is None:
            return "-"
        kind, lo, hi = self.band
        if kind == "exact":
            ok = self.emulator == self.reference
        elif kind == "abs":
            ok = abs(self.emulator - self.reference) < hi
        else:
            ok = lo <= self.ratio <= hi
        return "PASS" if ok else "FAIL"

    def band_str(self) -> str:
        if self.band is None:
            return "-"
        kind, lo, hi = self.band
        return {"exact": "exact", "abs": f"+-{hi:g}"}.get(kind, f"{lo:g}-{hi:g}x")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(ratio=self.ratio, status=self.status, band=self.band_str())
        return d


# ---- SCALE-Sim's RTL suite ------------------------------------------------------------------

def systolic_compute_cycles(n: int) -> int:
    """Compute cycles of the N x N product on an N x N output-stationary array (module doc)."""
    hw = hardware_from_dict({"name": f"systolic-{n}", "pe": {"rows": n, "cols": n},
                             "buffer": {"bytes": 1 << 24},
                             "dataflow": {"supported": ["os_mocmop"]}}, f"systolic {n}x{n}")
    shape = ConvShape(C=n, H=1, W=n, K=n)
    m = Mapping.untiled(shape, Dataflow.OS_MOCMOP, n, n)
    tm = T.timing(shape, m, count(shape, m), hw)
    return int(tm.array + tm.fill_drain)


def scalesim_rows(ref: dict, choices: dict) -> list[Row]:
    rows = []
    for n in ref["sizes"]:
        given = ref["rtl_cycles"].get(str(n))
        want = given if given is not None else 3 * n - 2
        note = "RTL figure" if given is not None else f"closed form {ref['closed_form']}"
        rows.append(Row("scalesim-rtl", f"N={n}", "compute cycles", want,
                        systolic_compute_cycles(n), ("exact", 0, 0), note))
    return rows


# ---- AlexNet on the Eyeriss presets -----------------------------------------------------------

def alexnet_layers(batch: int) -> dict[str, tuple[ConvShape, int]]:
    """The zoo AlexNet's conv and fc layers as the kernels' shapes, each with the times its
    one-image run repeats for the batch: a convolution per image, a fully connected layer once
    as a 1x1 convolution over the batch's images (module doc)."""
    g = build("AlexNet")
    out = {}
    for layer in g.layers:
        if isinstance(layer.op, O.Linear):
            out[layer.name] = (ConvShape(C=layer.in_shapes[0][0], H=1, W=batch,
                                         K=layer.op.out_features), 1)
        elif isinstance(layer.op, O.Conv2d):
            out[layer.name] = (conv_shape(layer.op, layer.in_shapes[0]), batch)
    return out


def _search_task(task):
    """One layer's RS mapping on a preset (a worker's task)."""
    preset, shape = task
    return S.search(shape, load_hardware(preset), "rs")


def searched(tasks, jobs: int | None = None) -> dict:
    """{(preset, shape): the searched Choice}, the searches spread over worker processes
    (jobs: how many; default the CPUs available). The results do not depend on it."""
    tasks = list(dict.fromkeys(tasks))
    n = worker_count(available_cpus() if jobs is None else jobs, len(tasks))
    if n == 1:
        return {t: _search_task(t) for t in tasks}
    with pool(n) as ex:   # the largest layers first: they bound the wall time
        order = sorted(tasks, key=lambda t: -t[1].macs * t[1].weight_size)
        return dict(zip(order, ex.map(_search_task, order)))


def eyeriss_jssc_rows(ref: dict, choices: dict) -> list[Row]:
    hw = load_hardware(ref["preset"])
    batch, bands = ref["batch"], ref["bands"]
    shapes = alexnet_layers(batch)

    def band(q):
        b = bands.get(q)
        return None if b is None else (b["kind"], b.get("lo", 0), b.get("hi", b.get("tol", 0)))
    rows = []
    for name, r in ref["layers"].items():
        shape, n = shapes[name]
        ch = choices[(hw.name, shape)]
        ms = n * ch.timing.total / (hw.clock_mhz * 1e3)
        stall = n * ch.timing.exposed_dram / (hw.clock_mhz * 1e3)
        how = f"{S.mapping_str(ch.mapping)} p{ch.mapping.psums_per_pe}"
        rows += [Row("eyeriss-jssc17", name, "MACs (M)", r["macs_millions"], n * shape.macs / 1e6,
                     band("macs_millions")),
                 Row("eyeriss-jssc17", name, "active PEs", r["active_pes"],
                     ch.counters.macs // ch.counters.cycles, band("active_pes"), how),
                 Row("eyeriss-jssc17", name, "latency (ms)", r["latency_ms"], ms,
                     band("latency_ms"), f"of which DRAM {stall:.2f} ms"),
                 Row("eyeriss-jssc17", name, "DRAM (MB)", r["dram_mb"],
                     n * ch.timing.dram_bytes / 1e6, band("dram_mb"), "uncompressed words")]
    return rows


def eyeriss_isca_rows(ref: dict, choices: dict) -> list[Row]:
    hw = load_hardware(ref["preset"])
    batch, bands = ref["batch"], ref["bands"]
    shapes = alexnet_layers(batch)
    rows = []
    for name, r in ref["layers"].items():
        shape, n = shapes[name]
        ch = choices[(hw.name, shape)]
        e = energy(ch.counters, hw, shape.output_size)
        got = {"alu": e.mac, "dram": e.dram, "rf": e.rf}
        for q in ("alu", "dram", "rf"):
            b = bands[q]
            rows.append(Row("eyeriss-isca16", name, f"{q} energy (1e9)", r[q], n * got[q] / 1e9,
                            (b["kind"], 0, b["tol"])))
    return rows


SUITES = {"scalesim-rtl": ("scalesim_rtl.json", scalesim_rows),
          "eyeriss-jssc17": ("eyeriss_jssc17_table5.json", eyeriss_jssc_rows),
          "eyeriss-isca16": ("eyeriss_isca16_fig10.json", eyeriss_isca_rows)}


def validate(suites=tuple(SUITES), jobs: int | None = None) -> dict[str, dict]:
    """Every suite's reference (title, source) and its rows; the layers' mapping searches run
    in `jobs` worker processes (searched)."""
    refs = {s: reference(SUITES[s][0]) for s in suites}
    tasks = [(ref["preset"], shape) for ref in refs.values() if "preset" in ref
             for name, (shape, _) in alexnet_layers(ref["batch"]).items() if name in ref["layers"]]
    choices = searched(tasks, jobs)
    return {s: {"title": ref["title"], "source": ref["source"],
                "rows": SUITES[s][1](ref, choices)} for s, ref in refs.items()}
