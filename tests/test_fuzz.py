"""In-suite fuzzing (issue 16): a few hundred mutated files per loader, each of which must load or
be refused with a UserError, without running pickled code. The long run, with per-case time
limits, peak memory and files left behind, is benchmarks/fuzz.py (same targets and mutations:
tests/fuzz_targets.py)."""
from __future__ import annotations

import os
import random
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

CASES = int(os.environ.get("SQNXT_FUZZ_CASES", "200"))
_WORK = tempfile.TemporaryDirectory(prefix="sqnxt-fuzz-")


@cache
def _seeds(name: str) -> tuple[bytes, ...]:
    pytest.importorskip("onnx") if name == "onnx" else None
    pytest.importorskip("torch") if name.startswith("pytorch") else None
    return tuple(ft.LOADERS[name][2](Path(_WORK.name)))


@pytest.mark.parametrize("name", list(ft.LOADERS))
def test_fuzz_loader(name):
    suffix, load, _ = ft.LOADERS[name]
    seeds = list(_seeds(name))
    work = Path(_WORK.name)
    outcomes = {"ok": 0, "refused": 0}

    @settings(max_examples=CASES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.integers(0, 2**32 - 1))  # a seed of the mutations, as benchmarks/fuzz.py does
    def one_case(seed):
        path = work / f"case{suffix}"
        path.write_bytes(ft.case(seeds, random.Random(seed)))
        old = os.getcwd()
        os.chdir(work)  # the canary pickles would create CANARY here
        try:
            load(path)
            outcomes["ok"] += 1
        except UserError as e:
            assert "\n" not in str(e)
            outcomes["refused"] += 1
        finally:
            os.chdir(old)
        assert not (work / ft.CANARY).exists(), "pickled code ran"
        assert sorted(p.name for p in work.iterdir() if p.name.startswith(".")) == []  # no temp files

    one_case()
    # the mutations must reach past the first check: some cases load, most are refused
    assert outcomes["refused"] > 0
