"""docs/energy-models.md's table: 1.0-SqNxt-23v5 on 16x16 PEs with a 32-512 KB global buffer,
energy by level under each energy model, from `sqnxt-emu trace --csv`'s total row (docs/regen.py
runs this in a scratch folder; the hardware files it writes land there)."""
import csv
import io
import subprocess

print("| model | buffer | DRAM bytes | MAC | RF | PE | GB | DRAM | total |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for model in ("eyeriss-normalised", "horowitz-45nm"):
    for kb in (32, 64, 128, 256, 512):
        hw = f"hw-{kb}.toml"
        with open(hw, "w") as f:
            f.write(f'name = "{kb}KB"\n[pe]\nrows = 16\ncols = 16\n[buffer]\nbytes = {kb * 1024}\n'
                    f'[energy]\nmodel = "{model}"\n')
        out = subprocess.run(["sqnxt-emu", "trace", "--model", "1.0-SqNxt-23v5", "--hw", hw, "--csv"],
                             check=True, capture_output=True, text=True).stdout
        t = list(csv.DictReader(io.StringIO(out)))[-1]
        e = " | ".join(f"{float(t[k]):.2e}".replace("e+0", "e").replace("e+", "e")
                       for k in ("e_mac", "e_rf", "e_pe", "e_gb", "e_dram", "energy"))
        print(f"| {model} | {kb} KB | {int(t['dram_bytes']):,} | {e} |")
