"""Rate limits shared by every gateway replica through a NATS JetStream KV bucket.

Routes use :func:`parley_gateway.limits.dependency.rate_limited`; a WebSocket calls
``gateway.limiter.check(kind, user_id=..., ip=client_ip(websocket))`` itself.
"""

from parley_gateway.limits.limiter import RateLimiter, open_rate_limiter
from parley_gateway.limits.rules import KINDS, LimitKind, Rate, RateRules

__all__ = ["KINDS", "LimitKind", "Rate", "RateLimiter", "RateRules", "open_rate_limiter"]
