"""A Dockerfile read into its stages, through ``dockerfile-parse`` (line continuations,
comments and directives handled as Docker does)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from dockerfile_parse import DockerfileParser


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` and what follows it up to the next."""

    base: str
    name: str
    instructions: tuple[Instruction, ...]

    def values(self, keyword: str) -> list[str]:
        """The values of every ``keyword`` instruction of this stage, in order."""
        return [i.value for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """Every ``ENV key=value`` this stage sets (later ones win)."""
        pairs: dict[str, str] = {}
        for value in self.values("ENV"):
            for word in shlex.split(value):
                key, sep, val = word.partition("=")
                assert sep, f"ENV {value!r}: use the key=value form"
                pairs[key] = val
        return pairs

    def args(self) -> dict[str, str | None]:
        """Every ``ARG`` this stage declares, with its default (None: none)."""
        declared: dict[str, str | None] = {}
        for value in self.values("ARG"):
            key, sep, default = value.partition("=")
            words = shlex.split(default)
            declared[key] = (words[0] if words else "") if sep else None
        return declared

    def copies(self) -> list[tuple[str | None, list[str], str]]:
        """Every ``COPY`` as (its ``--from`` stage or None, its sources, its destination)."""
        found = []
        for value in self.values("COPY"):
            words = shlex.split(value)
            origin = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")]
            found.append((origin, paths[:-1], paths[-1]))
        return found


def stages(path: Path) -> list[Stage]:
    """The stages of the Dockerfile at ``path``; instructions before the first FROM (global
    ARGs) are left out."""
    with path.open(encoding="utf-8") as file:
        structure = DockerfileParser(fileobj=file).structure
    result: list[Stage] = []
    current: list[Instruction] = []
    base = name = ""
    for item in structure:
        keyword = str(item["instruction"]).upper()
        if keyword == "FROM":
            if base:
                result.append(Stage(base, name, tuple(current)))
            words = str(item["value"]).split()
            base = words[0]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            current = []
        elif base and keyword != "COMMENT":
            current.append(Instruction(keyword, str(item["value"]), int(item["startline"]) + 1))
    assert base, f"{path}: no FROM"
    result.append(Stage(base, name, tuple(current)))
    return result


def install_command(path: Path) -> str:
    """The one ``RUN pip install ...`` of the Dockerfile's build stages."""
    runs = [
        value
        for stage in stages(path)[:-1]
        for value in stage.values("RUN")
        if value.startswith("pip install ")
    ]
    assert len(runs) == 1, f"{path}: expected one RUN pip install in a build stage, got {runs}"
    return runs[0]


def build_sources(path: Path) -> list[str]:
    """What the build stages copy from the build context (not from another stage)."""
    return [
        source
        for stage in stages(path)[:-1]
        for origin, sources, _ in stage.copies()
        if origin is None
        for source in sources
    ]
