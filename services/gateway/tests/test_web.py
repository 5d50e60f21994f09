"""The call page and its assets are served by the gateway from the installed parley-web
package: the page from ``clients/web``, the library from ``clients/js``."""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from parley_gateway.routes import web

CLIENTS = Path(__file__).resolve().parents[3] / "clients"
# What the page loads: its own files by /static URL, the library's by relative imports
# (static and dynamic) and the worklets by URLs relative to the module.
_PAGE_REF = re.compile(r'(?:href|src)="(/static/[^"]+)"')
_JS_REF = re.compile(r"""(?:\bfrom\s+|\bimport\(\s*|new URL\(\s*)['"](\.{1,2}/[^'"]+)['"]""")


def _page_files(static: Path, lib: Path) -> dict[str, Path]:
    """Every /static URL the page needs, from index.html through the imports, with the file
    that serves it; fails on a reference to a file that is not there."""

    def local(url: str) -> Path:
        rel = url.removeprefix("/static/")
        return lib / rel.removeprefix("lib/") if rel.startswith("lib/") else static / rel

    todo = _PAGE_REF.findall((static / "index.html").read_text())
    found: dict[str, Path] = {}
    while todo:
        url = todo.pop()
        if url in found:
            continue
        file = local(url)
        assert file.is_file(), f"the page loads {url}, but {file} is missing"
        found[url] = file
        if url.endswith(".js"):
            folder = posixpath.dirname(url)
            refs = _JS_REF.findall(file.read_text())
            todo += [posixpath.normpath(posixpath.join(folder, ref)) for ref in refs]
    return found


@pytest.mark.parametrize("path", ["/", "/voice"])
async def test_call_page(client: httpx.AsyncClient, path: str) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-testid="start-call"' in page.text
    assert "/static/app.js" in page.text


async def test_everything_the_page_loads_is_served(client: httpx.AsyncClient) -> None:
    files = _page_files(web.STATIC_DIR, web.DEFAULT_CLIENT_LIB_DIR)
    assert {
        "/static/app.js",
        "/static/styles.css",
        "/static/lib/parley-client.js",
        "/static/lib/audio.js",
        "/static/lib/worklets/capture-processor.js",
        "/static/lib/worklets/playback-processor.js",
    } <= set(files)
    for url, file in files.items():
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content == file.read_bytes(), url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"], url


async def test_missing_asset_is_a_json_404(client: httpx.AsyncClient) -> None:
    missing = await client.get("/static/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_an_installed_gateway_serves_the_page_from_the_package(tmp_path: Path) -> None:
    # Build parley-web from a copy of clients/ the way a wheel is built (build_py decides
    # a wheel's files), then ask a gateway that can import parley_web only from that build.
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "node_modules")
    for part in ("web", "js"):
        shutil.copytree(CLIENTS / part, src / part, ignore=ignore)
    shutil.copy(CLIENTS / "pyproject.toml", src)
    site = tmp_path / "site"
    build = [sys.executable, "-c", "from setuptools import setup; setup()", "build_py"]
    subprocess.run([*build, "--build-lib", str(site)], cwd=src, check=True, capture_output=True)
    assert not (site / "parley_web" / "lib" / "test").exists(), "the JS tests are not shipped"
    ask = "import json; from parley_gateway.routes import web; " + (
        "print(json.dumps([str(web.STATIC_DIR), str(web.DEFAULT_CLIENT_LIB_DIR)]))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", ask],
        env={**os.environ, "PYTHONPATH": str(site)},
        check=True,
        capture_output=True,
        text=True,
    )
    static, lib = (Path(p) for p in json.loads(answer.stdout))
    assert static == site / "parley_web" / "static"
    assert lib == site / "parley_web" / "lib"
    files = _page_files(static, lib)
    assert "/static/lib/worklets/playback-processor.js" in files
