"""Hardening, round 2 (issue 28): images bounded before decoding (ICO, ICNS, TIFF, 16-bit and RGBA
PNG: the header's size and the bytes decoding takes), numbers that cannot mislead (no accuracy from
NaN outputs), and user input that used to end in an internal error: each a one-line refusal, exit 2.

The image tests run the loader in a child process and read the child's own peak resident size
(ru_maxrss of RUSAGE_SELF, before and after the call: Pillow's C allocations count there, where
tracemalloc does not see them)."""
import json
import resource
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from sqnxt_engine import limits
from sqnxt_engine.errors import UserError
from sqnxt_engine.io.images import PRESETS, load_image

try:  # imported once at collection, as tests/test_train_recipe.py does (seconds, not a test's)
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="training needs torch")

MB = 1 << 20

# The child: sqnxt-infer's main on the arguments, with the peak resident size before and after.
_CHILD = r"""
import json, resource, sys
from sqnxt_engine.cli.infer import main
from sqnxt_engine.runtime.predict import Classifier
Classifier.load("1.0-SqNxt-23v5-fmnist")  # the weights sqnxt-infer loads: not the image's cost
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(sys.argv[1:])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"code": code, "grew_mb": (after - before) / 1024}))
"""


def _infer(*args):
    """(exit code, peak growth in MB during the command, stderr) of sqnxt-infer in a child."""
    def cap():  # 4 GiB of address space: a loader that is not bounded fails, the machine does not
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    r = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], capture_output=True, text=True,
                       cwd="/", timeout=60, preexec_fn=cap)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["code"], out["grew_mb"], r.stderr


def _png(w: int, h: int, depth: int = 8, color: int = 6, value: int = 0) -> bytes:
    """A PNG of w x h pixels (colour type `color`, `depth` bits), every byte `value`: a few kB
    for millions of pixels, written row by row (never held whole)."""
    bands = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    row = b"\0" + bytes([value]) * (w * bands * depth // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _ico(embedded: bytes) -> bytes:
    """An ICO of one image whose directory says 256 x 256 (0, 0), holding `embedded`."""
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(embedded), 22)
    return struct.pack("<HHH", 0, 1, 1) + entry + embedded


def _icns(embedded: bytes) -> bytes:
    """An ICNS whose one block is the 512x512@2x icon (ic10), holding `embedded`."""
    block = b"ic10" + struct.pack(">I", 8 + len(embedded)) + embedded
    return b"icns" + struct.pack(">I", 8 + len(block)) + block


def _one_line_refusal(code, err, *words):
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


# --- 1. images bounded before decoding ------------------------------------------------------

@pytest.mark.parametrize("container", [_ico, _icns])
def test_ico_and_icns_embedded_size_checked_before_decoding(tmp_path, container):
    # the directory says 256 x 256 (ICO) or 1024 x 1024 (ICNS); the PNG inside is 4000 x 4000
    # RGBA, 64 MB decoded: before, ICO decoded it inside Image.open and ICNS when loaded (an
    # ICNS then classified it, exit 0), with the pixel limit at 1 Mi pixels
    path = tmp_path / ("icon.ico" if container is _ico else "icon.icns")
    path.write_bytes(container(_png(4000, 4000)))
    code, grew, err = _infer("--resource-limit", "max_image_pixels=1M", path)
    assert grew < 24, f"{grew:.0f} MB"  # decoding it takes 64 MB at least
    _one_line_refusal(code, err, "embedded image of 4000x4000", "max_image_pixels")


