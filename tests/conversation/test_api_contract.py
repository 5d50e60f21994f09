"""The OpenAPI schema is the contract clients generate code from: schemathesis, with every
check, finds no response that the schema does not describe (statuses, bodies, content
types, Allow headers, routes that ignore a missing token) and no server error, against a
gateway that requires tokens and whose workers really answer. Bounded: a few examples per
operation."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from conftest import SecuredPlatform

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = str(Path(__file__).with_name("schemathesis.toml"))
EXAMPLES = "8"


async def test_the_schema_describes_every_answer(
    secured_platform: SecuredPlatform, tmp_path: Path
) -> None:
    token = secured_platform.token("schemathesis", ttl_s=3600)
    # A subprocess, so that its blocking client does not stall the gateway in this loop.
    proc = await asyncio.create_subprocess_exec(
        SCHEMATHESIS,
        "--config-file",
        CONFIG,
        "run",
        f"{secured_platform.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--max-examples",
        EXAMPLES,
        "--seed",
        "7",
        # Speaking S2's longest text with the offline voice takes ~11 s on 2 cores.
        "--request-timeout",
        "60",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 600)
    report = output.decode(errors="replace")
    assert proc.returncode == 0, report[-30000:]
