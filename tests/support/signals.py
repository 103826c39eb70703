"""Subprocesses that take Ctrl-C the way a terminal's foreground command does.

A command started in the background by a non-interactive shell (a CI script's `&`, nohup) inherits SIGINT
as ignored, and so does every process it starts; Python then installs no KeyboardInterrupt handler. Tests
that press Ctrl-C on a `coach` command restore the default action in the child first.
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