def test_ico_embedded_huge_png_refused_in_process(tmp_path):
    path = tmp_path / "huge.ico"
    png = bytearray(_png(1, 1))
    png[16:24] = struct.pack(">II", 60000, 60000)  # IHDR claims 60,000 x 60,000
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    path.write_bytes(_ico(bytes(png)))
    with pytest.raises(UserError, match="embedded image of 60000x60000: pixels .* max_image_pixels"):
        load_image(path, PRESETS["imagenet-torch"])
    # a bitmap instead, its header claiming 30,000 x 30,000 (the doubled height: its mask), in
    # the first of 65,535 directory entries: one header read, not 65,535
    dib = struct.pack("<IiiHHIIiiII", 40, 30000, 60000, 1, 32, 0, 0, 0, 0, 0, 0) + bytes(64)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(dib), 6 + 16 * 65535)
    path.write_bytes(struct.pack("<HHH", 0, 1, 65535) + entry * 65535 + dib)
    with pytest.raises(UserError, match="embedded image of 30000x60000: pixels .* max_image_pixels"):
        load_image(path, PRESETS["imagenet-torch"])


def test_16bit_png_memory_is_budgeted_by_its_decoded_bytes(tmp_path):
    # 2500 x 2500 grey at 16 bits: 6 M pixels, within every pixel limit. Its conversion to
    # 8 bits took 8-byte floats, three of them at once (before: ~170 MB for this file, 2.7 GB at
    # 100 M pixels); now the working bytes are budgeted, and the budget holds
    path = tmp_path / "deep.png"
    path.write_bytes(_png(2500, 2500, depth=16, color=0, value=0x80))
    assert Image.open(path).mode == "I;16"
    budget = 2500 * 2500 * (2 + 1 + 4) / MB  # 42 MB: decoded (2 bytes), 8-bit grey (1), RGB (4)
    code, grew, err = _infer(path)
    assert code == 0, err
    assert grew < budget, f"{grew:.0f} MB over a budget of {budget:.0f} MB"
    from sqnxt_engine.io.images import working_bytes
    assert working_bytes((2500, 2500), "I;16") / MB == budget
    code, grew, err = _infer("--resource-limit", "max_image_bytes=16M", path)
    _one_line_refusal(code, err, "image of 2500x2500 I;16: bytes to decode and convert", "max_image_bytes")
    assert grew < 16, f"{grew:.0f} MB"


def test_rgba_png_budgeted_by_bytes_not_pixels(tmp_path):
    # 9,000 x 9,000 RGBA: 81 M pixels, under max_image_pixels (100 M); its way to RGB takes four
    # images of 324 MB (1.96 GB at 100 M pixels before). The pixel data is cut short: refused
    # from the header, nothing of it is needed
    png = bytearray(_png(1, 1))
    png[16:24] = struct.pack(">II", 9000, 9000)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    path = tmp_path / "rgba.png"
    path.write_bytes(png)
    code, grew, err = _infer(path)
    _one_line_refusal(code, err, "image of 9000x9000 RGBA: bytes to decode and convert", "max_image_bytes")
    assert grew < 16
    with limits.using(max_image_bytes=2 << 30):  # raised: the same header passes the budget
        with pytest.raises(UserError, match="not a readable image"):  # (and the data is missing)
            load_image(path, PRESETS["imagenet-torch"])


def _tiled_tiff(w: int, h: int, tile: int) -> bytes:
    """A little-endian grey TIFF of w x h in one deflated tile whose header says `tile` x `tile`
    (the data: 64 x 64 bytes whatever it says)."""
    data = zlib.compress(bytes(range(64)) * 64)
    tags = [(256, 4, w), (257, 4, h), (258, 3, 8), (259, 3, 8), (262, 3, 1), (277, 3, 1),
            (322, 4, tile), (323, 4, tile), (324, 4, 8), (325, 4, len(data))]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, k, 1, v) for t, k, v in tags)
    return b"II*\0" + struct.pack("<I", 8 + len(data)) + data + ifd + b"\0\0\0\0"


