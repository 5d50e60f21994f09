"""The build context Docker sends: the repository less what ``.dockerignore`` excludes, with
Docker's matching rules (``*`` within a path segment, ``**`` across them, ``!`` re-includes,
the last matching line wins, a match on a folder covers what is inside it)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .layout import ROOT


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    include: bool


def _translate(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def rules(root: Path = ROOT) -> list[Rule]:
    """The lines of ``root/.dockerignore`` as rules, in order."""
    found = []
    for raw in (root / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        found.append(Rule(_translate(pattern), include))
    return found


def is_ignored(relative: str, rules_: list[Rule]) -> bool:
    """Whether Docker leaves the path ``relative`` (to the context root) out."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for rule in rules_:
        if any(rule.pattern.match(candidate) for candidate in candidates):
            ignored = not rule.include
    return ignored


def copy_sources(sources: list[str], dest: Path, root: Path = ROOT) -> None:
    """Copy each of ``sources`` (paths relative to ``root``) into ``dest`` at the same
    relative place, leaving out what the build context would."""
    rules_ = rules(root)

    def ignore(folder: str, names: list[str]) -> set[str]:
        base = Path(folder).relative_to(root).as_posix()
        return {n for n in names if is_ignored(f"{base}/{n}", rules_)}

    for source in sources:
        origin = root / source
        assert not is_ignored(source, rules_), f".dockerignore excludes {source}, which is copied"
        target = dest / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=ignore)
        else:
            shutil.copy2(origin, target)
