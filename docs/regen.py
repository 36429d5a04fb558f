"""Re-run the commands whose output the docs quote, and rewrite the quoted blocks.

A quoted output is marked by an HTML comment on the line before its code block (or markdown
table), naming how it is made:

    <!-- output: CMD -->          the block is what the shell command CMD prints
    <!-- output -->               a terminal session: each block line starting "$ " is a command,
                                  and the lines after it, up to the next "$ ", what it printed

Words between "output" and the colon are flags: `cheap` (seconds: tests/test_docs_outputs.py
checks these blocks), `slow` (minutes to hours, or a peer tool: run only with --slow) and
`fails` (the command is meant to exit non-zero, e.g. to show an error). E.g.

    <!-- output cheap: sqnxt-models | head -5 -->
    <!-- output cheap -->
    <!-- output slow: python benchmarks/infer_latency.py --rounds 9 --burst 5 -->

Each block runs in a fresh temporary folder that holds links to the repository root's entries
(so `examples/...`, `tests/data/...` and `python benchmarks/x.py` work and files a command
writes do not land in the tree), with the commands of the Python running this script first on
PATH, stdout and stderr together. The commands of one session block share a folder. A block is
rewritten only when its new text differs from the old in more than durations (`2 s`, `15.3 s`,
`41 ms`) and temporary paths, so re-running does not churn the docs.

    python docs/regen.py                 # every marked block but the slow ones; rewrite
    python docs/regen.py --check         # report the blocks that differ, exit 1 if any
    python docs/regen.py --cheap --check # only the cheap ones (what the test runs)
    python docs/regen.py --slow docs/benchmarks.md   # slow ones too, one page
    python docs/regen.py --list          # the marked blocks, their flags and commands
    python docs/regen.py -k sqnxt-quant  # the blocks whose page or command contains a word
"""
import argparse
import concurrent.futures
import difflib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/*.md", "weights/README.md"]
MARKER = re.compile(r"^<!--\s*output((?:\s+[a-z]+)*)\s*(?::\s*(.*?))?\s*-->\s*$")
FLAGS = {"cheap", "slow", "fails"}
FENCE = re.compile(r"^(```|~~~)")
DURATION = re.compile(r"\b\d+(?:\.\d+)?(?: ?(?:s|ms|min)|m\d+(?:\.\d+)?s)\b")
TEMP_PATH = re.compile(r"(/tmp|/var/folders/[^\s/]+/[^\s/]+/T)/tmp[\w-]+")


@dataclass
class Block:
    page: Path
    marker_line: int  # 0-based index of the marker
    start: int        # first line of the content (after the opening fence, or the first table row)
    end: int          # one past the content's last line
    flags: frozenset
    command: str      # "" for a session block
    first: str = ""   # a session block's first command

    @property
    def where(self):
        return f"{self.page.relative_to(ROOT)}:{self.marker_line + 1}"

    @property
    def label(self):
        return self.command or f"$ {self.first}"


def find_blocks(page: Path, lines: list) -> list:
    blocks, i = [], 0
    while i < len(lines):
        m = MARKER.match(lines[i])
        if not m:
            i += 1
            continue
        flags = frozenset(m.group(1).split())
        unknown = flags - FLAGS
        if unknown:
            raise SystemExit(f"{page}:{i + 1}: unknown flag(s) {sorted(unknown)} in {lines[i]!r}")
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j < len(lines) and FENCE.match(lines[j]):
            fence = FENCE.match(lines[j]).group(1)
            k = j + 1
            while k < len(lines) and not lines[k].startswith(fence):
                k += 1
            if k == len(lines):
                raise SystemExit(f"{page}:{j + 1}: code block never closed")
            blocks.append(Block(page, i, j + 1, k, flags, m.group(2) or ""))
            i = k + 1
        elif j < len(lines) and lines[j].startswith("|"):
            k = j
            while k < len(lines) and lines[k].startswith("|"):
                k += 1
            blocks.append(Block(page, i, j, k, flags, m.group(2) or ""))
            i = k
        else:
            raise SystemExit(f"{page}:{i + 1}: an output marker must come right before a code "
                             "block or a table")
        b = blocks[-1]
        if not b.command:
            prompts = [line[2:] for line in lines[b.start:b.end] if line.startswith("$ ")]
            if not prompts:
                raise SystemExit(f"{page}:{i + 1}: a marker without a command needs '$ ' lines")
            b.first = prompts[0]
    return blocks


# not linked: the repository, and the source package, which `python -c` in the scratch folder
# would import instead of the installed one (without its compiled kernels, where the install is
# not editable)
UNLINKED = {".git", "sqnxt_engine"}


def workdir():
    """A temporary folder with a link to each entry of the repository root (but UNLINKED)."""
    tmp = tempfile.TemporaryDirectory(prefix="sqnxt-regen-")
    for entry in ROOT.iterdir():
        if entry.name not in UNLINKED:
            os.symlink(entry, Path(tmp.name) / entry.name)
    return tmp


def environment():
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(COLUMNS="200", TERM="dumb", NO_COLOR="1", PYTHONHASHSEED="0", PYTHONUNBUFFERED="1")
    return env


def shell(command, cwd, timeout):
    """(exit code, what the command printed, stdout and stderr together)."""
    try:
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd,
                              env=environment(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"(timed out after {timeout} s)"
    text = done.stdout.decode("utf-8", "replace")
    text = text.replace(str(cwd) + "/", "").replace(str(ROOT) + "/", "")
    return done.returncode, text


def tidy(text):
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def regenerate(block: Block, old: list, timeout: float):
    """(new content lines, problem or None)."""
    with workdir() as cwd:
        if block.command:
            rc, out = shell(block.command, cwd, timeout)
            problem = _bad_exit(block, block.command, rc)
            return tidy(out), problem
        new, problem = [], None
        for line in old:
            if not line.startswith("$ "):
                continue
            rc, out = shell(line[2:], cwd, timeout)
            problem = problem or _bad_exit(block, line[2:], rc)
            new.append(line)
            new.extend(tidy(out))
        return new, problem


def _bad_exit(block, command, rc):
    if rc is None:
        return f"timed out: {command}"
    if (rc != 0) != ("fails" in block.flags):
        return f"exit code {rc}: {command}"
    return None


def comparable(lines):
    return [TEMP_PATH.sub("/tmp/…", DURATION.sub("N s", line)) for line in lines]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pages", nargs="*", help="pages to regenerate (default: README.md, docs/*.md, "
                    "weights/README.md)")
    ap.add_argument("--check", action="store_true",
                    help="rewrite nothing: report the blocks that differ, exit 1 if any")
    ap.add_argument("--cheap", action="store_true", help="only the blocks marked cheap")
    ap.add_argument("--slow", action="store_true", help="the blocks marked slow too")
    ap.add_argument("-k", dest="match", help="only blocks whose page or command contains this")
    ap.add_argument("--list", action="store_true", help="list the marked blocks and stop")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="blocks run at once (default 1)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per command")
    args = ap.parse_args(argv)

    pages = ([Path(p).resolve() for p in args.pages] if args.pages else
             [p for pattern in PAGES for p in sorted(ROOT.glob(pattern))])
    texts = {p: p.read_text("utf-8").split("\n") for p in pages}
    chosen = []
    for page in pages:
        for b in find_blocks(page, texts[page]):
            if args.cheap and "cheap" not in b.flags:
                continue
            if "slow" in b.flags and not args.slow:
                continue
            if args.match and args.match not in f"{b.where} {b.label}" + "\n".join(
                    texts[page][b.start:b.end] if not b.command else []):
                continue
            chosen.append(b)
    if args.list:
        for b in chosen:
            print(f"{b.where}  [{' '.join(sorted(b.flags)) or 'default'}]  {b.label}")
        return 0

    def run(b):
        return b, *regenerate(b, texts[b.page][b.start:b.end], args.timeout)

    differ, problems, results = [], [], []
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for b, new, problem in pool.map(run, chosen):
            old = texts[b.page][b.start:b.end]
            if problem:
                problems.append(f"{b.where}: {problem}")
                print(f"FAILED  {b.where}  {problem}", file=sys.stderr)
                print("\n".join(new[-20:]), file=sys.stderr)
                continue
            same = comparable(old) == comparable(new)
            print(f"{'same   ' if same else 'DIFFERS'} {b.where}  {b.label}", file=sys.stderr)
            if not same:
                differ.append(b)
                results.append((b, new))
                if args.check:
                    sys.stdout.writelines(difflib.unified_diff(
                        [s + "\n" for s in old], [s + "\n" for s in new],
                        f"{b.where} (docs)", f"{b.where} (now)", n=1))
    if not args.check:
        # rewrite from the bottom of each page up, so earlier blocks' line numbers hold
        for b, new in sorted(results, key=lambda r: (str(r[0].page), -r[0].start)):
            texts[b.page][b.start:b.end] = new
        for page in {b.page for b, _ in results}:
            page.write_text("\n".join(texts[page]), "utf-8")
    verb = "differ" if args.check else "rewritten"
    print(f"{len(chosen)} block(s) run, {len(differ)} {verb}, {len(problems)} failed",
          file=sys.stderr)
    return 1 if problems or (args.check and differ) else 0


if __name__ == "__main__":
    sys.exit(main())
