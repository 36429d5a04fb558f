import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI has 2 cores and a time budget: keep property tests bounded and deterministic there.
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def caffe_dir():
    d = SHARED / "reference" / "caffe"
    if not d.is_dir():
        pytest.skip(f"reference prototxt files not found at {d}")
    return d
