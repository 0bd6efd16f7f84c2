"""Errors a user can cause.

Every problem a user can fix (bad config, missing data, wrong checkpoint, no
compiler, missing PyGeNN) is raised as :class:`UserError`; the CLI turns it into
one line on stderr and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterable
from typing import NoReturn


class UserError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""

    exit_code = 2


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely misspells (difflib), or None when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean 'mnist-400'? "``, or ``""`` when nothing is close: a misspelt name
    is spotted at once, where a list of 15 presets or 25 keys had to be read through."""
    match = closest(word, choices)
    return f"did you mean '{match}'? " if match else ""


def run_script(main: Callable[[], int]) -> NoReturn:
    """Run a script's ``main`` and exit with its status; a :class:`UserError` becomes one
    line on stderr and exit code 2, as the CLI does, instead of a traceback."""
    try:
        code = main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    sys.exit(code)
