"""sqnxt-infer does its work once: the network runs once per batch (forward passes counted at
Runner.__call__, one per batch however many threads split it), on one image and on batches of the
shipped examples, and the weights are checked against their architecture once."""
from pathlib import Path

import pytest

from sqnxt_engine.cli.infer import main
from sqnxt_engine.runtime.runner import Runner

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.png"))


@pytest.fixture
def passes(monkeypatch):
    """The batch size of every forward pass, in order."""
    seen = []
    forward = Runner.__call__

    def counted(self, x):
        seen.append(len(x))
        return forward(self, x)
    monkeypatch.setattr(Runner, "__call__", counted)
    return seen


@pytest.mark.parametrize("images, batch_size, batches", [
    (1, 16, [1]),
    (3, 16, [3]),
    (5, 2, [2, 2, 1]),
])
def test_sqnxt_infer_runs_each_batch_once(images, batch_size, batches, passes, capsys):
    assert len(EXAMPLES) >= images
    argv = [*map(str, EXAMPLES[:images]), "--top", "3", "--batch-size", str(batch_size)]
    assert main(argv) == 0
    assert passes == batches
    assert capsys.readouterr().out.count("\n") == images * 4  # each image: its path, 3 classes


def test_sqnxt_infer_checks_the_weights_once(monkeypatch, capsys):
    import sqnxt_engine.io.model as model
    import sqnxt_engine.runtime.runner as runner
    checks = []
    for module in (model, runner):
        check = module.check_weights
        monkeypatch.setattr(module, "check_weights",
                            lambda graph, arrays, check=check: checks.append(graph.name) or check(graph, arrays))
    assert main([str(EXAMPLES[0])]) == 0
    assert len(checks) == 1
