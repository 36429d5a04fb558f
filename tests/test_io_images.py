"""Image loading: every Pillow mode to 8-bit RGB, EXIF orientation, geometry, normalisation,
and bad files named in one-line errors."""
import numpy as np
import pytest
from PIL import Image

from sqnxt_engine.errors import UserError
from sqnxt_engine.io.images import PRESETS, Preprocess, load_batch, load_image, to_rgb8

RAW = Preprocess(crop=8, resize=8, color="RGB")  # pixels as they are, 8x8


def _uniform(tmp_path, mode, value, name, fmt=None, **save):
    path = tmp_path / name
    Image.new(mode, (12, 10), value).save(path, fmt, **save)
    return path


@pytest.mark.parametrize("mode, value, ext, rgb", [
    ("RGB", (10, 20, 30), "png", (10, 20, 30)),
    ("L", 77, "png", (77, 77, 77)),
    ("1", 1, "png", (255, 255, 255)),
    ("RGBA", (255, 0, 0, 128), "png", (255, 127, 127)),     # half-transparent red on white
    ("RGBA", (0, 0, 0, 0), "png", (255, 255, 255)),         # fully transparent: white, not black
    ("LA", (0, 64), "png", (191, 191, 191)),
    ("CMYK", (0, 0, 0, 0), "jpg", (255, 255, 255)),
    ("I;16", 257 * 100 + 100, "png", (100, 100, 100)),      # scaled by 1/257 and rounded
    ("I;16", 60000, "png", (233, 233, 233)),                # scaled, not clipped to 255
    ("I;16", 65535, "tif", (255, 255, 255)),
    ("I", 257 * 200, "tif", (200, 200, 200)),               # how 16-bit TIFF/PNG may open
])
def test_modes_become_8bit_rgb(tmp_path, mode, value, ext, rgb):
    path = _uniform(tmp_path, mode, value, f"x.{ext}", quality=100) if ext == "jpg" else \
        _uniform(tmp_path, mode, value, f"x.{ext}")
    assert Image.open(path).mode in (mode, "I;16B", "I;16")  # the file kept its mode
    x = load_image(path, RAW)
    assert x.shape == (3, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], rgb, atol=1 if ext == "jpg" else 0)
    assert np.ptp(x, axis=(1, 2)).max() == 0


def test_palette_images_with_and_without_transparency(tmp_path):
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    img.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png", RAW)[:, 3, 3], (10, 200, 30))
    img.save(tmp_path / "pt.png", transparency=1)
    np.testing.assert_array_equal(load_image(tmp_path / "pt.png", RAW)[:, 3, 3], (255, 255, 255))


def test_16bit_gradient_keeps_its_detail():
    ramp = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)  # 0, 257, ..., 65535
    got = np.asarray(to_rgb8(Image.fromarray(ramp)))[..., 0]
    np.testing.assert_array_equal(got.ravel(), np.arange(256))


def _two_halves(path, orientation):
    """40x20 stored: left half red, right half blue, with an EXIF orientation tag."""
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, quality=95, exif=exif)
    return path


def test_exif_orientation_is_honoured(tmp_path):
    # orientation 6: the viewer turns the stored image 90 degrees clockwise, so the stored
    # left (red) half is displayed on top and the picture is 20 wide and 40 tall
    x = load_image(_two_halves(tmp_path / "r.jpg", 6), Preprocess(crop=20, resize=20))
    assert x.shape == (3, 20, 20)
    top, bottom = x[:, 2, 10], x[:, 17, 10]
    assert top[0] > 200 and top[2] < 50
    assert bottom[2] > 200 and bottom[0] < 50
    upright = load_image(_two_halves(tmp_path / "u.jpg", 1), Preprocess(crop=20, resize=20))
    assert upright[0, 10, 2] > 200 and upright[2, 10, 17] > 200  # red left, blue right


def test_resize_shorter_side_then_centre_crop_like_torchvision(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)   # h=200, w=300
    Image.fromarray(pixels).save(tmp_path / "g.png")
    x = load_image(tmp_path / "g.png", Preprocess(crop=224, resize=256))
    # torchvision: Resize(256) -> (w, h) = (int(256 * 300 / 200), 256) = (384, 256);
    # CenterCrop(224) -> top = round((256 - 224) / 2) = 16, left = round((384 - 224) / 2) = 80
    want = np.asarray(Image.fromarray(pixels).resize((384, 256), Image.Resampling.BILINEAR))
    want = want[16:240, 80:304].transpose(2, 0, 1)
    np.testing.assert_array_equal(x, want.astype(np.float32))


