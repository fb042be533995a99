"""What a process started by another does to die with it (the services, their servers, Prometheus)."""
from __future__ import annotations

import ctypes
import signal

__all__ = ["die_with_parent"]

#: Linux prctl(2) option: the signal this process gets when its parent dies
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask for SIGTERM when this process's parent dies, however it dies (Linux ``PR_SET_PDEATHSIG``)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
