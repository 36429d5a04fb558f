"""The emulator's headline figures beside the paper's (what issue 11 compares).

- the 7x7 stem's share of 1.0-SqNxt-23's cycles (paper, Section 4: 26% on the 16x16 array);
- 1.0-SqNxt-23v5 over 1.0-SqNxt-23, cycles and energy, on each array (paper: Table 3);
- Figure 6's early-layer efficiency: the efficiency (dense MACs / cycle / PEs) of the first
  module's layers (stage1) over that of the layers after it (stage2 on). The paper says only
  that the drop in the first module is "more significant for the 16x16 PE array
  configuration as compared to the 8x8 one": so the ratio should be lower on 16x16;
- Table 3's Spearman rank correlation between the emulator's and the paper's normalised times
  (and energies) over the networks run.
"""
from __future__ import annotations

from .network import NetworkResult

PAPER_STEM_SHARE = 0.26   # Section 4: "the first 7x7 convolutional layer accounts for 26%"
V1, V5 = "1.0-SqNxt-23", "1.0-SqNxt-23v5"


def stem_share(res: NetworkResult) -> float:
    """The first MAC layer's share of the network's cycles."""
    return res.mac_steps[0].cycles / res.cycles


def efficiency(layers, pes: int) -> float:
    """Dense MACs per cycle per PE (Figure 6's efficiency: can exceed 1 where SOC-MOP skips
    zero weights)."""
    macs = sum(r.dense_macs for r in layers)
    cycles = sum(r.cycles for r in layers)
    return macs / cycles / pes if cycles else 0.0


def utilisation(layers, pes: int) -> float:
    """MACs performed per PE-cycle: the share of the array's cycles doing work (at most 1)."""
    macs = sum(r.counters.macs for r in layers)
    cycles = sum(r.cycles for r in layers)
    return macs / cycles / pes if cycles else 0.0


def _first_and_later(res: NetworkResult) -> tuple[list, list]:
    layers = res.mac_steps
    stage = [r.name.split(".")[0] for r in layers]
    first = [r for r, s in zip(layers, stage) if s == "stage1"]
    later = [r for r, s in zip(layers, stage) if s not in ("stage1", stage[0])]
    return first, later


def first_module_efficiency(res: NetworkResult) -> tuple[float, float]:
    """Efficiency of the first module's MAC layers (stage1) and of the MAC layers after it."""
    first, later = _first_and_later(res)
    return efficiency(first, res.hw.pes), efficiency(later, res.hw.pes)


def first_module_utilisation(res: NetworkResult) -> tuple[float, float]:
    """Utilisation of the first module's MAC layers (stage1) and of the MAC layers after it."""
    first, later = _first_and_later(res)
    return utilisation(first, res.hw.pes), utilisation(later, res.hw.pes)


def spearman(a, b) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / den if den else float("nan")


def network_lines(results: dict[str, NetworkResult]) -> list[str]:
    """Stem share and first-module efficiency of 1.0-SqNxt-23 on each array run
    (results: config -> its NetworkResult)."""
    out = []
    for cfg, res in results.items():
        line = (f"{cfg}: first layer's share of {res.model}'s cycles {stem_share(res):.1%} "
                f"(paper, 1.0-SqNxt-23's 7x7 stem on 16x16: {PAPER_STEM_SHARE:.0%})")
        first, later = first_module_efficiency(res)
        if first and later:
            used, used_later = first_module_utilisation(res)
            line += (f"; first-module efficiency {first:.3f}, later layers {later:.3f}, ratio "
                     f"{first / later:.2f}; utilisation {used:.3f} / {used_later:.3f}, ratio "
                     f"{used / used_later:.2f} (paper: a drop, larger on 16x16 than on 8x8)")
        out.append(line)
    return out


# Table 3's co-design steps: (label, network, the network it changes, what changed)
STEPS = (("v2/v1", "1.0-SqNxt-23v2", V1, "7x7 stem -> 5x5"),
         ("v3/v2", "1.0-SqNxt-23v3", "1.0-SqNxt-23v2", "blocks 6-6-8-1 -> 4-8-8-1"),
         ("v4/v3", "1.0-SqNxt-23v4", "1.0-SqNxt-23v3", "blocks -> 2-10-8-1"),
         ("v5/v4", V5, "1.0-SqNxt-23v4", "blocks -> 2-4-14-1"),
         ("v5/v2", V5, "1.0-SqNxt-23v2", "the redistribution, all of it"),
         ("v5/v1", V5, V1, "every step"))


def step_rows(rows: list[dict]) -> list[dict]:
    """The co-design steps (STEPS) among table3 rows, per configuration: the emulator's ratio
    of cycles and of energy, the paper's, and the ratio of dense MACs."""
    out = []
    for cfg in dict.fromkeys(r["config"] for r in rows):
        part = {r["model"]: r for r in rows if r["config"] == cfg}
        for label, new, old, what in STEPS:
            if new not in part or old not in part:
                continue
            a, b = part[old], part[new]
            out.append({"config": cfg, "step": label, "change": what,
                        **{key: _ratio(b, a, key) for key in
                           ("cycles", "paper_time", "macs", "energy", "paper_energy")}})
    return out


def _ratio(new: dict, old: dict, key: str) -> float | None:
    return new[key] / old[key] if old.get(key) and new.get(key) is not None else None


def table3_lines(rows: list[dict]) -> list[str]:
    """v5/v1 cycles and energy and the rank correlations, per configuration, from table3 rows."""
    out = []
    for cfg in dict.fromkeys(r["config"] for r in rows):
        part = {r["model"]: r for r in rows if r["config"] == cfg}
        line = f"{cfg}:"
        if V1 in part and V5 in part:
            v1, v5 = part[V1], part[V5]
            line += f" {V5}/{V1} cycles {v5['cycles'] / v1['cycles']:.3f}"
            if v1.get("paper_time"):
                line += f" (paper {v5['paper_time'] / v1['paper_time']:.3f})"
            line += f", energy {v5['energy'] / v1['energy']:.3f}"
            if v1.get("paper_energy"):
                line += f" (paper {v5['paper_energy'] / v1['paper_energy']:.3f})"
            line += ";"
        have = [r for r in part.values() if r.get("paper_time") is not None]
        if len(have) > 2:
            macs = [r["macs"] for r in have]
            line += (f" rank correlation with the paper over {len(have)} networks: time "
                     f"{spearman([r['time'] for r in have], [r['paper_time'] for r in have]):.3f} "
                     f"(MAC count: {spearman(macs, [r['paper_time'] for r in have]):.3f})")
            if all(r.get("paper_energy") is not None for r in have):
                line += (f", energy {spearman([r['energy'] for r in have], [r['paper_energy'] for r in have]):.3f} "
                         f"(MAC count: {spearman(macs, [r['paper_energy'] for r in have]):.3f})")
        out.append(line.rstrip(";"))
    return out
