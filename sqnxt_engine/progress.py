"""The one progress bar of the project: tqdm on stderr, drawn only when stderr is a terminal
(quiet when piped or redirected), gone from the screen when done. tqdm is imported when a bar is
made, not with this module: a command that draws none (sqnxt-infer) would pay for it at start-up
(tqdm pulls importlib.metadata, email, socket...: 22 of the 197 ms that importing
sqnxt_engine.cli.infer took, by `python -X importtime -c "import sqnxt_engine.cli.infer"`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tqdm import tqdm


def progress_bar(total: int, label: str = "", enabled: bool = True) -> tqdm:
    """A bar of `total` steps: `bar.update(n)`, `bar.close()` or use it as a context manager.
    enabled=False never draws (a library caller that wants silence)."""
    from tqdm import tqdm
    # disable=None is tqdm's "draw only on a terminal"
    return tqdm(total=total, desc=label, disable=None if enabled else True, leave=False,
                dynamic_ncols=True)
