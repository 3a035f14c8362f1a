"""The chart's copies of the rule files and dashboards are the repository's, byte for byte, and they become one
PrometheusRule per rule file (its `groups` embedded) and one sidecar-labelled ConfigMap per dashboard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from chartlib import CHART, REPO, check_operator_objects, copy_chart, render, require

require("helm_python.chart")

SYNC = REPO / "helm" / "sync-files.sh"


def is_rule_file(p: Path) -> bool:
    """A Prometheus rule file: a top-level alerts/*.yaml|yml whose document is `groups: [...]` (so neither
    alerts/tests/ nor alertmanager.example.yml)."""
    if p.name.startswith("alertmanager"):
        return False
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError:
        return True  # broken YAML still has to be copied (and then fails the render test loudly)
    return isinstance(doc, dict) and "groups" in doc


def expected_copies(root: Path) -> dict[str, bytes]:
    """chart-relative path -> content the chart must hold, from whatever rule files and dashboards exist."""
    want = {}
    for p in sorted((root / "alerts").glob("*.y*ml")) if (root / "alerts").is_dir() else []:
        if p.suffix in (".yaml", ".yml") and is_rule_file(p):
            want[f"files/alerts/{p.name}"] = p.read_bytes()
    for p in sorted((root / "dashboards").glob("*.json")) if (root / "dashboards").is_dir() else []:
        want[f"files/dashboards/{p.name}"] = p.read_bytes()
    return want


def actual_copies(chart: Path) -> dict[str, bytes]:
    have = {}
    for sub, patterns in (("files/alerts", ("*.yaml", "*.yml")), ("files/dashboards", ("*.json",))):
        for pattern in patterns:
            for p in sorted((chart / sub).glob(pattern)):
                have[f"{sub}/{p.name}"] = p.read_bytes()
    return have


def test_the_charts_copies_match_the_repository():
    want, have = expected_copies(REPO), actual_copies(CHART)
    stale = sorted(set(have) - set(want))
    missing = sorted(set(want) - set(have))
    differ = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    assert not (stale or missing or differ), (
        f"chart copies out of date (run helm/sync-files.sh and commit): "
        f"missing {missing}, differing {differ}, stale {stale}"
    )


def test_sync_script_check_agrees():
    result = subprocess.run(["bash", str(SYNC), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


RULES = """\
# Sample rule file (throwaway, for the test only).
groups:
  - name: genesys-sample-alerts
    rules:
      - alert: GenesysQueueLongestWaitHigh
        expr: |
          genesys_queue_longest_waiting_seconds > 120
        for: 1m
        labels:
          severity: page
        annotations:
          summary: Callers wait too long.
          description: '{{ $labels.queue }} ({{ $labels.media_type }}): longest wait {{ $value | humanizeDuration }}.'
          runbook_url: https://example.invalid/runbooks.md#genesysqueuelongestwaithigh
"""
RECORDING = """\
groups:
  - name: genesys-kpis
    interval: 30s
    rules:
      - record: genesys:queue_abandon_ratio:interval
        expr: genesys_queue_interval_abandoned / clamp_min(genesys_queue_interval_offered, 1)
"""
DASHBOARD = {"title": "Queue wallboard", "uid": None, "schemaVersion": 39, "refresh": "5s", "panels": [
    {"id": 1, "type": "stat", "title": "Waiting", "targets": [{"expr": "sum(genesys_queue_waiting{queue=~\"$queue\"})"}]}
]}


def make_sample_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway repository root with sample alerts/ and dashboards/, and a chart copy synced from it."""
    root = tmp_path / "repo"
    (root / "alerts" / "tests").mkdir(parents=True)
    (root / "dashboards").mkdir()
    (root / "alerts" / "genesys-alerts.yaml").write_text(RULES)
    (root / "alerts" / "recording-rules.yaml").write_text(RECORDING)
    (root / "alerts" / "site.yml").write_text(RECORDING.replace("genesys-kpis", "site").replace("genesys:", "site:"))
    (root / "alerts" / "alertmanager.example.yml").write_text("route:\n  receiver: pager\nreceivers:\n  - name: pager\n")
    (root / "alerts" / "tests" / "alerts.test.yaml").write_text("rule_files: [../genesys-alerts.yaml]\ntests: []\n")
    (root / "dashboards" / "wallboard.json").write_text(json.dumps(DASHBOARD, indent=2))
    (root / "dashboards" / "Exporter_Health.json").write_text(json.dumps({"title": "Exporter health", "panels": []}))
    chart = copy_chart(tmp_path / "charts")
    for sub in ("files/alerts", "files/dashboards"):
        shutil.rmtree(chart / sub, ignore_errors=True)
    env = dict(os.environ, SYNC_SRC=str(root), SYNC_CHART=str(chart))
    subprocess.run(["bash", str(SYNC)], check=True, env=env, capture_output=True)
    return root, chart


def test_sync_copies_rule_files_and_dashboards_only(tmp_path):
    root, chart = make_sample_repo(tmp_path)
    assert actual_copies(chart) == expected_copies(root)
    assert set(actual_copies(chart)) == {
        "files/alerts/genesys-alerts.yaml",
        "files/alerts/recording-rules.yaml",
        "files/alerts/site.yml",
        "files/dashboards/wallboard.json",
        "files/dashboards/Exporter_Health.json",
    }
    env = dict(os.environ, SYNC_SRC=str(root), SYNC_CHART=str(chart))
    check = ["bash", str(SYNC), "--check"]
    assert subprocess.run(check, env=env, capture_output=True).returncode == 0
    # An edited source, then a removed one: --check fails naming the file, a sync repairs it.
    (root / "alerts" / "genesys-alerts.yaml").write_text(RULES.replace("> 120", "> 90"))
    (root / "dashboards" / "Exporter_Health.json").unlink()
    out = subprocess.run(check, env=env, capture_output=True, text=True)
    assert out.returncode == 1
    assert "genesys-alerts.yaml" in out.stdout and "Exporter_Health.json" in out.stdout
    subprocess.run(["bash", str(SYNC)], check=True, env=env, capture_output=True)
    assert subprocess.run(check, env=env, capture_output=True).returncode == 0
    assert actual_copies(chart) == expected_copies(root)


def test_one_prometheusrule_per_rule_file_with_its_groups(tmp_path):
    root, chart = make_sample_repo(tmp_path)
    r = render({"prometheusRule": {"enabled": True}}, chart=chart)
    rules = {p["metadata"]["annotations"]["genesys-cloud-exporter/source"]: p for p in r.of_kind("PrometheusRule")}
    sources = [p for p in (root / "alerts").glob("*.y*ml") if is_rule_file(p)]
    assert set(rules) == {p.name for p in sources}
    for p in sources:
        obj = rules[p.name]
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        assert obj["spec"]["groups"] == yaml.safe_load(p.read_text())["groups"]
    # Alert templates reach Prometheus untouched by Helm.
    alert = rules["genesys-alerts.yaml"]["spec"]["groups"][0]["rules"][0]
    assert alert["annotations"]["description"].startswith("{{ $labels.queue }}")
    check_operator_objects(r)
    assert "3 PrometheusRule object(s)" in r.notes


def test_a_rule_file_without_groups_fails_the_render(tmp_path):
    import helm_python

    _, chart = make_sample_repo(tmp_path)
    (chart / "files" / "alerts" / "broken.yaml").write_text("rules:\n  - alert: X\n")
    try:
        render({"prometheusRule": {"enabled": True}}, chart=chart)
    except helm_python.HelmRenderError as e:
        assert "broken.yaml has no rule groups" in str(e)
    else:
        raise AssertionError("rendered a PrometheusRule from a file without groups")


def test_dashboards_become_sidecar_configmaps(tmp_path):
    root, chart = make_sample_repo(tmp_path)
    r = render({"dashboards": {"annotations": {"grafana_folder": "Genesys"}}}, chart=chart)
    cms = [c for c in r.of_kind("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    by_file = {k: (c, v) for c in cms for k, v in c["data"].items()}
    assert set(by_file) == {p.name for p in (root / "dashboards").glob("*.json")}
    for p in (root / "dashboards").glob("*.json"):
        cm, text = by_file[p.name]
        assert json.loads(text) == json.loads(p.read_text())
        assert cm["metadata"]["annotations"]["grafana_folder"] == "Genesys"
        assert len(cm["metadata"]["name"]) <= 63
    assert {c["metadata"]["name"] for c in cms} == {
        "gce-genesys-cloud-exporter-dashboard-wallboard",
        "gce-genesys-cloud-exporter-dashboard-exporter-health",
    }
    assert not [c for c in render({"dashboards": {"enabled": False}}, chart=chart).of_kind("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]
    assert "2 dashboard ConfigMap(s)" in r.notes


def test_the_real_charts_files_render(tmp_path):
    """Whatever rule files and dashboards the chart holds today render into valid objects."""
    r = render({"prometheusRule": {"enabled": True}})
    check_operator_objects(r)
    n_rules = len([p for p in (CHART / "files" / "alerts").glob("*.y*ml")])
    assert len([p for p in r.of_kind("PrometheusRule")]) == n_rules


def test_a_chart_with_rules_and_dashboards_lints_and_validates(tmp_path):
    kubernetes_validate = require("kubernetes_validate")
    helm_chart = require("helm_python.chart")
    from chartlib import KUBE_VERSION, OPERATOR_KINDS

    _, chart = make_sample_repo(tmp_path)
    values = {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}}
    report = helm_chart.lint(chart, values, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    r = render(values, chart=chart)
    for obj in r.objects:
        if obj["kind"] not in OPERATOR_KINDS:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    check_operator_objects(r)


def test_rendered_rule_groups_pass_promtool(tmp_path):
    """What the PrometheusRules carry is still a valid rule file for Prometheus (promtool comes with the Debian
    package tests/run-all.sh installs)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            raise AssertionError("promtool is required when CI is set (Debian package prometheus)")
        import pytest

        pytest.skip("promtool not installed")
    _, chart = make_sample_repo(tmp_path)
    r = render({"prometheusRule": {"enabled": True}}, chart=chart)
    for i, obj in enumerate(r.of_kind("PrometheusRule")):
        f = tmp_path / f"rules-{i}.yaml"
        f.write_text(yaml.safe_dump({"groups": obj["spec"]["groups"]}))
        out = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
