"""Children that a test stops with Ctrl-C (SIGINT) must not inherit an ignored SIGINT.

A shell without job control (``nohup bash scripts/test.sh > log &``, CI runners) starts a
background job with SIGINT ignored; an ignored signal stays ignored across exec, so the
child never sees the test's SIGINT (Python, started with SIGINT ignored, installs no
KeyboardInterrupt handler either). Pass ``preexec_fn=sigint_at_default`` to Popen.
"""

from __future__ import annotations

import signal


def sigint_at_default() -> None:
    """Run in the child between fork and exec: SIGINT back to its default action."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
