"""The call page: ``/`` and ``/voice`` (S1's path), with its assets under ``/static``.

The page and the JS client library it imports are package data of ``parley-web``
(``clients/``), found through ``importlib.resources``: an installed gateway serves them
as well as a checkout does.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse


def _installed_folder(package: str) -> Path:
    """The folder of ``package``'s files (StaticFiles serves folders of the file system)."""
    folder = files(package)
    if not isinstance(folder, Path):
        raise RuntimeError(f"{package} must be installed as plain files, not in an archive")
    return folder


STATIC_DIR = _installed_folder("parley_web") / "static"
DEFAULT_CLIENT_LIB_DIR = _installed_folder("parley_web.lib")

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/voice")
async def call_page() -> FileResponse:
    """The voice call page."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
