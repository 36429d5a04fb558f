"""Every relative link in README.md, docs/*.md and weights/README.md leads to a file that exists,
and every #anchor to a heading of that file (GitHub's anchors); README.md is a front page of at
most 12 KB."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "weights" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_BYTES = 12 * 1024

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose(text):
    """The page without its fenced code blocks and inline code spans (links there are not links)."""
    kept, in_fence = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            kept.append(re.sub(r"`[^`]*`", "``", line))
    return "\n".join(kept)


def github_anchor(heading):
    """GitHub's anchor for a heading: lowercase, punctuation dropped, each space a hyphen."""
    text = re.sub(r"<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    """The anchors of a page's headings (code spans count; a repeated heading gets -1, -2, ...)."""
    found, seen, in_fence = set(), {}, False
    for line in path.read_text("utf-8").split("\n"):
        if FENCE.match(line):
            in_fence = not in_fence
        m = None if in_fence else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = github_anchor(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path):
    for target in LINK.findall(prose(path.read_text("utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        yield target


CASES = [(page, target) for page in PAGES for target in links(page)]


def test_pages_have_links():
    assert len(CASES) > 50, "the link scan found almost no links: is the pattern broken?"


@pytest.mark.parametrize("page,target", CASES,
                         ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in CASES])
def test_link_resolves(page, target):
    file_part, _, anchor = target.partition("#")
    dest = (page.parent / file_part).resolve() if file_part else page
    assert dest.exists(), f"{page.relative_to(ROOT)}: link to {target}: no file {file_part}"
    if anchor:
        assert dest.suffix == ".md", f"{page.relative_to(ROOT)}: anchor into a non-markdown file"
        assert anchor in anchors(dest), (
            f"{page.relative_to(ROOT)}: link to {target}: {dest.relative_to(ROOT)} has no heading "
            f"with anchor #{anchor}")


def test_github_anchor_rules():
    assert github_anchor("Where the emulator agrees with the paper, and where not") == \
        "where-the-emulator-agrees-with-the-paper-and-where-not"
    assert github_anchor("Beside SCALE-Sim and ZigZag (`benchmarks/emu_peers.py`)") == \
        "beside-scale-sim-and-zigzag-benchmarksemu_peerspy"


def test_readme_is_a_front_page():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; the front page keeps to 12 KB"
