#!/usr/bin/env python3
"""Prints the values table of helm/genesys-cloud-exporter/README.md from values.yaml (keys, defaults) and
values.schema.json (types, descriptions). `--write` replaces the table at the end of the README;
tests/python checks that the README's table is this output.
Needs PyYAML (tests/python/requirements.txt)."""

import json
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parent / "genesys-cloud-exporter"
HEADER = "| key | type | default | description |"
# Objects documented as one value (their keys are free-form or optional).
WHOLE = {"existingSecret", "otlpHeadersSecret"}


def _type(s: dict) -> str:
    t = s.get("type")
    if t is None and "oneOf" in s:
        t = [o.get("type") for o in s["oneOf"]]
    if isinstance(t, list):
        return " \\| ".join(x for x in t if x)
    return t or ""


def rows(values, schema: dict, path: str = ""):
    props = schema.get("properties")
    if isinstance(values, dict) and values and props and path not in WHOLE:
        for key, sub in values.items():
            yield from rows(sub, props[key], f"{path}.{key}" if path else key)
        return
    default = json.dumps(values, separators=(",", ":"))
    default = "(see values.yaml)" if len(default) > 60 else f"`{default}`"
    desc = schema.get("description", "").replace("|", "\\|").replace("\n", " ")
    yield f"| `{path}` | {_type(schema)} | {default} | {desc} |"


def table(chart: Path = CHART) -> str:
    schema = json.loads((chart / "values.schema.json").read_text())
    values = yaml.safe_load((chart / "values.yaml").read_text())
    return "\n".join([HEADER, "|---|---|---|---|", *rows(values, schema)]) + "\n"


if __name__ == "__main__":
    text = table()
    if sys.argv[1:] == ["--write"]:
        readme = CHART / "README.md"
        old = readme.read_text()
        readme.write_text(old[: old.index(HEADER)] + text)
    else:
        sys.stdout.write(text)
