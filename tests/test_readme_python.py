"""README's "From Python" example runs as written and prints what README shows."""
import contextlib
import io
import re
from pathlib import Path

import pytest

from sqnxt_engine.errors import UserError
from sqnxt_engine.io.datasets import load_dataset

README = Path(__file__).resolve().parents[1] / "README.md"


def from_python_section() -> tuple[str, str]:
    """(the python block, the text block after it) of README's `## From Python` section."""
    section = README.read_text("utf-8").split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    shown = re.search(r"```text\n(.*?)```", section[code.end():], re.S)
    assert code and shown, "README's From Python section needs a python block and its output"
    return code.group(1), shown.group(1)


def test_from_python_example_prints_what_readme_shows(tmp_path, monkeypatch):
    try:
        load_dataset("fashion-mnist", "test")
    except UserError as e:
        pytest.skip(f"Fashion-MNIST unavailable: {e}")
    code, shown = from_python_section()
    monkeypatch.chdir(tmp_path)  # the example needs no particular folder
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert out.getvalue() == shown
