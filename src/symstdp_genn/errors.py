"""Errors a user can cause.

Every problem a user can fix (bad config, missing data, wrong checkpoint, no
compiler, missing PyGeNN) is raised as :class:`UserError`; the CLI turns it into
one line on stderr and exit code 2 instead of a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""

    exit_code = 2
