"""A plain-text table as the commands print it (a header, a line of dashes, rows) read from stdin,
printed as a markdown table: `python benchmarks/shift_vs_conv.py | python docs/outputs/md_table.py`.
Lines before the header and after the rows are left out."""
import re
import sys

lines = sys.stdin.read().split("\n")
rule = next(i for i, line in enumerate(lines) if re.fullmatch(r"-+( +-+)*", line.strip() or "x"))
spans = [m.span() for m in re.finditer(r"-+", lines[rule])]


def cells(line):
    return [line[a:b if k + 1 < len(spans) else None].strip() for k, (a, b) in enumerate(spans)]


print("| " + " | ".join(cells(lines[rule - 1])) + " |")
print("|" + "---|" * len(spans))
for line in lines[rule + 1:]:
    if not line.strip():
        break
    print("| " + " | ".join(cells(line)) + " |")
