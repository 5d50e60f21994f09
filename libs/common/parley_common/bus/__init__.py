"""The bus: NATS with Parley's headers and codec."""

from parley_common.bus.client import Bus, Handler, Received, encode
from parley_common.bus.headers import MessageMeta

__all__ = ["Bus", "Handler", "MessageMeta", "Received", "encode"]
