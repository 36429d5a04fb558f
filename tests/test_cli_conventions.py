"""What every command does alike: --version, defaults in --help, one-line subcommand descriptions,
quiet broken pipes, closest-name suggestions, notes on overridden options, the old spellings of
renamed options, --out DIR made, and the mission's line `sqnxt-infer image.jpg --weights
1.0-sqnxt-23v5.npz` from a pytorchcv checkpoint."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sqnxt_engine import __version__, zoo
from sqnxt_engine.cli import convert, infer, models, train
from sqnxt_engine.cli import eval as eval_cli
from sqnxt_engine.emu import cli as emu_cli
from sqnxt_engine.emu import codesign
from sqnxt_engine.errors import UserError
from sqnxt_engine.io.model import load_model

COMMANDS = {"sqnxt-models": models.main, "sqnxt-convert": convert.main, "sqnxt-infer": infer.main,
            "sqnxt-eval": eval_cli.main, "sqnxt-train": train.main, "sqnxt-emu": emu_cli.main,
            "sqnxt-codesign": codesign.main}


@pytest.mark.parametrize("prog", COMMANDS)
def test_version(prog, capsys):
    with pytest.raises(SystemExit) as e:
        COMMANDS[prog](["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"{prog} {__version__}"


def test_help_shows_defaults_and_subcommand_descriptions(capsys):
    with pytest.raises(SystemExit):
        infer.main(["--help"])
    assert "(default: 5)" in " ".join(capsys.readouterr().out.split())  # --top
    with pytest.raises(SystemExit):
        emu_cli.main(["--help"])
    out = capsys.readouterr().out
    for sub in ("trace", "table3", "figure6"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(sub + " "))
        assert len(line.split()) > 3  # the subcommand's name and its description
        with pytest.raises(SystemExit):
            emu_cli.main([sub, "--help"])
        help_text = capsys.readouterr().out
        assert line.split(None, 1)[1].split()[0] in help_text  # the description, in its own help
    with pytest.raises(SystemExit):
        emu_cli.main(["trace", "--help"])
    assert "(default: 16x16)" in " ".join(capsys.readouterr().out.split())  # --hw


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "sqnxt_engine.cli.models"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command writes (as `| head` after a line)
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and err == ""


@pytest.mark.parametrize("ask, close", [(lambda: zoo.build("1.0-SqNxt-23v9"), "1.0-SqNxt-23v5"),
                                        (lambda: load_model("1.0-SqNxt-23v5-fmnst"), "1.0-SqNxt-23v5-fmnist")])
def test_unknown_names_suggest_the_closest(ask, close):
    with pytest.raises(UserError, match="closest: .*" + close.replace(".", r"\.")):
        ask()


def test_a_missing_weight_file_names_shipped_weights_and_the_conversion(tmp_path, capsys):
    image = tmp_path / "image.jpg"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    missing = tmp_path / "1.0-sqnxt-23v5.npz"
    assert infer.main([str(image), "--weights", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1.0-SqNxt-23v5-fmnist" in err and "1.0-SqNxt-23-fmnist," not in err
    assert f"sqnxt-convert CHECKPOINT.pth -o {missing}" in err


def test_overridden_option_is_named_on_stderr(capsys):
    assert emu_cli.main(["trace", "--weights", "1.0-SqNxt-23v5-fmnist", "--model", "1.0-SqNxt-23",
                         "--json"]) == 0
    assert "note: --model 1.0-SqNxt-23 is ignored" in capsys.readouterr().err


def test_out_dir_is_made(tmp_path):
    pytest.importorskip("matplotlib")
    csv, png = emu_cli._outputs(str(tmp_path / "new" / "folder"), "figure6", force=False)
    assert csv.parent.is_dir() and png.parent == csv.parent


def test_mission_example_from_a_pytorchcv_checkpoint(tmp_path, capsys, monkeypatch):
    """A checkpoint in pytorchcv's published format (torch.save of the state dict of a seeded
    sqnxt23v5_w1: no ImageNet weights exist here), converted under the mission's name, then the
    mission's line."""
    torch = pytest.importorskip("torch")
    squeezenext = pytest.importorskip("pytorchcv.models.squeezenext")
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    torch.save(squeezenext.sqnxt23v5_w1().state_dict(), "sqnxt23v5_w1.pth")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8)).save("image.jpg")
    assert convert.main(["sqnxt23v5_w1.pth", "-o", "1.0-sqnxt-23v5.npz"]) == 0
    assert capsys.readouterr().out.startswith("1.0-sqnxt-23v5.npz: sqnxt23v5_w1, ")
    assert infer.main(["image.jpg", "--weights", "1.0-sqnxt-23v5.npz"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "image.jpg" and len(out) == 6  # the image, then its top 5 ImageNet classes
    # the former spellings --output and --arch still work
    assert convert.main(["sqnxt23v5_w1.pth", "--output", "again.npz", "--arch", "sqnxt23v5_w1"]) == 0
