"""Worker processes that do not outlive the process that started them.

A benchmark pool's workers (`farl bench failurebench`, `farl bench franka`) are spawned processes: when
the benchmark process is killed (`kill <pid>`, the OOM killer), they would otherwise run their runs to
the end, writing into run folders that a restarted benchmark writes too.  This module is kept free of
heavy imports: it is what every spawned worker imports first.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Pool initializer: the worker gets SIGTERM when its parent dies, however it died (Linux; elsewhere
    a no-op)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before the call: nothing would signal this worker
            os._exit(1)