def test_tiff_tile_declared_larger_than_the_budget_is_refused(tmp_path):
    path = tmp_path / "tiles.tif"
    path.write_bytes(_tiled_tiff(64, 64, 64))
    assert load_image(path, PRESETS["fashion-mnist"]).shape == (1, 28, 28)
    # a 1.6 GB tile for a 64 x 64 image in a 300-byte file: libtiff allocates the tile's buffer
    # and inflates into it (before: 1.5 GB, then "decoder error" and libtiff's warning on stderr)
    path.write_bytes(_tiled_tiff(64, 64, 40000))
    code, grew, err = _infer(path)
    assert grew < 16, f"{grew:.0f} MB"
    _one_line_refusal(code, err, "TIFF tile or strip (1,600,000,000) exceeds the limit max_image_bytes")


def test_ordinary_images_still_load_alike(tmp_path):
    # an icon of several sizes, a rotated JPEG, 16-bit and RGBA PNG: the same arrays as before
    img = Image.linear_gradient("L").resize((64, 48)).convert("RGBA")
    img.save(tmp_path / "a.ico", sizes=[(16, 16), (48, 48)])
    assert load_image(tmp_path / "a.ico", PRESETS["cifar10"]).shape == (3, 32, 32)
    jpeg = Image.linear_gradient("L").convert("RGB").resize((40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown 20 x 40
    jpeg.save(tmp_path / "r.jpg", exif=exif)
    turned = load_image(tmp_path / "r.jpg", PRESETS["cifar10"])
    from PIL import ImageOps

    from sqnxt_engine.io.images import preprocess, to_rgb8
    want = preprocess(to_rgb8(ImageOps.exif_transpose(Image.open(tmp_path / "r.jpg"))), PRESETS["cifar10"])
    np.testing.assert_array_equal(turned, want)


# --- 2. training inputs: every number in range, every checkpoint value checked ----------------

_TRAIN = ["ShiftResNet-20-e1", "--epochs", "1", "--limit-train", "8", "--limit-test", "8", "--batch-size", "8",
          "--warmup-steps", "1", "--threads", "1", "--device", "cpu"]


@pytest.mark.parametrize("option, value, words", [
    ("--threads", "-1", "--threads must be at least 1"),  # before: internal error (torch)
    ("--threads", "0", "--threads must be at least 1"),
    ("--limit-train", "-5", "--limit-train must be at least 1"),  # before: all but the last 5 images
    ("--limit-test", "0", "--limit-test must be at least 1"),
    ("--epochs", "-1", "--epochs must be a whole number from 0"),  # before: no training, exit 0
    ("--batch-size", "0", "--batch-size must be a whole number from 1"),  # before: ZeroDivisionError
    ("--lr", "-0.1", "--lr must be a number from 0"),  # before: trained uphill
    ("--lr", "inf", "--lr must be a number from 0"),
    ("--momentum", "1.5", "--momentum must be a number from 0 to 1 (not included)"),
    ("--weight-decay", "-1", "--weight-decay must be"),
    ("--warmup-steps", "-3", "--warmup-steps must be"),
    ("--crop-pad", "-2", "--crop-pad must be"),
    ("--crop-pad", "1000", "--crop-pad must be a whole number from 0 to 28"),  # before: 2 GB batches
    ("--erase-p", "2", "--erase-p must be a number from 0 to 1"),
    ("--erase-max-area", "-1", "--erase-max-area must be"),
    ("--label-smoothing", "1.5", "--label-smoothing must be"),
    ("--seed", "-1", "--seed must be"),  # before: internal error (numpy's seed)
    ("--seed", str(1 << 32), "--seed must be"),
    ("--prune", "1", "--prune must be a number from 0 to 1 (not included)"),
    ("--prune", "-0.5", "--prune must be"),
])
@needs_torch
def test_sqnxt_train_numbers_are_range_checked(tmp_path, capsys, option, value, words):
    from sqnxt_engine.cli.train import main
    out = tmp_path / "t.npz"
    assert main([*_TRAIN, "-o", str(out), option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert not out.exists()


@needs_torch
def test_sqnxt_train_zoo_options_must_give_the_fashion_mnist_form(tmp_path, capsys):
    from sqnxt_engine.cli.train import main
    # before: an internal error from torch (3 channels expected, 1 given) after loading the data
    assert main([*_TRAIN, "-o", str(tmp_path / "t.npz"), "--zoo-options", '{"input_size": 28}']) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Fashion-MNIST needs (1, 28, 28) and 10" in err, err


class _Stop(Exception):
    pass


def _stopped_run(tmp_path):
    """A checkpoint written after epoch 1 of a 3-epoch run on 64 images (4 steps an epoch), and
    what resuming needs: (path, run(checkpoint) -> trains the rest)."""
    from sqnxt_engine.train.checkpoint import Checkpoint
    from sqnxt_engine.train.torch_graph import GraphModule
    from sqnxt_engine.train.train import Recipe, train
    from tests.test_train_recipe import tiny_net
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 64)
    recipe = Recipe(epochs=3, batch_size=16, warmup_steps=2)
    path = tmp_path / "run.ckpt"

    def run(log=lambda _: None):
        torch.manual_seed(0)
        return train(GraphModule(tiny_net()), images, labels, recipe, log=log,
                     checkpoint=Checkpoint(path, {"run": "a"}, {"threads": 1, "device": "cpu"}))

    def stop(msg):
        if msg.startswith("epoch 1/"):
            raise _Stop
    with pytest.raises(_Stop):
        run(stop)
    return path, run


def _rewrite(path, meta_changes=None, array_changes=None):
    from sqnxt_engine.io.weights import read_npz_with_meta, write_npz_with_meta
    arrays, meta = read_npz_with_meta(path, "a checkpoint")
    meta.update(meta_changes or {})
    arrays.update(array_changes or {})
    write_npz_with_meta(path, arrays, json.dumps(meta), force=True)


@pytest.mark.parametrize("meta, arrays, words", [
    ({"epoch": 1.0}, None, "epoch 1.0 is not a whole number from 1 to 3"),  # before: TypeError
    ({"step": "4"}, None, "step '4' after 1 epochs, not 4"),  # before: TypeError
    ({"epoch": -5}, None, "epoch -5"),  # before: 8 epochs of a 3-epoch recipe, then deleted
    ({"epoch": 10 ** 9}, None, "epoch 1000000000"),  # before: no training at all
    ({"step": -4}, None, "step -4"),  # before: a negative learning rate
    ({"step": 7}, None, "step 7 after 1 epochs, not 4"),
    ({"seconds": -1}, None, "seconds -1"),
    ({"epoch": 2, "step": 8}, None, "its parts end at epoch 1, not at epoch 2"),
    (None, {"momentum.0": np.zeros((3, 3), np.float32)}, "momentum.0 is float32 (3, 3)"),  # before: RuntimeError
    (None, {"momentum.99": np.zeros(3, np.float32)}, "an array 'momentum.99'"),
    (None, {"generator": np.zeros(7, np.uint8)}, "generator is uint8 (7,)"),
    (None, {"model.layers.c1.weight": np.full((8, 1, 3, 3), np.inf, np.float32)}, "NaN or infinite"),
])
@needs_torch
def test_checkpoint_values_checked_before_training(tmp_path, meta, arrays, words):
    path, run = _stopped_run(tmp_path)
    _rewrite(path, meta, arrays)
    before = path.read_bytes()
    with pytest.raises(UserError, match="damaged checkpoint") as e:
        run()
    assert words in str(e.value) and "\n" not in str(e.value)
    assert path.read_bytes() == before  # neither removed nor overwritten


@needs_torch
def test_sqnxt_train_refuses_a_damaged_checkpoint_and_keeps_it(tmp_path, capsys):
    from dataclasses import asdict

    from sqnxt_engine import zoo
    from sqnxt_engine.cli.train import main
    from sqnxt_engine.train.checkpoint import Checkpoint
    from sqnxt_engine.train.torch_graph import GraphModule
    from sqnxt_engine.train.train import Recipe, fashion_mnist_options
    options = fashion_mnist_options("ShiftResNet-20-e1")
    recipe = Recipe(epochs=1, batch_size=8, warmup_steps=1)
    identity = {"architecture": "ShiftResNet-20-e1", "zoo_options": options, "recipe": asdict(recipe),
                "init_sha256": None, "train_images": 8}
    net = GraphModule(zoo.build("ShiftResNet-20-e1", **options))
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "t.npz"
    Checkpoint(ckpt, identity, {"threads": 1, "device": "cpu"}).save(
        net, torch.optim.SGD(net.parameters(), lr=0.1), torch.Generator(), {"epoch": 1, "step": 1, "seconds": 1.0})
    _rewrite(ckpt, {"epoch": -5})
    before = ckpt.read_bytes()
    assert main([*_TRAIN, "-o", str(out), "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a damaged checkpoint (epoch -5" in err, err
    assert ckpt.read_bytes() == before and not out.exists()


@needs_torch
def test_a_diverged_run_stops_with_one_line_instead_of_training_on_nan():
    from sqnxt_engine.train.torch_graph import GraphModule
    from sqnxt_engine.train.train import Recipe, train
    from tests.test_train_recipe import tiny_net
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    messages = []
    # before: every epoch ran on with "loss nan, train acc 10%", then a test top-1 from NaN outputs
    torch.manual_seed(0)
    with pytest.raises(UserError, match=r"training diverged at epoch \d, step \d+: the loss is (nan|inf); lower --lr"):
        train(GraphModule(tiny_net()), images, rng.integers(0, 10, 64),
              Recipe(epochs=3, batch_size=16, lr=1e6, warmup_steps=0), log=messages.append)
    assert len(messages) < 3  # stopped in the epoch it diverged in


@needs_torch
def test_torch_accuracy_refuses_non_finite_outputs():
    from sqnxt_engine.train.torch_graph import GraphModule
    from sqnxt_engine.train.train import torch_accuracy
    from tests.test_train_recipe import tiny_net
    net = GraphModule(tiny_net())
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    # before: argmax of NaN rows is class 0, so "top-1 10%" of a balanced set
    with pytest.raises(UserError, match="NaN or infinite for 20 of 20 test images"):
        torch_accuracy(net, np.zeros((20, 28, 28), np.uint8), np.arange(20) % 10)


# --- 3. numbers that cannot mislead; internal errors that were user errors -------------------------

@pytest.fixture(scope="module")
def overflowing_weights(tmp_path_factory):
    """The shipped Fashion-MNIST weights with every classifier weight at +-3e38: finite weights
    whose outputs overflow float32 to infinities (and NaN, +inf plus -inf)."""
    from sqnxt_engine.io.model import load_model
    from sqnxt_engine.io.shipped import DEFAULT_WEIGHTS
    from sqnxt_engine.io.weights import save_weights
    graph, arrays, meta = load_model(DEFAULT_WEIGHTS, quantized=False)
    arrays = {**arrays, "fc.weight": np.sign(arrays["fc.weight"]) * np.float32(3e38)}
    meta = {k: v for k, v in meta.items() if k not in ("stored_dtype", "sha256")}
    return save_weights(tmp_path_factory.mktemp("w") / "inf.npz", graph, arrays, meta)


def test_sqnxt_eval_prints_no_accuracy_from_non_finite_outputs(overflowing_weights, capsys):
    from sqnxt_engine.cli.eval import main
    # before: "top-1 11.xx%" (argmax of infinities and NaN), exit 0
    assert main(["--weights", str(overflowing_weights), "--limit", "20", "--batch-size", "8"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured
    assert "NaN or infinite for 20 of 20 images; no accuracy computed" in captured.err


def test_sqnxt_quant_calibration_refuses_non_finite_activations(overflowing_weights, tmp_path, capsys):
    from sqnxt_engine.cli.quant import main
    out = tmp_path / "q.npz"
    assert main(["--weights", str(overflowing_weights), "--calib", "fashion-mnist", "--calib-count", "8",
                 "--bits", "8", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NaN or infinite for 8 of 8 calibration images" in err, err
    assert not out.exists()


def test_sqnxt_infer_refuses_non_finite_outputs(overflowing_weights, tmp_path):
    Image.new("L", (28, 28), 90).save(tmp_path / "a.png")
    code, _, err = _infer("--weights", overflowing_weights, tmp_path / "a.png")
    _one_line_refusal(code, err, "NaN or infinite")


def test_sqnxt_infer_input_size_is_bounded_before_any_image_is_resized(tmp_path):
    Image.new("L", (28, 28), 90).save(tmp_path / "a.png")
    # before: every image resized to 100,000 x 100,000 (40 GB), a MemoryError, exit 1
    code, grew, err = _infer("--input-size", "100000", tmp_path / "a.png")
    _one_line_refusal(code, err, "preprocessing gives 100000x100000 images, 1.0-SqNxt-23v5 takes 28x28")
    assert grew < 16


def test_a_resize_is_bounded_like_a_decoded_image():
    from sqnxt_engine.io.images import Preprocess, preprocess
    # a weight file's metadata may say resize 100,000 (and crop 28): refused before resizing
    with pytest.raises(UserError, match="resizing a 28x28 image to 100000x100000: pixels .* max_image_pixels"):
        preprocess(Image.new("RGB", (28, 28)), Preprocess(28, 100000, "L", (0.0,), (1.0,)))


@pytest.mark.parametrize("args, words", [
    (["--zoo-options", "[" * 50000 + "]" * 50000], "--zoo-options: nesting depth (50,000) exceeds the limit"),
    (["--zoo-options", '{"input_size": 100000}'], "output of shape (64, 49997, 49997)"),
    (["--zoo-options", '{"input_size": 2.5}'], "is not like its default"),
    (["--resource-limit", "max_nesting=\u00b2"], "'²' is not a positive integer"),
])
def test_user_input_that_was_an_internal_error(args, words, capsys):
    from sqnxt_engine.emu.cli import main
    # before: RecursionError, MemoryError (a 3 x 100,000 x 100,000 input), ValueError: exit 1
    assert main(["trace", "--model", "1.0-SqNxt-23", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_cifar_resnet_options_are_typed():
    from sqnxt_engine import zoo
    with pytest.raises(UserError, match="input_size: 'x' is not a positive integer"):
        zoo.build("ResNet-20", input_size="x")  # before: TypeError
    with pytest.raises(UserError, match="input_size: 2.5 is not a positive integer"):
        zoo.build("ResNet-20", input_size=2.5)  # before: a graph of 2.5 x 2.5 pixels


def test_onnx_clip_with_a_vector_bound_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from sqnxt_engine.io.onnx_import import read_onnx
    lo = numpy_helper.from_array(np.zeros(3, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(6, np.float32), "hi")
    node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], [lo, hi])
    path = tmp_path / "clip.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    # before: TypeError (only a size-1 array converts to a Python scalar)
    with pytest.raises(UserError, match=r"Clip\): min must be a scalar, got shape \(3,\)"):
        read_onnx(path)


def test_sqnxt_quant_acc_bits_zero_is_refused_not_the_default(tmp_path, capsys):
    from sqnxt_engine.cli.quant import main
    out = tmp_path / "q.npz"
    # before: --acc-bits 0 was falsy, so the default 32-bit accumulator, exit 0
    assert main(["--weights", "1.0-SqNxt-23v5-fmnist", "--calib", "fashion-mnist", "--calib-count", "2",
                 "--bits", "8", "--acc-bits", "0", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "accumulator width must be 16 to 48 bits, got 0" in err, err
    assert not out.exists()
