"""Per candidate and accelerator of a sqnxt-codesign database: cycles, energy, DRAM energy and its
share, DRAM bytes and utilisation, from its emulation records (docs/codesign.md).

    python docs/outputs/codesign_levels.py SEARCH.toml DB.sqlite
"""
import sys

from sqnxt_engine.cli.common import format_table
from sqnxt_engine.emu import codesign as CD

search = CD.load_search(sys.argv[1])
db = CD.CodesignDB(sys.argv[2], readonly=True)
emulated = {r["key"]: r for r in db.records()}
db.close()
rows = []
for c in search.candidates:
    for p in search.points_of(c):
        r = emulated.get(p.key)
        if r:
            rows.append({"candidate": c.label, "array": f"{r['pe_rows']}x{r['pe_cols']}",
                         "buffer_kb": r["gb_bytes"] // 1024, "cycles": r["cycles"], "energy": r["energy"],
                         "dram_share": round(r["energy_dram"] / r["energy"], 3),
                         "dram_bytes": r["dram_bytes"], "utilisation": round(r["utilisation"], 3)})
print(format_table(rows))
