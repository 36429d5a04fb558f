"""In-suite fuzzing (issue 16): a few hundred mutated files per loader, each of which must load or
be refused with a UserError, without running pickled code. The long run, with per-case time
limits, peak memory and files left behind, is benchmarks/fuzz.py (same targets and mutations:
tests/fuzz_targets.py).

The default suite runs the same 200 cases per loader on every run (tests/conftest.py's "default"
hypothesis profile is derandomized), and the cases the randomised fuzz once found (FOUND). The
exploring runs draw new cases each time:
    pytest --hypothesis-profile=fuzz tests/test_fuzz.py    # 2,000 random cases per loader
    SQNXT_FUZZ_CASES=20000 pytest --hypothesis-profile=fuzz tests/test_fuzz.py
    python benchmarks/fuzz.py                              # 10,000 per loader, forked, timed
A failure prints the seed of its mutations (benchmarks/fuzz.py prints `case_seed`, a string);
add (loader, seed, a pattern of the expected one-line error) to FOUND."""
from __future__ import annotations

import os
import random
import re
import sys
import tempfile
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqnxt_engine.errors import UserError

sys.path.insert(0, str(Path(__file__).parent))
import fuzz_targets as ft  # noqa: E402

# 200 cases per loader, ten times as many under the exploring "fuzz" profile (600 examples)
CASES = int(os.environ.get("SQNXT_FUZZ_CASES", "0")) or 200 * max(1, settings().max_examples // 60)
_WORK = tempfile.TemporaryDirectory(prefix="sqnxt-fuzz-")

# (loader, seed of the mutations: an int, or benchmarks/fuzz.py's case_seed string, pattern of the
# UserError now raised) for each case that once crashed a loader, run on every suite run:
FOUND = [
    # a weight file whose metadata text holds a code point past U+10FFFF: NumPy built a broken
    # str of it and reading it raised SystemError (now refused by io/npz.py's parse_npy)
    ("weights (.npz)", 1263, "past U\\+10FFFF"),
    # a sweep file whose hardware.base is a name too long for the system to look up: OSError
    # (ENAMETOOLONG) from Path.is_file (now io.files.is_file and os.path.exists)
    ("sweep (.toml)", "0/sweep (.toml)/16", "no such hardware file"),
    ("sweep (.toml)", "0/sweep (.toml)/8910", "no such hardware file"),
]


@cache
def _seeds(name: str) -> tuple[bytes, ...]:
    pytest.importorskip("onnx") if name == "onnx" else None
    pytest.importorskip("torch") if name.startswith(("pytorch", "checkpoint")) else None
    return tuple(ft.LOADERS[name][2](Path(_WORK.name)))


def _one_case(name: str, seed: int | str) -> str | None:
    """Load the case `seed` makes from `name`'s seeds: None if it loads, else the UserError's
    message, which must be one line; no pickled code may run and no temporary file stay."""
    suffix, load, _ = ft.LOADERS[name]
    work = Path(_WORK.name)
    path = work / f"case{suffix}"
    path.write_bytes(ft.case(list(_seeds(name)), random.Random(seed)))
    old = os.getcwd()
    os.chdir(work)  # the canary pickles would create CANARY here
    try:
        load(path)
        message = None
    except UserError as e:
        message = str(e)
        assert "\n" not in message
    finally:
        os.chdir(old)
    assert not (work / ft.CANARY).exists(), "pickled code ran"
    assert sorted(p.name for p in work.iterdir() if p.name.startswith(".")) == []  # no temp files
    return message


@pytest.mark.parametrize("name", list(ft.LOADERS))
def test_fuzz_loader(name):
    outcomes = {"ok": 0, "refused": 0}

    @settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large])
    @given(st.integers(0, 2**32 - 1))  # a seed of the mutations, as benchmarks/fuzz.py does
    def one_case(seed):
        outcomes["ok" if _one_case(name, seed) is None else "refused"] += 1

    one_case()
    # the mutations must reach past the first check: some cases load, most are refused
    assert outcomes["refused"] > 0


@pytest.mark.parametrize("name, seed, match", FOUND, ids=[f"{n}-{s}" for n, s, _ in FOUND])
def test_fuzz_case_found_before(name, seed, match):
    message = _one_case(name, seed)
    assert message is not None and re.search(match, message), message
