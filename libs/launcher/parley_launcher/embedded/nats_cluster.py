"""A local nats-server cluster: N nodes on loopback, routes between them, JetStream on each.

Each node is an ``EmbeddedNats`` child process with the cluster's flags: its own client,
monitoring and route ports, its own JetStream store, a server name (``<cluster>-<i>``) and
routes to every node (a node ignores the route to itself). JetStream replicates a stream
with ``num_replicas=3`` across three of them, so a node may die without losing a stored
message. Used by the failover test and described in docs/nats-cluster.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from parley_launcher.embedded.nats_server import EmbeddedNats, EmbeddedNatsError
from parley_launcher.embedded.process import free_port

__all__ = ["ClusterNode", "NatsCluster"]


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One server of the cluster: its JetStream server name and its process."""

    name: str
    server: EmbeddedNats
    route_port: int

    @property
    def url(self) -> str:
        """Client URL of this node."""
        return self.server.url


class NatsCluster:
    """``size`` nats-servers clustered as ``name``, their data under ``root``."""

    def __init__(self, root: Path, size: int = 3, name: str = "parley") -> None:
        if size < 1:
            raise ValueError("a cluster has at least one node")
        self.name = name
        route_ports = [free_port() for _ in range(size)]
        routes = ",".join(f"nats-route://127.0.0.1:{port}" for port in route_ports)
        self.nodes = [
            ClusterNode(
                name=f"{name}-{i}",
                server=EmbeddedNats(
                    root / f"{name}-{i}",
                    extra_args=[
                        "--server_name",
                        f"{name}-{i}",
                        "--cluster_name",
                        name,
                        "--cluster",
                        f"nats://127.0.0.1:{port}",
                        "--routes",
                        routes,
                    ],
                ),
                route_port=port,
            )
            for i, port in enumerate(route_ports, start=1)
        ]

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated: what ``NATS_URL`` lists."""
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 30.0) -> None:
        """Start every node, then wait until each one is healthy with JetStream current
        (routes up, a meta leader elected); stops them all if one never is."""
        for node in self.nodes:
            node.server.spawn()
        deadline = time.monotonic() + timeout
        try:
            for node in self.nodes:
                node.server.wait_healthy(max(0.1, deadline - time.monotonic()), query="")
            self._wait_for_meta_leader(deadline)
        except EmbeddedNatsError:
            self.stop()
            raise

    def _wait_for_meta_leader(self, deadline: float) -> None:
        # /healthz waits for contact with a meta leader; /jsz shows that every node names
        # the same one, so that the first stream created is placed by the cluster's leader.
        while time.monotonic() < deadline:
            leaders = {self.meta_leader(node) for node in self.nodes}
            if None not in leaders and len(leaders) == 1:
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedNatsError(f"cluster {self.name} elected no JetStream meta leader")

    def meta_leader(self, node: ClusterNode) -> str | None:
        """The JetStream meta leader ``node`` knows of (from its ``/jsz``), if any."""
        try:
            response = httpx.get(f"http://127.0.0.1:{node.server.monitor_port}/jsz", timeout=1.0)
        except httpx.HTTPError:
            return None
        leader = response.json().get("meta_cluster", {}).get("leader")
        return str(leader) if leader else None

    def serving(self, port: int) -> ClusterNode:
        """The node whose client port is ``port`` (e.g. a client's
        ``nc.connected_url.port``)."""
        for node in self.nodes:
            if node.server.port == port:
                return node
        raise KeyError(f"no node of cluster {self.name} listens on port {port}")

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one node: it dies as in a crash; the others carry on."""
        node.server.kill()

    def stop(self) -> None:
        """Stop every node still running."""
        for node in self.nodes:
            node.server.stop()
