"""The command outputs the docs quote and mark `<!-- output cheap ... -->` are what the commands
print today (docs/regen.py runs them; `python docs/regen.py` rewrites every marked block)."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("docs_regen", ROOT / "docs" / "regen.py")
regen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regen)


def _cheap_blocks():
    blocks = []
    for pattern in regen.PAGES:
        for page in sorted(ROOT.glob(pattern)):
            lines = page.read_text("utf-8").split("\n")
            blocks += [(b, lines[b.start:b.end]) for b in regen.find_blocks(page, lines)
                       if "cheap" in b.flags]
    return blocks


CHEAP = _cheap_blocks()


def test_every_marker_parses_and_some_are_cheap():
    assert len(CHEAP) >= 5


@pytest.mark.parametrize("block,old", CHEAP, ids=[f"{b.where} {b.label[:50]}" for b, _ in CHEAP])
def test_quoted_output_is_current(block, old):
    new, problem = regen.regenerate(block, old, timeout=120)
    assert problem is None, f"{block.where}: {problem}\n" + "\n".join(new[-20:])
    assert regen.comparable(new) == regen.comparable(old), (
        f"{block.where}: the quoted output drifted; run `python docs/regen.py -k "
        f"{block.page.name}` and review the diff\nnow:\n" + "\n".join(new))
