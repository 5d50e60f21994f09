"""``parley logs [service] [-f] [--json]``: the logs ``parley up`` writes, readable.

Without a service, every file in ``<data dir>/logs`` is shown, merged in time order; ``nats``
and ``postgres`` name the embedded servers' own (plain text) logs. JSON lines are rendered
for a person unless ``--json`` asks for them as they are. ``-f`` keeps printing new lines,
across rotations, until Ctrl-C.

This is a command-line loop with no event loop, so it simply sleeps between polls.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from parley_launcher.console import Palette, wants_colour
from parley_launcher.logfile import log_dir
from parley_launcher.render import render, timestamp
from parley_launcher.state import resolve_data_dir

POLL_S = 0.25
_BLOCK = 64 * 1024
# The embedded servers keep their own logs where they were always written.
SERVER_LOGS = {"nats": Path("nats") / "nats-server.log", "postgres": Path("postgres.log")}


def sources(data_dir: Path, service: str | None) -> dict[str, Path]:
    """The log files to show: one service's (or server's), or every service's."""
    logs = log_dir(data_dir)
    if service is None:
        return {path.stem: path for path in sorted(logs.glob("*.log"))}
    path = data_dir / SERVER_LOGS[service] if service in SERVER_LOGS else logs / f"{service}.log"
    if not path.exists():
        known = ", ".join(sorted([p.stem for p in logs.glob("*.log")] + list(SERVER_LOGS)))
        raise SystemExit(f"no log for {service!r} in {logs}; known: {known or 'none yet'}")
    return {service: path}


def _complete(data: bytes) -> bytes:
    # A last line without its newline is still being written: it is read next time.
    return data[: data.rfind(b"\n") + 1]


def tail(path: Path, count: int) -> tuple[list[str], int]:
    """The last ``count`` complete lines of ``path`` (all of them if ``count`` is 0), and the
    offset just after them, where following continues."""
    with path.open("rb") as file:
        end = file.seek(0, os.SEEK_END)
        start = 0 if count <= 0 else end
        data = b""
        while count > 0 and start > 0 and data.count(b"\n") <= count:
            step = min(_BLOCK, start)
            start -= step
            file.seek(start)
            data = file.read(step) + data
        if count <= 0:
            file.seek(0)
            data = file.read(end)
    whole = _complete(data)
    lines = whole.decode(errors="replace").splitlines()
    return (lines[-count:] if count > 0 else lines), end - (len(data) - len(whole))


@dataclass
class Follower:
    """New complete lines of one file, across rotation (a new file under the same name)."""

    name: str
    path: Path
    offset: int
    inode: int | None = None

    def poll(self) -> list[str]:
        """The lines written since the last poll."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return []
        if self.inode is None:
            self.inode = info.st_ino
        if info.st_ino != self.inode or info.st_size < self.offset:
            self.inode, self.offset = info.st_ino, 0
        if info.st_size == self.offset:
            return []
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = _complete(file.read(info.st_size - self.offset))
        self.offset += len(data)
        return data.decode(errors="replace").splitlines()


class Printer:
    """Prints lines rendered (or raw), naming the source of plain lines when there are many."""

    def __init__(self, raw: bool, many: bool) -> None:
        self.raw = raw
        self.many = many
        self.palette = Palette(wants_colour(sys.stdout))

    def show(self, name: str, line: str) -> None:
        """Print one line of ``name``'s log."""
        if self.raw:
            text = line
        elif self.many and timestamp(line) is None:
            text = f"{name:<9} {line}"
        else:
            text = render(line, self.palette)
        print(text, flush=True)


def merged_tail(found: dict[str, Path], count: int) -> tuple[list[tuple[str, str]], list[Follower]]:
    """The last ``count`` lines across ``found`` in time order (a plain line keeps the time
    of the JSON line before it), with a follower for each file starting after them."""
    keyed: list[tuple[str, int, str, str]] = []
    followers = []
    for name, path in found.items():
        lines, offset = tail(path, count)
        followers.append(Follower(name, path, offset))
        last = ""
        for index, line in enumerate(lines):
            last = timestamp(line) or last
            keyed.append((last, index, name, line))
    keyed.sort(key=lambda item: (item[0], item[2], item[1]))
    picked = keyed[-count:] if count > 0 else keyed
    return [(name, line) for _, _, name, line in picked], followers


def logs(args: argparse.Namespace) -> int:
    """Print the logs, then follow them with ``-f``."""
    data_dir = resolve_data_dir(args.data_dir)
    found = sources(data_dir, args.service)
    if not found:
        print(f"No logs in {log_dir(data_dir)} yet: `parley up` writes them.", file=sys.stderr)
        return 1
    printer = Printer(raw=args.json, many=args.service is None)
    lines, followers = merged_tail(found, args.lines)
    for name, line in lines:
        printer.show(name, line)
    if not args.follow:
        return 0
    try:
        while True:
            if args.service is None:  # a service started later gets its file then
                known = {f.path for f in followers}
                followers += [
                    Follower(name, path, 0)
                    for name, path in sources(data_dir, None).items()
                    if path not in known
                ]
            for follower in followers:
                for line in follower.poll():
                    printer.show(follower.name, line)
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        return 0
