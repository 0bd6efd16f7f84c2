"""Progress bars for long work: tqdm on a terminal, silence elsewhere (logs carry progress)."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is a declared dependency
    tqdm = None


class ProgressBar:
    """``with ProgressBar(total, "training", show) as bar: bar.advance(1, running="91%")``."""

    def __init__(self, total: int, description: str, show: bool = True, initial: int = 0):
        self._bar = None
        if show and tqdm is not None and total > 0:
            self._bar = tqdm(total=total, initial=initial, desc=description, unit="sample",
                             dynamic_ncols=True, file=sys.stderr, smoothing=0.05,
                             disable=None, leave=True)

    def advance(self, n: int = 1, **postfix: Any) -> None:
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
