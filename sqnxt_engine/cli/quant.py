"""sqnxt-quant: post-training integer quantization of a float weight file.

`--hw FILE` (quantize for a hardware file's accumulator and words, quant/accfit.py) is added by
the installed command, sqnxt_engine.emu.quant_cli, which reads hardware files: the core never
imports the emulator, so `_main` takes the function that turns --hw into a quant Target."""
from __future__ import annotations

from collections.abc import Callable

from ..errors import UserError
from ..io.files import check_out
from ..progress import progress_bar
from ..quant.accfit import RULES, Target
from ..quant.calibrate import CalibrationSet, resolve_rule
from ..quant.fixedpoint import OVERFLOW_MODES, Accumulator
from ..quant.model import save_quantized
from ..quant.quantize import default_accumulator, quantize_file
from ..quant.schema import check_file_accumulator
from .common import add_out_option, parser, run


def _main(argv: list[str], load_target: Callable[[str], Target] | None = None) -> int:
    p = parser("sqnxt-quant", "Quantize float weights to an integer-only model (symmetric weights, "
                              "layer-wise activations calibrated on images).")
    p.add_argument("--weights", required=True, help="a float .npz weight file or a shipped name")
    p.add_argument("--calib", nargs="+", required=True, metavar="IMAGES_OR_DATASET",
                   help="calibration images: a data set name (its train split), a folder, or image files")
    p.add_argument("--calib-count", type=int, default=500,
                   help="use at most this many calibration images")
    p.add_argument("--bits", type=int, required=True, help="weight and activation width: 8 or 16")
    p.add_argument("--weight-bits", type=int, metavar="W",
                   help="weights at W bits (2 to --bits), activations at --bits (default: --bits)")
    m = p.add_mutually_exclusive_group()
    m.add_argument("--shift-scaler", dest="method", action="store_const", const="shift-scaler",
                   help="per-channel 4-bit binary shift before the layer-wise weight scale")
    m.add_argument("--per-channel", dest="method", action="store_const", const="per-channel",
                   help="one weight scale per output channel")
    p.set_defaults(method="layer")
    p.add_argument("--equalize", action="store_true", help="cross-layer equalization first (then "
                   "layer-wise weights, or the shift scaler with --shift-scaler)")
    p.add_argument("--bias-correction", action="store_true", help="correct each layer's bias by the "
                   "mean error its quantized weights cause on the calibration images")
    p.add_argument("--pow2-search", action="store_true", help="power-of-two thresholds chosen by "
                   "least mean squared quantization error among 9 candidates (HPTQ's search): the "
                   "weights' per output channel with --shift-scaler (per layer without), and the "
                   "activations' per tensor unless --activations names another rule (default: off)")
    p.add_argument("--activations", default="auto",
                   help="activation range rule: max, percentile:P, pow2 (power-of-two threshold "
                        "search), or auto (max at 16 bits, percentile:99.99 at 8; pow2 with "
                        "--pow2-search)")
    p.add_argument("--acc-bits", type=int, help="accumulator width (default 32 for 8-bit, 48 for 16-bit)")
    p.add_argument("--overflow", choices=OVERFLOW_MODES,
                   help="what a sum leaving the accumulator becomes (default wrap)")
    if load_target is not None:
        p.add_argument("--hw", metavar="HARDWARE", help="quantize for this hardware (a preset or a "
                       "hardware TOML file): its accumulator width, overflow mode and word width; every "
                       "MAC layer's sums fitted to the accumulator (fewer weight bits where needed, "
                       "reported per layer) and the hardware recorded in the file")
        p.add_argument("--acc-rule", choices=RULES, default="observed",
                       help="with --hw: a layer fits when its largest sum on the calibration images, "
                       "doubled, fits the accumulator (observed), or its worst case does (worst)")
    p.add_argument("--batch-size", type=int, default=32, help="calibration images per forward pass")
    add_out_option(p, "the quantized .npz to write", required=True)
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    args = p.parse_args(argv)
    if args.bits not in (8, 16):
        raise UserError(f"--bits must be 8 or 16, got {args.bits}")
    if args.calib_count < 1 or args.batch_size < 1:
        raise UserError("--calib-count and --batch-size must be at least 1")
    if args.equalize:
        if args.method == "per-channel":
            raise UserError("--equalize goes with layer-wise weights or --shift-scaler, not --per-channel")
        args.method = "equalize" if args.method == "layer" else "equalize-shift-scaler"
    if args.pow2_search and args.method == "per-channel":
        raise UserError("--pow2-search goes with layer-wise weights or --shift-scaler, not --per-channel")
    rule = resolve_rule("pow2" if args.pow2_search and args.activations == "auto" else args.activations,
                        args.bits)
    check_out(args.out, args.force)  # before calibrating, not after
    target = None
    if getattr(args, "hw", None):
        if args.acc_bits is not None or args.overflow is not None:
            raise UserError("--hw sets the accumulator: drop --acc-bits and --overflow")
        target = load_target(args.hw)
        acc = target.accumulator
    else:
        acc = default_accumulator(args.bits)
        # --acc-bits 0 is refused, not taken for the default
        check_file_accumulator(acc.bits if args.acc_bits is None else args.acc_bits)
        acc = Accumulator(acc.bits if args.acc_bits is None else args.acc_bits, args.overflow or "wrap")
    check_file_accumulator(acc)
    calib = CalibrationSet(args.calib, args.calib_count)
    with progress_bar(len(calib), "calibrating") as bar:
        model = quantize_file(args.weights, calib, args.bits, args.method, rule, acc, bar.update,
                              args.batch_size, target=target, acc_rule=getattr(args, "acc_rule", "observed"),
                              bias_correction=args.bias_correction, weight_bits=args.weight_bits,
                              pow2_weights=args.pow2_search)
    path = save_quantized(args.out, model, force=args.force)
    thresholds = " (power-of-two thresholds)" if args.pow2_search else ""
    print(f"{path}: {model.graph.name}, int{args.bits} {args.method}{thresholds} weights"
          + (f" at {args.weight_bits} bits" if args.weight_bits else "") + f", activations {rule} "
          f"on {calib.name}, {acc.bits}-bit accumulator ({acc.overflow})"
          + (f", made for {target.name}" if target else ""))
    widest = args.weight_bits or args.bits
    for layer, r in model.info.get("accumulator_fit", {}).items():
        fate = (f"weights narrowed to {r['weight_bits']} bits" if r["weight_bits"] < widest else
                f"kept at {r['weight_bits']}-bit weights: an input unlike the calibration images could "
                f"overflow it (--acc-rule worst rules that out)")
        print(f"  {layer}: sums need {r['worst_bits']} bits at worst, {r['observed_bits']} observed "
              f"({acc.bits}-bit accumulator, rule {model.info['accumulator_rule']}): {fate}")
    return 0


def main(argv=None, load_target: Callable[[str], Target] | None = None) -> int:
    return run(lambda a: _main(a, load_target), argv)


if __name__ == "__main__":
    raise SystemExit(main())
