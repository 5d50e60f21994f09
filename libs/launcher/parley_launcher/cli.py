"""The ``parley`` command: ``up`` runs the whole platform on one machine, ``status`` and
``logs`` look at a running one (from another terminal), ``token`` mints a bearer token."""

from __future__ import annotations

import argparse
import sys

from parley_launcher import local_auth, logs, status, up


def _parser() -> argparse.ArgumentParser:
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data-dir",
        help="where parley up keeps its data, state and logs "
        "(default $PARLEY_DATA_DIR or ./.parley)",
    )
    parser = argparse.ArgumentParser(prog="parley", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up_cmd = commands.add_parser(
        "up", parents=[data], help="run NATS, PostgreSQL and every service"
    )
    up_cmd.add_argument("--only", help="comma-separated services to run, e.g. gateway,stt")
    up_cmd.add_argument(
        "--scale",
        help="processes per service, e.g. stt=2,gateway=2 (default $PARLEY_SCALE, else one each)",
    )
    up_cmd.add_argument(
        "--log-format",
        choices=up.LOG_FORMATS,
        help="human (default): one line per event, logs in <data dir>/logs; json: also every "
        "service's JSON log lines on stderr, for a log shipper (default $LOG_FORMAT)",
    )
    up_cmd.set_defaults(run=up.up)

    status_cmd = commands.add_parser(
        "status", parents=[data], help="what runs, its health, ports and sessions"
    )
    status_cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    status_cmd.set_defaults(run=status.status)

    logs_cmd = commands.add_parser(
        "logs", parents=[data], help="print (or follow) the logs of parley up"
    )
    logs_cmd.add_argument("service", nargs="?", help="one service (default: all of them)")
    logs_cmd.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs_cmd.add_argument(
        "-n", "--lines", type=int, default=50, help="how many lines to start with (0: all)"
    )
    logs_cmd.add_argument("--json", action="store_true", help="the raw JSON lines")
    logs_cmd.set_defaults(run=logs.logs)

    token_cmd = commands.add_parser(
        "token",
        parents=[data],
        help="print a bearer token for the gateway (signed with PARLEY_JWT_SECRET or the "
        "secret parley up keeps in its data dir)",
    )
    token_cmd.add_argument("--user", default=local_auth.PAGE_USER, help="the token's sub")
    token_cmd.add_argument("--ttl", type=float, default=3600.0, help="seconds it is valid")
    token_cmd.add_argument("--admin", action="store_true", help="add the admin scope")
    token_cmd.add_argument(
        "--new-secret", action="store_true", help="print a new random secret instead"
    )
    token_cmd.set_defaults(run=local_auth.token)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``parley`` command."""
    args = _parser().parse_args(argv)
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
