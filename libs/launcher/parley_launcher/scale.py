"""``parley up --scale stt=2,gateway=2`` (or ``PARLEY_SCALE``): several processes of a service.

Each extra worker process of a service is one more member of its queue group, with its own
health port; the gateway sends each new session to the least-loaded one. Gateway processes
share the one public port (each binds it with SO_REUSEPORT and the kernel spreads the
connections), so a client sees one address however many there are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from parley_launcher.supervisor import ServiceSpec

SCALE_ENV = "PARLEY_SCALE"
MAX_PROCESSES = 16
# Services whose processes listen on one shared port rather than one port each.
SHARED_PORT = frozenset({"gateway"})
REUSE_PORT_ENV = "GATEWAY_REUSE_PORT"


def parse_scale(text: str | None, services: Iterable[str]) -> dict[str, int]:
    """``stt=2,gateway=2`` as {service: processes}; ``text`` None reads ``PARLEY_SCALE``.
    A service left out runs one process. Exits with a message on a bad entry."""
    text = os.environ.get(SCALE_ENV, "") if text is None else text
    known = list(services)
    counts: dict[str, int] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = entry.partition("=")
        name = name.strip()
        if not sep or name not in known:
            raise SystemExit(
                f"--scale/{SCALE_ENV}: {entry!r} is not <service>=<processes>; services are "
                f"{', '.join(known)}"
            )
        try:
            count = int(value)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_PROCESSES:
            raise SystemExit(
                f"--scale/{SCALE_ENV}: {name} wants 1 to {MAX_PROCESSES} processes, got {value!r}"
            )
        counts[name] = count
    return counts


def replicas(spec: ServiceSpec, count: int, next_port: Callable[[], int]) -> list[ServiceSpec]:
    """``count`` processes of ``spec``'s service: the first keeps its name and port (its log
    and its line stay where they were), the others are ``<name>-2``, ``<name>-3``... on
    ports of their own, or on the same port with SO_REUSEPORT for a shared-port service."""
    if count <= 1:
        return [spec]
    shared = spec.name in SHARED_PORT
    port_env = f"{spec.name.upper()}_HTTP_PORT"
    reuse = {REUSE_PORT_ENV: "true"} if shared else {}
    out = [ServiceSpec(spec.name, spec.module, {**spec.env, **reuse}, spec.port)]
    for i in range(2, count + 1):
        port = spec.port if shared else next_port()
        env = {**spec.env, port_env: str(port), **reuse}
        out.append(ServiceSpec(f"{spec.name}-{i}", spec.module, env, port))
    return out