def test_resize_filter_comes_from_the_model_metadata(tmp_path):
    """EfficientNet-Lite's metadata asks for bicubic (its TensorFlow reference); a model that
    names no filter gets torchvision's bilinear."""
    from sqnxt_engine import zoo
    pixels = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "p.png")
    pre = Preprocess.from_meta(zoo.build("efficientnet-lite0").meta)
    assert pre.resize_filter == "bicubic" and Preprocess.from_meta({}).resize_filter == "bilinear"
    x = load_image(tmp_path / "p.png", Preprocess(crop=24, resize=32, resize_filter="bicubic"))
    want = np.asarray(Image.fromarray(pixels).resize((48, 32), Image.Resampling.BICUBIC))[4:28, 12:36]
    np.testing.assert_array_equal(x, want.transpose(2, 0, 1).astype(np.float32))


def test_tall_image_and_odd_margins(tmp_path):
    Image.new("RGB", (9, 15), (1, 2, 3)).save(tmp_path / "t.png")
    x = load_image(tmp_path / "t.png", Preprocess(crop=4, resize=None))
    assert x.shape == (3, 4, 4)


def test_caffe_bgr_mean_subtraction(tmp_path):
    path = _uniform(tmp_path, "RGB", (10, 20, 30), "c.png")
    x = load_image(path, PRESETS["caffe-squeezenext"])
    assert x.shape == (3, 227, 227)
    np.testing.assert_allclose(x[:, 100, 100], (30 - 104, 20 - 117, 10 - 123))


def test_torch_and_efficientnet_normalisation(tmp_path):
    path = _uniform(tmp_path, "RGB", (255, 0, 128), "n.png")
    x = load_image(path, PRESETS["imagenet-torch"])
    want = (np.array([1.0, 0.0, 128 / 255]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(x[:, 5, 5], want, rtol=1e-5)
    x = load_image(path, PRESETS["efficientnet-lite"])
    np.testing.assert_allclose(x[:, 5, 5], (np.array([255, 0, 128]) - 127.0) / 128)


def test_grey_output_channel(tmp_path):
    path = _uniform(tmp_path, "RGB", (90, 90, 90), "g.png")
    x = load_image(path, Preprocess(crop=8, resize=8, color="L", mean=(10,), std=(2,)))
    assert x.shape == (1, 8, 8)
    np.testing.assert_allclose(x, 40.0)


def test_from_meta_of_zoo_graphs():
    zoo = pytest.importorskip("sqnxt_engine.zoo")
    pre = Preprocess.from_meta(zoo.build("sqnxt23_w1").meta)
    assert pre == PRESETS["imagenet-torch"]
    pre = Preprocess.from_meta(zoo.build("1.0-SqNxt-23").meta)
    assert pre == PRESETS["caffe-squeezenext"]
    assert Preprocess.from_meta(zoo.build("efficientnet-lite0").meta) == PRESETS["efficientnet-lite"]
    assert Preprocess.from_meta({"input_size": [1, 28, 28], "color": "L"}).crop == 28


def test_batch(tmp_path):
    paths = [_uniform(tmp_path, "RGB", (i, i, i), f"{i}.png") for i in range(3)]
    b = load_batch(paths, RAW)
    assert b.shape == (3, 3, 8, 8) and b.dtype == np.float32
    np.testing.assert_array_equal(b[:, 0, 0, 0], [0, 1, 2])
    assert load_batch([], RAW).shape == (0, 3, 8, 8)


@pytest.mark.parametrize("kwargs, message", [
    ({"color": "RGBX"}, "unknown colour order"),
    ({"mean": (1, 2)}, "mean needs 1 or 3 values"),
    ({"std": (0,)}, "std must be positive"),
    ({"crop": 300, "resize": 256}, "cannot crop 300"),
    ({"resize_filter": "lanczos"}, "unknown resize filter"),
])
def test_bad_preprocessing_options(kwargs, message):
    with pytest.raises(UserError, match=message):
        Preprocess(**kwargs)


def test_bad_files_are_named(tmp_path):
    missing = tmp_path / "missing.jpg"
    with pytest.raises(UserError, match="missing.jpg: no such file"):
        load_image(missing, RAW)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n")
    with pytest.raises(UserError, match="notes.jpg: not a readable image"):
        load_image(text, RAW)
    with pytest.raises(UserError, match="is a directory, not a regular file"):
        load_image(tmp_path, RAW)  # a folder
    with pytest.raises(UserError, match="notes.jpg"):  # the batch names the bad file too
        load_batch([_uniform(tmp_path, "L", 1, "ok.png"), text], RAW)


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_truncated_files(tmp_path, fmt):
    rng = np.random.default_rng(1)
    path = tmp_path / f"cut.{fmt}"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match=f"cut.{fmt}: not a readable image"):
        load_image(path, RAW)
