"""values.schema.json describes every value and rejects bad ones with Helm's own error."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from chartlib import CHART, REPO, render, require

helm_python = require("helm_python")

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())


@pytest.mark.parametrize(
    "values, path, message",
    [
        ({"sharding": {"shards": "3"}}, "/sharding/shards", "got string, want integer"),
        ({"sharding": {"shards": 0}}, "/sharding/shards", "minimum"),
        ({"sharding": {"shards": 21}}, "/sharding/shards", "maximum"),
        ({"existingSecret": {"name": ""}}, "/existingSecret/name", "minLength"),
        ({"existingSecret": {"clientIdKey": "id"}}, "/existingSecret", "missing property 'name'"),
        ({"replicaCount": 2}, "", "additional properties 'replicaCount' not allowed"),
        ({"config": {"genesys": {"client_secret": "s"}}}, "/config/genesys", "'client_secret' not allowed"),
        ({"config": {"freshness": {"maxAge": "3m"}}}, "/config/freshness", "'maxAge' not allowed"),
        ({"config": {"freshness": {"max_age": "3 minutes"}}}, "/config/freshness/max_age", "does not match pattern"),
        ({"config": {"api": {"budget_share": 2}}}, "/config/api/budget_share", "maximum"),
        ({"config": {"otlp": {"protocol": "http/json"}}}, "/config/otlp/protocol", "value must be one of"),
        ({"otlpHeadersSecret": {"key": "h"}}, "/otlpHeadersSecret", "missing property 'name'"),
        ({"serviceMonitor": {"enabled": "yes"}}, "/serviceMonitor/enabled", ""),
        ({"logLevel": "verbose"}, "/logLevel", "value must be one of"),
        ({"podAnnotations": {"a": 1}}, "/podAnnotations/a", "got number, want string"),
    ],
)
def test_bad_values_are_rejected_with_helms_error(values, path, message):
    with pytest.raises(helm_python.HelmValuesError) as e:
        render(values)
    text = str(e.value)
    assert "values don't meet the specifications of the schema" in text
    assert f"at '{path}'" in text, text
    assert message in text, text


def test_good_values_pass():
    render({"serviceMonitor": {"enabled": "auto"}, "existingSecret": {}, "podDisruptionBudget": {"maxUnavailable": "50%"}})


def _schema_at(schema: dict, key: str) -> dict | None:
    return schema.get("properties", {}).get(key)


def _walk(values, schema, path=""):
    """Every key of values.yaml has a schema entry with a description, and the default fits its type."""
    assert "description" in schema or path == "", f"{path or '(top)'}: no description"
    if isinstance(values, dict) and schema.get("properties"):
        for key, v in values.items():
            sub = _schema_at(schema, key)
            assert sub is not None, f"{path}.{key} has no schema entry"
            _walk(v, sub, f"{path}.{key}")


def test_every_value_is_described():
    _walk(DEFAULTS, SCHEMA)
    # ... and every schema property exists in values.yaml (the schema documents only real values), save Helm's own.
    missing = set(SCHEMA["properties"]) - set(DEFAULTS) - {"global"}
    assert not missing, f"in the schema but not in values.yaml: {missing}"
    assert SCHEMA["additionalProperties"] is False


def test_the_config_section_mirrors_the_exporters_keys():
    """values.config offers exactly the config-file keys of src/config.rs (KEYS), less the credentials, which
    must come from a Secret."""
    source = (REPO / "src" / "config.rs").read_text()
    block = re.search(r"pub const KEYS: &\[&str\] = &\[(.*?)\];", source, re.S)
    assert block, "KEYS not found in src/config.rs"
    keys = set(re.findall(r'"([a-z_]+\.[a-z_]+)"', block.group(1)))
    assert keys, "no keys parsed"
    secrets = {"genesys.client_id", "genesys.client_secret"}
    schema_keys = {
        f"{section}.{key}"
        for section, sub in SCHEMA["properties"]["config"]["properties"].items()
        for key in sub["properties"]
    }
    assert schema_keys == keys - secrets
    for section in SCHEMA["properties"]["config"]["properties"].values():
        assert section["additionalProperties"] is False


def test_the_readme_values_table_is_current():
    """The README's values table is helm/values-table.py's output (run it with --write after changing values)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("values_table", REPO / "helm" / "values-table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    readme = (CHART / "README.md").read_text()
    assert readme.endswith(mod.table()), "README values table is stale: run helm/values-table.py --write"
    documented = set(re.findall(r"^\| `([^`]+)` \|", mod.table(), re.M))
    assert {"sharding.shards", "existingSecret", "config.otlp.endpoint", "serviceMonitor.enabled"} <= documented
