"""Helpers for child processes that must not outlive their parent."""

from __future__ import annotations

import ctypes
import signal
import socket
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` asking Linux to signal the child when its parent dies, so that even a
    SIGKILLed launcher leaves no process behind."""

    if not sys.platform.startswith("linux"):
        return lambda: None
    # Loaded here, in the parent: the child between fork and exec must do as little as it
    # can, because the launcher has threads (its log writer) whose locks it inherits.
    prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl

    def _preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return _preexec


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` can be bound on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True
