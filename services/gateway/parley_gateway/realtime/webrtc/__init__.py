"""WebRTC for browsers (aiortc): Opus audio both ways and the WebSocket protocol's JSON on a
data channel, served by the same session bridge as the WebSocket. See docs/webrtc.md."""

from parley_gateway.realtime.webrtc.routes import router

__all__ = ["router"]
