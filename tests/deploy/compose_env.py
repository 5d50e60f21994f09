"""docker-compose.yml loaded as Compose reads it: YAML (merge keys resolved), then every
``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``,
``${VAR:+alt}``, ``${VAR+alt}`` and ``$$`` filled from an environment."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import yaml

from .layout import COMPOSE_FILE

_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


# What an operator sets before `docker compose up`: the variables the file requires.
SAMPLE_ENV = {
    "PARLEY_JWT_SECRET": "s" * 40,
    "POSTGRES_PASSWORD": "pg-password",
    "GRAFANA_ADMIN_PASSWORD": "grafana-password",
}


class MissingVariableError(ValueError):
    """A ``${VAR:?message}`` whose variable is not set (or empty)."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


def _fill(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"] or "", match["arg"] or ""
        value = env.get(name)
        present = value is not None and (value != "" or not op.startswith(":"))
        if op.endswith("-"):
            return value if present and value is not None else arg
        if op.endswith("?"):
            if not present or value is None:
                raise MissingVariableError(name, arg or "required")
            return value
        if op.endswith("+"):
            return arg if present else ""
        return value or ""

    return _REFERENCE.sub(replace, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """``node`` with every string filled from ``env``, as Compose does before it validates."""
    if isinstance(node, str):
        return _fill(node, env)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


@cache
def _parsed() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return parsed


def raw() -> dict[str, Any]:
    """docker-compose.yml as YAML, before interpolation (a copy each time: tests change it)."""
    return copy.deepcopy(_parsed())


def loaded(env: Mapping[str, str]) -> dict[str, Any]:
    """docker-compose.yml as Compose sees it with ``env`` as the environment."""
    filled: dict[str, Any] = interpolate(_parsed(), env)
    return filled
