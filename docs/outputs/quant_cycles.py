"""docs/quantization.md's table of the emulated cost per precision: 1.0-SqNxt-23v5-fmnist
quantized by `sqnxt-quant` five ways, each traced on the 16x16 preset on the first Fashion-MNIST
test image with `sqnxt-emu trace --json` (docs/regen.py runs this in a scratch folder)."""
import json
import subprocess

IMAGE = "examples/fmnist-00000-ankle-boot.png"  # the first Fashion-MNIST test image
FILES = [("int16 layer-wise, made for a 48-bit accumulator (run with --any-hardware)", ["--bits", "16"]),
         ("int16 layer-wise, made for 16x16 (--hw 16x16)", ["--bits", "16", "--hw", "16x16"]),
         ("int8 layer-wise", ["--bits", "8"]),
         ("int8 + shift scaler", ["--bits", "8", "--shift-scaler"]),
         ("int8 + equalization", ["--bits", "8", "--equalize"]),
         ("int8 per-channel", ["--bits", "8", "--per-channel"])]

print("| file | cycles | energy (MAC units) | bit_exact | max_abs_diff | accumulator overflow |")
print("|---|---|---|---|---|---|")
for i, (name, options) in enumerate(FILES):
    out = f"q{i}.npz"
    subprocess.run(["sqnxt-quant", "--weights", "1.0-SqNxt-23v5-fmnist", "--calib", "fashion-mnist",
                    *options, "-o", out], check=True, capture_output=True)
    trace = json.loads(subprocess.run(["sqnxt-emu", "trace", "--weights", out, "--image", IMAGE,
                                       "--json", "--any-hardware"], check=True, capture_output=True,
                                      text=True).stdout)
    total = trace["total"]
    overflow = ", ".join(trace["acc_overflow_layers"]) or "none"
    energy = f"{total['energy']:.3e}".replace("e+0", "e")
    print(f"| {name} | {round(total['cycles']):,} | {energy} | {str(trace['bit_exact']).lower()} "
          f"| {trace['max_abs_diff']} | {overflow} |")
