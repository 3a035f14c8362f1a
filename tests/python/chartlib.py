"""Shared helpers of the chart tests: render the chart with Helm's own engine and pick objects out of the result.

Helm and the Kubernetes schemas come from helm-python-sdk and kubernetes-validate (tests/python/requirements.txt).
Without them the tests are skipped on a developer machine, but fail loudly when CI is set, so CI can never pass by
testing nothing.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "genesys-cloud-exporter"
RELEASE = "gce"
NAMESPACE = "monitoring"
# Oldest Kubernetes the chart supports: 1.28 brought the StatefulSet pod-index label; 1.30 is checked as a
# version every supported cluster has passed.
KUBE_VERSION = "1.30"

OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def require(module: str) -> Any:
    """Import `module`; skip the calling test module without it, unless CI is set, where that is an error."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if os.environ.get("CI"):
            raise ImportError(
                f"{module} is required for the chart tests when CI is set: "
                "pip install -r tests/python/requirements.txt"
            ) from e
        pytest.skip(f"{module} is not installed (pip install -r tests/python/requirements.txt)", allow_module_level=True)


def render_raw(values: dict | None = None, chart: Path = CHART, name: str = RELEASE) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would produce it (no cluster, no CRDs known)."""
    helm_chart = require("helm_python.chart")
    with helm_chart.Chart.load(chart) as c:
        return c.render(values=values or {}, name=name, namespace=NAMESPACE)


class Rendered:
    """The objects of one render, plus NOTES.txt."""

    def __init__(self, raw: dict[str, str]):
        self.raw = raw
        self.notes = ""
        self.objects: list[dict] = []
        for path, text in sorted(raw.items()):
            if path.endswith("NOTES.txt"):
                self.notes = text
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    self.objects.append(doc)

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, found {len(found)}: {[o['metadata']['name'] for o in found]}"
        return found[0]

    def kinds(self) -> set[str]:
        return {o["kind"] for o in self.objects}

    def workload(self) -> dict:
        found = self.of_kind("Deployment") + self.of_kind("StatefulSet")
        assert len(found) == 1, f"expected one Deployment or StatefulSet, found {[o['kind'] for o in found]}"
        return found[0]

    def pod_spec(self) -> dict:
        return self.workload()["spec"]["template"]["spec"]

    def container(self) -> dict:
        (c,) = [c for c in self.pod_spec()["containers"] if c["name"] == "exporter"]
        return c

    def config_yaml(self) -> str:
        cm = [o for o in self.of_kind("ConfigMap") if "config.yaml" in o.get("data", {})]
        assert len(cm) == 1, "expected one ConfigMap with config.yaml"
        return cm[0]["data"]["config.yaml"]


def render(values: dict | None = None, chart: Path = CHART) -> Rendered:
    return Rendered(render_raw(values, chart))


def copy_chart(dest: Path) -> Path:
    """A throwaway copy of the chart (to add sample rule files and dashboards without touching the real one)."""
    target = dest / "genesys-cloud-exporter"
    shutil.copytree(CHART, target)
    return target


_binary: Path | None = None


def exporter_binary() -> Path:
    """target/debug/genesys-cloud-exporter, built with `cargo build --quiet` when the Rust suite has not built it."""
    global _binary
    if _binary is None:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        path = target / "debug" / "genesys-cloud-exporter"
        if not path.exists():
            subprocess.run(["cargo", "build", "--quiet", "--bin", "genesys-cloud-exporter"], cwd=REPO, check=True)
        assert path.exists(), f"{path} was not built"
        _binary = path
    return _binary


def check_config(config_text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`genesys-cloud-exporter check --config-only --config.file <file>` on `config_text`, with a clean environment
    (no GENESYS_* or OTEL_* variable from the caller may change the verdict)."""
    f = tmp_path / "config.yaml"
    f.write_text(config_text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYS_", "OTEL_"))}
    return subprocess.run(
        [str(exporter_binary()), "check", "--config-only", "--config.file", str(f)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def matches(selector: dict, labels: dict) -> bool:
    """A non-empty matchLabels selector that `labels` satisfies."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_operator_objects(r):
    """Field-by-field checks of the monitoring.coreos.com/v1 objects (no OpenAPI schema ships for them)."""
    service = r.one("Service")
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    pod = r.workload()["spec"]["template"]
    container_ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    for obj in r.objects:
        kind = obj["kind"]
        if kind not in OPERATOR_KINDS:
            continue
        assert obj["apiVersion"] == "monitoring.coreos.com/v1", kind
        spec = obj["spec"]
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
        if kind in ("ServiceMonitor", "PodMonitor"):
            target_labels = service["metadata"]["labels"] if kind == "ServiceMonitor" else pod["metadata"]["labels"]
            assert set(spec["selector"]) == {"matchLabels"}
            assert matches(spec["selector"]["matchLabels"], target_labels), f"{kind} selects no exporter"
            assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
            # jobLabel must name a label the target carries, or Prometheus falls back to the object's name.
            assert spec["jobLabel"] in target_labels
            assert target_labels[spec["jobLabel"]] == "genesys-cloud-exporter"
            endpoints = spec["endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"]
            assert endpoints, kind
            ports = service_ports if kind == "ServiceMonitor" else container_ports
            for ep in endpoints:
                assert ep["port"] in ports, f"{kind} port {ep['port']} not in {ports}"
                assert ep["path"] == "/metrics"
                assert ep.get("scheme", "http") in ("http", "https")
                for key in ("interval", "scrapeTimeout"):
                    if key in ep:
                        assert re.fullmatch(r"([0-9]+(ms|s|m|h))+", ep[key]), ep[key]
                for relabel in ep.get("metricRelabelings", []) + ep.get("relabelings", []):
                    assert isinstance(relabel, dict)
        else:
            groups = spec["groups"]
            assert groups, f"PrometheusRule/{obj['metadata']['name']} has no groups"
            assert set(spec) == {"groups"}
            assert len({g["name"] for g in groups}) == len(groups), "duplicate group names"
            for g in groups:
                assert g["name"] and g["rules"], g
                for rule in g["rules"]:
                    assert ("alert" in rule) != ("record" in rule), rule
                    assert str(rule["expr"]).strip(), rule
