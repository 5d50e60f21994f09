"""``python -m parley_emulators VENDOR --port P``: serve one vendor's emulator, e.g. to point
``parley up`` at it with ``<VENDOR>_BASE_URL`` and try a cloud stack with no account."""

from __future__ import annotations

import argparse
import asyncio

from parley_common.observability.health import http_server
from parley_emulators.vendors import VENDORS


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m parley_emulators", description=__doc__)
    parser.add_argument("vendor", choices=sorted(VENDORS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default="test-key", help="the key the emulator accepts")
    parser.add_argument("--transcript", help="what the STT hears in any audio")
    parser.add_argument("--reply", help="what the LLM answers (default: echoes the question)")
    args = parser.parse_args()
    options: dict[str, str] = {"api_key": args.api_key}
    kind = VENDORS[args.vendor]
    if args.transcript and hasattr(kind, "transcript"):
        options["transcript"] = args.transcript
    if args.reply and hasattr(kind, "reply"):
        options["reply"] = args.reply
    vendor = kind(**options)
    server = http_server(vendor.app(), args.host, args.port)
    # The emulator owns no signals of its own: Ctrl-C ends asyncio.run.
    asyncio.run(server.serve())


if __name__ == "__main__":
    main()
