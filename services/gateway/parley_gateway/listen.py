"""The gateway's listening socket when several gateway processes share one port."""

from __future__ import annotations

import socket


def shared_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with SO_REUSEPORT: every gateway process binds
    its own, and the kernel spreads new connections across them (``GATEWAY_REUSE_PORT``;
    ``parley up --scale gateway=N`` sets it). A port held by a process without the option
    still refuses the bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
