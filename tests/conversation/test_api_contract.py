"""The OpenAPI schema is the contract clients generate code from: schemathesis, with every
check, finds no response that the schema does not describe (statuses, bodies, content
types, Allow headers) and no server error, against a gateway whose workers really answer.
Bounded: a few examples per operation."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = str(Path(__file__).with_name("schemathesis.toml"))
EXAMPLES = "8"


async def test_the_schema_describes_every_answer(platform_url: str, tmp_path: Path) -> None:
    # A subprocess, so that its blocking client does not stall the gateway in this loop.
    proc = await asyncio.create_subprocess_exec(
        SCHEMATHESIS,
        "--config-file",
        CONFIG,
        "run",
        f"{platform_url}/openapi.json",
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
