"""sqnxt-emu validate (emu/validate.py): the exact figures (SCALE-Sim's RTL cycles, AlexNet's
MACs) asserted; the ratio figures recorded in tests/data/validation_recorded.json, so that a
figure that moves, or leaves (or enters) its band, fails here until the recording is updated
on purpose: `cd /tmp && python .../tests/test_emu_validate.py` rewrites it from a fresh run."""
import json
import sys
from pathlib import Path

import pytest

from sqnxt_engine.emu import validate as V
from sqnxt_engine.emu.cli import main
from sqnxt_engine.kernels import ConvShape

RECORDED = Path(__file__).resolve().parent / "data" / "validation_recorded.json"


def test_reference_files_load_and_name_their_sources():
    for name in V.REFERENCES:
        ref = V.reference(name)
        assert ref["source"] and ref["title"]
    jssc = V.reference("eyeriss_jssc17_table5.json")
    assert jssc["batch"] == 4 and list(jssc["layers"]) == [f"conv{i}" for i in range(1, 6)]
    assert V.reference("eyeriss_isca16_fig10.json")["batch"] == 16


def test_systolic_rtl_suite_is_exact():
    # an N x N by N x N product on an N x N output-stationary array: N MAC steps plus the
    # skew rows + cols - 2, charged once (one tile): 3N - 2, the RTL's 10 at N = 4
    ref = V.reference("scalesim_rtl.json")
    rows = V.scalesim_rows(ref, {})
    assert [r.emulator for r in rows] == [3 * n - 2 for n in ref["sizes"]]
    assert rows[0].item == "N=4" and rows[0].emulator == rows[0].reference == 10
    assert all(r.status == "PASS" for r in rows)


def test_alexnet_macs_are_the_tables():
    # AlexNet's grouped CONV2/4/5 (the Caffe model), batch 4: Table V's MACs, exactly the
    # layers' K * Ho * Wo * C/groups * R * S
    layers = V.alexnet_layers(4)
    want = {"conv1": 421_660_800, "conv2": 895_795_200, "conv3": 598_081_536,
            "conv4": 448_561_152, "conv5": 299_040_768}
    table = V.reference("eyeriss_jssc17_table5.json")["layers"]
    for name, macs in want.items():
        shape, n = layers[name]
        assert n * shape.macs == macs
        assert abs(macs / 1e6 / table[name]["macs_millions"] - 1) < 1e-3
    # fully connected layers carry the batch: one 1x1 convolution over the 16 images
    shape, n = V.alexnet_layers(16)["fc6"]
    assert (shape, n) == (ConvShape(C=9216, H=1, W=16, K=4096), 1)


def _recorded():
    return json.loads(RECORDED.read_text())


@pytest.mark.parametrize("suite", [
    "scalesim-rtl", "eyeriss-jssc17",
    pytest.param("eyeriss-isca16", marks=pytest.mark.slow)])   # fc6/fc7's energy searches
def test_figures_are_the_recorded_ones(suite):
    got = V.validate((suite,), jobs=1)[suite]["rows"]
    want = _recorded()[suite]
    assert [f"{r.item} {r.quantity}" for r in got] == list(want)
    for r in got:
        w = want[f"{r.item} {r.quantity}"]
        assert r.reference == w["reference"], f"{r.item} {r.quantity}: the reference changed"
        assert r.emulator == pytest.approx(w["emulator"], rel=1e-9), \
            f"{r.item} {r.quantity}: moved from {w['emulator']} to {r.emulator}"
        assert r.status == w["status"], f"{r.item} {r.quantity}: {w['status']} -> {r.status}"


def test_recorded_statuses_follow_their_bands():
    # the recording is consistent with itself: banded rows PASS or FAIL, others "-"
    for suite, rows in _recorded().items():
        if suite == "about":
            continue
        for key, r in rows.items():
            assert r["status"] in ("PASS", "FAIL", "-"), key
    assert all(r["status"] == "PASS" for r in _recorded()["scalesim-rtl"].values())


@pytest.mark.slow
def test_cli_prints_every_suite(capsys):
    assert main(["validate", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == set(V.SUITES)
    rec = _recorded()
    for suite, v in doc.items():
        assert [r["status"] for r in v["rows"]] == [r["status"] for r in rec[suite].values()]


def record(path=RECORDED):
    """Rewrite the recording from a fresh run (after a reviewed change)."""
    out = {"about": _recorded()["about"]}
    for suite, v in V.validate().items():
        out[suite] = {f"{r.item} {r.quantity}": {"reference": r.reference, "emulator": r.emulator,
                                                  "status": r.status} for r in v["rows"]}
    Path(path).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else RECORDED)
