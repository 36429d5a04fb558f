"""The paper's co-design loop on the shipped Fashion-MNIST models: accuracy (sqnxt-eval, the
whole test set) beside cycles and energy on the emulated accelerator (sqnxt-emu trace), for
1.0-SqNxt-23 (v1) against 1.0-SqNxt-23v5, dense against pruned to 40%.

    python benchmarks/codesign.py [--hw 16x16] [--dataflow best]

The emulator runs each file's own weights (--sparsity 0: the pruned files' zeros are real, the
dense files have none) on a shipped example image.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from sqnxt_engine.cli.common import format_table

MODELS = ["1.0-SqNxt-23-fmnist", "1.0-SqNxt-23-fmnist-pruned40",
          "1.0-SqNxt-23v5-fmnist", "1.0-SqNxt-23v5-fmnist-pruned40"]
IMAGE = Path(__file__).resolve().parents[1] / "examples" / "fmnist-00000-ankle-boot.png"


def run_json(cmd: list[str]) -> dict:
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="16x16")
    ap.add_argument("--dataflow", default="best")
    args = ap.parse_args()
    rows = []
    for name in MODELS:
        acc = run_json(["sqnxt-eval", "--weights", name, "--json"])
        emu = run_json(["sqnxt-emu", "trace", "--weights", name, "--hw", args.hw, "--dataflow",
                        args.dataflow, "--sparsity", "0", "--image", str(IMAGE), "--json"])
        t = emu["total"]
        rows.append({"weights": name, "top1": acc["top1"], "macs": t["macs"], "cycles": t["cycles"],
                     "dram_bytes": t["dram_bytes"], "energy": t["energy"], "e_dram": t["e_dram"],
                     "emu_top1_agrees": emu["top1_match"]})
    base = rows[0]
    for r in rows:
        r["cycles_vs_v1"] = round(r["cycles"] / base["cycles"], 3)
        r["energy_vs_v1"] = round(r["energy"] / base["energy"], 3)
    print(f"sqnxt-eval (10,000 test images) beside sqnxt-emu trace --hw {args.hw} "
          f"--dataflow {args.dataflow} --sparsity 0 (one image)")
    print(format_table(rows))


if __name__ == "__main__":
    main()
