"""The installed sqnxt-quant: the core's command (sqnxt_engine/cli/quant.py) with --hw, which
reads a hardware file (a preset or a TOML file, emu/hardware.py) into the arithmetic the
quantized file is made for: the accumulator's width (arith.acc_bits) and overflow mode
(arith.overflow), and the word width (arith.word_bits)."""
from __future__ import annotations

from ..cli.quant import main as core_main
from ..quant.accfit import Target
from ..quant.fixedpoint import Accumulator
from .hardware import load_hardware


def hardware_target(spec: str) -> Target:
    hw = load_hardware(spec)
    return Target(hw.name, Accumulator(hw.acc_bits, hw.overflow), hw.word_bits)


def main(argv=None) -> int:
    return core_main(argv, hardware_target)


if __name__ == "__main__":
    raise SystemExit(main())
