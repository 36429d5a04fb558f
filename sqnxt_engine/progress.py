"""The one progress bar of the project: tqdm on stderr, drawn only when stderr is a terminal
(quiet when piped or redirected), gone from the screen when done."""
from __future__ import annotations

from tqdm import tqdm


def progress_bar(total: int, label: str = "", enabled: bool = True) -> tqdm:
    """A bar of `total` steps: `bar.update(n)`, `bar.close()` or use it as a context manager.
    enabled=False never draws (a library caller that wants silence)."""
    # disable=None is tqdm's "draw only on a terminal"
    return tqdm(total=total, desc=label, disable=None if enabled else True, leave=False,
                dynamic_ncols=True)
