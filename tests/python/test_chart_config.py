"""The config file the chart renders is accepted by the exporter itself (`check --config-only`), and a bad value
that only the exporter can judge is refused with the field named."""

from __future__ import annotations

import pytest
import yaml

from chartlib import CHART, check_config, render, require

require("helm_python.chart")

SCENARIOS = {"default": {}} | {
    p.name.removesuffix("-values.yaml"): yaml.safe_load(p.read_text()) for p in sorted((CHART / "ci").glob("*-values.yaml"))
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_config_is_accepted_by_the_exporter(scenario, tmp_path):
    text = render(SCENARIOS[scenario]).config_yaml()
    result = check_config(text, tmp_path)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}\n--- config ---\n{text}"
    assert "config ok" in result.stdout


def test_rendered_config_has_no_credentials():
    text = render({"clientId": "the-id", "clientSecret": "the-secret"}).config_yaml()
    assert "the-id" not in text and "the-secret" not in text
    assert "client_id" not in text and "client_secret" not in text


@pytest.mark.parametrize(
    "config, field",
    [
        # Valid for the schema (a duration), wrong for the exporter: shorter than the heartbeat timeout.
        ({"freshness": {"max_age": "30s"}}, "freshness.max_age"),
        ({"freshness": {"heartbeat_timeout": "20s"}}, "freshness.heartbeat_timeout"),
        ({"genesys": {"region": "mars-north-1"}}, "genesys.region"),
        ({"histograms": {"wait_buckets": [10, 5]}}, "histograms.wait_buckets"),
    ],
)
def test_a_bad_value_is_refused_with_the_field_named(config, field, tmp_path):
    text = render({"config": config}).config_yaml()
    result = check_config(text, tmp_path)
    assert result.returncode != 0
    assert f"config error: {field}:" in result.stderr, result.stderr
