"""docs/sweeps.md's table: 1.0-SqNxt-23v5 on the 16x16-45nm preset with four buffer sizes, a
4-point sweep (`sqnxt-emu sweep v5-45nm.toml --jobs 2 --export v5-45nm.csv`), energy in pJ at
45 nm (docs/regen.py runs this in a scratch folder)."""
import csv
import subprocess

with open("v5-45nm.toml", "w") as f:
    f.write('[[network]]\nmodel = "1.0-SqNxt-23v5"\n\n[hardware]\nbase = "16x16-45nm"\n\n'
            "[hardware.grid]\nbuffer.bytes = [32768, 65536, 131072, 524288]\n")
subprocess.run(["sqnxt-emu", "sweep", "v5-45nm.toml", "--jobs", "2", "--export", "v5-45nm.csv"],
               check=True, capture_output=True)
with open("v5-45nm.csv") as f:
    rows = list(csv.DictReader(f))


def e(x):
    return f"{float(x):.2e}".replace("e+0", "e").replace("e+", "e")


print("| buffer | cycles | gb energy (pJ) | DRAM energy (pJ) | total (pJ, 45 nm) |")
print("|---|---|---|---|---|")
for r in sorted(rows, key=lambda r: int(r["gb_bytes"])):
    print(f"| {int(r['gb_bytes']) // 1024} KB | {int(r['cycles']):,} | {e(r['energy_gb'])} "
          f"| {e(r['energy_dram'])} | {e(r['energy'])} |")
