"""The call page: ``/`` and ``/voice`` (S1's path), with its assets under ``/static``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
# The page imports the JS client library from /static/lib; it is served from its one source,
# clients/js, found next to the services in a checkout or an image (GATEWAY_CLIENT_LIB_DIR
# overrides it for other layouts).
DEFAULT_CLIENT_LIB_DIR = Path(__file__).resolve().parents[4] / "clients" / "js"

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/voice")
async def call_page() -> FileResponse:
    """The voice call page."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
