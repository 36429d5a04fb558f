"""sqnxt-emu table3 / figure6 on reduced settings (structure and invariants, never the paper's
numbers), and trace on ONNX-converted weights and real image files."""
import csv
import json
import sys

import numpy as np
import pytest

from sqnxt_engine.emu import reports as R
from sqnxt_engine.emu.cli import main

SMALL = "1.0-SqNxt-23v5,SqueezeNet-v1.1"
SMALL_64 = '1.0-SqNxt-23v5{"input_size": 64},1.0-SqNxt-23{"input_size": 64}'  # 12x fewer MACs
PAPER = ("model,params_m,macs_m,top1,top5,depth,time_8x8_32kb,energy_8x8_32kb,time_16x16_128kb,"
         "energy_16x16_128kb\n"
         "SqueezeNet v1.1,1.2,352,57.10,80.30,,1.60,3.3e9,1.31,2.4e9\n"
         "1.0-SqNxt-23v5,0.94,228,59.24,82.41,2-4-14-1,1.00,2.6e9,1.00,2.0e9\n")


@pytest.fixture(scope="module")
def table3_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("t3")
    ref = d / "paper_table3.csv"
    ref.write_text(PAPER)
    out = d / "out"
    out.mkdir()
    return ref, out


def test_table3_json_csv_png(table3_run, capsys):
    pytest.importorskip("matplotlib")
    ref, out = table3_run
    assert main(["table3", "--models", SMALL, "--reference", str(ref), "--json", "--out", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["config"]) for r in rows] == [
        ("1.0-SqNxt-23v5", "8x8"), ("SqueezeNet-v1.1", "8x8"),
        ("1.0-SqNxt-23v5", "16x16"), ("SqueezeNet-v1.1", "16x16")]
    for cfg in ("8x8", "16x16"):
        part = [r for r in rows if r["config"] == cfg]
        fastest = min(r["cycles"] for r in part)
        assert min(r["time"] for r in part) == 1.0
        for r in part:
            assert r["time"] == pytest.approx(r["cycles"] / fastest)
            assert r["energy"] > r["macs"] * 0.6  # at least the MACs done (40% skipped at most)
            assert r["energy_ratio"] == pytest.approx(r["energy"] / r["paper_energy"])
            assert r["time_ratio"] == pytest.approx(r["time"] / r["paper_time"])
    sq8 = next(r for r in rows if r["model"] == "SqueezeNet-v1.1" and r["config"] == "8x8")
    assert sq8["paper_time"] == pytest.approx(1.60) and sq8["paper_energy"] == 3.3e9
    with open(out / "table3.csv", newline="") as f:
        back = list(csv.DictReader(f))
    assert [r["model"] for r in back] == [r["model"] for r in rows]
    assert float(back[1]["energy"]) == pytest.approx(rows[1]["energy"])
    assert (out / "table3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # written once: the second run stops before any work
    assert main(["table3", "--models", SMALL, "--reference", str(ref), "--out", str(out)]) == 2
    assert "exists (use --force" in capsys.readouterr().err


def test_table3_without_the_reference(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(R, "packaged_reference", lambda: tmp_path / "nowhere.csv")
    assert main(["table3", "--models", "1.0-SqNxt-23v5", "--hw", "8x8", "--json"]) == 0
    io = capsys.readouterr()
    (row,) = json.loads(io.out)
    assert row["paper_time"] is None and row["time"] == 1.0 and row["config"] == "8x8"
    assert "missing from this installation" in io.err and "without the paper's columns" in io.err


def test_report_user_errors(tmp_path, monkeypatch, capsys):
    assert main(["table3", "--models", "NoNet"]) == 2
    assert main(["table3", "--hw", "4x4"]) == 2
    assert main(["table3", "--reference", str(tmp_path / "missing.csv")]) == 2
    (tmp_path / "a-file").write_text("")
    assert main(["figure6", "--out", str(tmp_path / "a-file")]) == 2  # a file is not a folder
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert main(["figure6", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5
    assert err[-1] == "error: plots need matplotlib: pip install 'sqnxt-engine[plot]'"


def test_figure6_groups_sum_the_network(tmp_path):
    runs = R.Runs()
    results, run = {}, runs.run
    runs.run = lambda m, c: results.setdefault((m, c), run(m, c))
    models = ("1.0-SqNxt-23", "1.0-SqNxt-23v5")
    rows = R.figure6(models, ("8x8",), runs)
    groups = sorted({r["group"] for r in rows})
    assert groups == list(range(len(groups)))
    assert rows[0]["label"] == "stem" and rows[0]["layer_config"] == "stem: 3 -> 64 7x7/2"
    for m in models:
        res = results[(m, "8x8")]
        mine = [r for r in rows if r["model"] == m]
        assert len(mine) == len(groups)
        assert sum(r["layers"] for r in mine) == len(res.steps)
        assert sum(r["macs"] for r in mine) == res.macs
        assert sum(r["cycles"] for r in mine) == pytest.approx(res.cycles, abs=len(groups))
        for r in mine:
            if r["layers"]:
                assert r["efficiency"] == pytest.approx(r["macs"] / r["cycles"] / 64, rel=1e-3)
                # performed MACs: the zeros SOC-MOP skips are no work, the array is never over-full
                assert 0 < r["utilisation"] <= min(1.0, r["efficiency"])
    # v5 has 14 blocks in stage 3 against v1's 8: its stage-3 items sum more layers
    s3 = {m: sum(r["layers"] for r in rows if r["model"] == m and r["layer_config"].startswith("stage3"))
          for m in models}
    assert s3["1.0-SqNxt-23v5"] > s3["1.0-SqNxt-23"]
    pytest.importorskip("matplotlib")
    R.plot_figure6(rows, models, ("8x8",), tmp_path / "f6.png")
    assert (tmp_path / "f6.png").stat().st_size > 1000


# --- trace: ONNX graphs and images ---------------------------------------

def _onnx_npz(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = {"w1": rng.normal(size=(8, 3, 3, 3)), "b1": rng.normal(size=8),
             "w2": rng.normal(size=(8, 5)), "b2": rng.normal(size=5)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], "conv1", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], "relu1"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], "gap"),
             helper.make_node("Flatten", ["g"], ["f"], "flat"),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], "fc")]
    graph = helper.make_graph(
        nodes, "onnx-tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "tiny.onnx"))
    from sqnxt_engine.cli.convert import main as convert
    npz = tmp_path / "tiny.npz"
    assert convert([str(tmp_path / "tiny.onnx"), "-o", str(npz), "--preprocess",
                    "efficientnet-lite"]) == 0
    return npz


def test_trace_runs_an_onnx_graph_on_an_image(tmp_path, capsys):
    npz = _onnx_npz(tmp_path)
    capsys.readouterr()
    assert main(["trace", "--weights", str(npz), "--hw", "8x8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["layer"] for r in out["layers"]] == ["conv1", "fc"] and out["top1_match"]
    # sqnxt-convert kept the preset's normalisation at the network's own 16x16 input
    from PIL import Image
    img = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 30, 3), np.uint8)).save(img)
    assert main(["trace", "--weights", str(npz), "--image", str(img), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top1_match"]
    assert main(["trace", "--weights", str(npz), "--image", str(tmp_path / "none.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_trace_image_changes_the_input(tmp_path, capsys):
    from PIL import Image
    img = tmp_path / "img.png"
    Image.fromarray(np.full((300, 260, 3), 200, np.uint8)).save(img)
    runs = []
    for extra in ([], ["--image", str(img)]):
        assert main(["trace", "--model", "1.0-SqNxt-23v5", "--zoo-options", '{"input_size": 64}', "--hw", "16x16",
                     "--dataflow", "ws", "--json"] + extra) == 0
        runs.append(json.loads(capsys.readouterr().out))
    # WS does not skip zeros: the same counts; the input (so the output) differs
    assert runs[0]["total"]["cycles"] == runs[1]["total"]["cycles"]
    assert runs[0]["max_abs_float"] != runs[1]["max_abs_float"] and runs[1]["top1_match"]


def test_the_papers_table3_is_installed_with_the_package():
    """A plain install carries the paper's Table 3: every network of the table, both arrays."""
    paper = R.read_paper_table3(R.find_reference(None))
    assert set(paper) == {(m, cfg) for m in R.TABLE3_MODELS for cfg in R.CONFIGS}
    assert paper[("SqueezeNet-v1.1", "8x8")] == (1.60, 3.3e9)  # the PAPER row above, as published


@pytest.mark.parametrize("command", ["table3", "figure6"])
def test_jobs_do_not_change_the_results(command, tmp_path, capsys):
    """Worker processes (--jobs 2) print and write what one process (--jobs 1) does: two
    (model, hardware) pairs, one per worker, on 64x64 inputs (what is compared does not depend
    on the size; at 227x227 the test took 8-14 s per command)."""
    pytest.importorskip("matplotlib")
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        assert main([command, "--models", SMALL_64, "--hw", "8x8", "--jobs", jobs, "--json",
                     "--out", str(out)]) == 0
        outputs.append((capsys.readouterr().out, (out / f"{command}.csv").read_text()))
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0][0])


def test_a_worker_task_returns_its_searches_and_uses_those_given(monkeypatch):
    """A task run after another is given the searches it made: it searches nothing again and
    gives the same results as when it searched for itself."""
    from sqnxt_engine.emu import search as S
    from sqnxt_engine.io.network_spec import NetworkSpec
    spec = NetworkSpec.of("1.0-SqNxt-23v5", {"input_size": 32})
    monkeypatch.setattr(R, "_WORKER_CACHE", {})
    first, made = R._emulate_in_worker(spec, ["8x8"], 0.4, 0, "best", {}, {})
    assert made and all(isinstance(c, S.Choice) for c in made.values())
    monkeypatch.setattr(R, "_WORKER_CACHE", {})   # another worker
    monkeypatch.setattr(S, "search", lambda *a, **k: pytest.fail("searched again"))
    again, none = R._emulate_in_worker(spec, ["8x8"], 0.4, 0, "best", {}, made)
    assert none == {}
    assert [r.total_row() for r in again] == [r.total_row() for r in first]

def test_jobs_must_be_a_positive_integer(capsys):
    for bad in ("0", "-1", "two"):
        assert main(["table3", "--jobs", bad]) == 2
        assert "--jobs must be a positive integer" in capsys.readouterr().err


def test_co_design_steps_are_ratios_of_the_later_network_to_the_earlier():
    from sqnxt_engine.emu import fidelity as F
    nets = [F.V1, "1.0-SqNxt-23v2", "1.0-SqNxt-23v3", "1.0-SqNxt-23v4", F.V5]
    # made-up rows: each network's cycles halve the previous one's, energies a third
    rows = [{"model": m, "config": "8x8", "cycles": 1000 / 2 ** i, "energy": 900 / 3 ** i,
             "macs": 100 + i, "paper_time": 1.0 + i, "paper_energy": None} for i, m in enumerate(nets)]
    steps = {r["step"]: r for r in F.step_rows(rows)}
    assert list(steps) == ["v2/v1", "v3/v2", "v4/v3", "v5/v4", "v5/v2", "v5/v1"]
    assert steps["v3/v2"]["cycles"] == 0.5 and steps["v5/v2"]["cycles"] == 0.125
    assert steps["v5/v1"]["energy"] == pytest.approx(1 / 81)
    assert steps["v2/v1"]["macs"] == pytest.approx(101 / 100)
    assert steps["v4/v3"]["paper_time"] == pytest.approx(4 / 3)
    assert steps["v2/v1"]["paper_energy"] is None   # no paper figure: no ratio
    assert F.step_rows([r for r in rows if r["model"] != F.V5])[-1]["step"] == "v4/v3"


def test_networks_sharing_layer_shapes_are_known_before_they_run():
    """run_all starts a network after those it shares layer shapes with (_layer_shapes: a zoo
    model's conv and fc shapes from its graph alone; a file's are not read)."""
    from sqnxt_engine.io.network_spec import NetworkSpec
    v1, v5, alex = (R._layer_shapes(m) for m in ("1.0-SqNxt-23", "1.0-SqNxt-23v5", "AlexNet"))
    assert len(v1 & v5) > len(v5) / 2 and not v1 & alex
    assert any(s.K == 4096 and s.C == 9216 for s in alex)   # fc6
    assert R._layer_shapes(NetworkSpec.of(file="any.npz")) == frozenset()
