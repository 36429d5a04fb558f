"""Figures fit for a paper: trace --plot / --roofline, table3 / figure6 --out, in PNG, PDF and
SVG (the suffix chooses), checked before any work; the roofline's points under its roofs."""
import xml.etree.ElementTree as ET

import pytest

from sqnxt_engine.emu import figures as FG
from sqnxt_engine.emu.cli import main
from sqnxt_engine.emu.hardware import load_hardware
from sqnxt_engine.emu.network import emulate
from sqnxt_engine.emu.output import figure_format
from sqnxt_engine.errors import UserError
from sqnxt_engine.runtime import random_weights
from sqnxt_engine.zoo import build

pytest.importorskip("matplotlib")
MODEL = "1.0-SqNxt-23v5"


def check_figure(path):
    """The file is a figure of the format its suffix names."""
    data = path.read_bytes()
    fmt = path.suffix[1:]
    if fmt == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    elif fmt == "pdf":
        assert data[:5] == b"%PDF-" and data.rstrip().endswith(b"%%EOF")
    else:
        assert ET.fromstring(data).tag == "{http://www.w3.org/2000/svg}svg"
    assert len(data) > 5000


@pytest.fixture(scope="module")
def trace_result():
    graph = build(MODEL)
    return emulate(graph, random_weights(graph, 0), load_hardware("8x8"), "best")


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_trace_figures_in_every_format(trace_result, fmt, tmp_path):
    for name, draw in (("trace", lambda p: FG.plot_trace(trace_result, p, log=True)),
                       ("roofline", lambda p: FG.plot_roofline(trace_result, p))):
        path = tmp_path / f"{name}.{fmt}"
        draw(path)
        check_figure(path)
        again = tmp_path / f"{name}-again.{fmt}"
        draw(again)
        assert again.read_bytes() == path.read_bytes()   # no date, no random ids


def test_roofline_points_lie_under_both_roofs(trace_result):
    hw = trace_result.hw
    points = FG.roofline_points(trace_result)
    assert [p["layer"] for p in points] == [r.name for r in trace_result.mac_steps]
    for p in points:
        assert 0 < p["macs_per_cycle"] <= hw.pes
        assert p["macs_per_cycle"] <= hw.dram_bytes_per_cycle * p["intensity"] * (1 + 1e-12)
        assert p["stage"] == p["layer"].split(".")[0]
    assert {p["dataflow"] for p in points} == {"ws", "os_socmop"}


def test_trace_writes_its_figures_from_the_command_line(tmp_path, capsys):
    plot, roof = tmp_path / "t.svg", tmp_path / "r.pdf"
    assert main(["trace", "--model", MODEL, "--zoo-options", '{"input_size": 64}', "--hw", "8x8", "--json",
                 "--plot", str(plot), "--roofline", str(roof)]) == 0
    check_figure(plot)
    check_figure(roof)
    assert main(["trace", "--model", MODEL, "--roofline", str(roof)]) == 2   # no overwrite
    assert "exists (use --force" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["fig.jpg", "fig", "fig.png.txt"])
def test_an_unknown_figure_format_stops_before_any_work(name, tmp_path, capsys, monkeypatch):
    import sqnxt_engine.emu.cli as cli
    monkeypatch.setattr(cli, "emulate", lambda *a, **k: pytest.fail("emulated before the check"))
    for option in ("--plot", "--roofline"):
        assert main(["trace", option, str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "unknown figure format" in err[0] and ".png, .pdf, .svg" in err[0]
    assert not list(tmp_path.iterdir())
    with pytest.raises(UserError):
        figure_format(name)
    assert figure_format("a/B.SVG") == "svg"


def test_figure6_out_in_another_format(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["figure6", "--models", '1.0-SqNxt-23{"input_size": 64},1.0-SqNxt-23v5{"input_size": 64}',
                 "--hw", "8x8", "--jobs", "1",
                 "--out", str(out), "--figure-format", "svg", "--log", "--csv"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["figure6.csv", "figure6.svg"]
    check_figure(out / "figure6.svg")
    assert main(["figure6", "--figure-format", "bmp"]) == 2
    assert "--figure-format" in capsys.readouterr().err
