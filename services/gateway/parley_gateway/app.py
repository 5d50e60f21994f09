"""The gateway application: REST, WebSocket and the web UI over one bus and one pool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from parley_common.runtime import open_runtime
from parley_common.tokens import AuthSettings, TokenVerifier, describe_keys
from parley_gateway.body_limit import BodyLimitMiddleware
from parley_gateway.errors import ERROR_RESPONSES, install_error_handlers
from parley_gateway.limits import open_rate_limiter
from parley_gateway.realtime.endpoint import router as realtime_router
from parley_gateway.realtime.openai.endpoint import router as openai_realtime_router
from parley_gateway.realtime.s2_socket import router as s2_socket_router
from parley_gateway.realtime.webrtc import router as webrtc_router
from parley_gateway.routes import (
    chatbot_tools,
    clone,
    health,
    knowledge,
    s1,
    s2_chat,
    s2_config,
    s2_health,
    s2_voice,
    sessions_v1,
    usage,
    voices,
    web,
)
from parley_gateway.routes.deps import Gateway
from parley_gateway.sessions.failover import WorkerMonitor
from parley_gateway.sessions.idle import IdleReaper
from parley_gateway.sessions.lifecycle import SessionLifecycle
from parley_gateway.sessions.store import SessionStore
from parley_gateway.settings import GatewaySettings
from parley_gateway.telephony.routes import router as telephony_router
from parley_gateway.transport import install_cors

log = logging.getLogger(__name__)

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def require_safe_auth(settings: GatewaySettings, auth: AuthSettings) -> TokenVerifier:
    """The token verifier; refuses a gateway reachable from other machines without keys
    (secure by default: only a loopback development gateway may run without tokens)."""
    if not auth.enabled and settings.http_host not in _LOOPBACK:
        raise RuntimeError(
            f"GATEWAY_HTTP_HOST={settings.http_host} is reachable from other machines but no"
            " token key is configured: set PARLEY_JWT_SECRET (or PARLEY_JWT_PUBLIC_KEY /"
            " PARLEY_JWT_JWKS_FILE), or bind to 127.0.0.1"
        )
    log.info("authentication keys: %s", describe_keys(auth))
    return TokenVerifier(auth)


def create_app(settings: GatewaySettings, auth: AuthSettings | None = None) -> FastAPI:
    """Build the app; the bus and the pool open in its lifespan, the same one every
    service uses (``parley_common.runtime.open_runtime``). ``auth`` defaults to the
    ``PARLEY_JWT_*`` environment."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime("gateway", settings, use_db=True) as runtime:
            assert runtime.pool is not None
            store = SessionStore(runtime.pool)
            lifecycle = SessionLifecycle(
                store, runtime.bus, settings.assign_timeout_s, settings.max_sessions_per_user
            )
            limiter = await open_rate_limiter(runtime.bus, settings)
            gateway = Gateway(
                settings=settings,
                runtime=runtime,
                store=store,
                lifecycle=lifecycle,
                limiter=limiter,
            )
            app.state.gateway = gateway
            monitor = WorkerMonitor(runtime.bus, lifecycle, gateway.connections)
            app.state.worker_monitor = monitor
            async with asyncio.TaskGroup() as tg:
                watching = tg.create_task(monitor.run())
                reaping = tg.create_task(IdleReaper(gateway).run())
                yield
                watching.cancel()
                reaping.cancel()

    app = FastAPI(
        title="Parley",
        summary="Real-time voice conversations: REST + WebSocket gateway.",
        version="0.1.0",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.token_verifier = require_safe_auth(settings, auth or AuthSettings())
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    install_cors(app, settings.cors_origins)  # outermost: preflights never reach a route
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(s2_health.router)
    app.include_router(sessions_v1.router)
    app.include_router(usage.router)
    app.include_router(s1.router)
    app.include_router(s2_config.router)
    app.include_router(knowledge.router)
    app.include_router(chatbot_tools.router)
    app.include_router(realtime_router)
    app.include_router(voices.router)
    app.include_router(clone.router)
    app.include_router(s2_voice.router)
    app.include_router(s2_chat.router)
    app.include_router(s2_socket_router)
    app.include_router(telephony_router)
    app.include_router(webrtc_router)
    app.include_router(openai_realtime_router)
    app.include_router(web.router)
    lib_dir = settings.client_lib_dir or web.DEFAULT_CLIENT_LIB_DIR
    # Mounted first: /static/lib is more specific than /static.
    app.mount("/static/lib", StaticFiles(directory=lib_dir), name="client-lib")
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    return app
