"""The chart renders with Helm's own engine for the default values and every ci/*-values.yaml scenario, lints
clean, and every object it renders is valid: core objects against the Kubernetes OpenAPI schemas, Prometheus
Operator objects field by field."""

from __future__ import annotations

import re

import pytest
import yaml

from chartlib import CHART, KUBE_VERSION, NAMESPACE, OPERATOR_KINDS, RELEASE, check_operator_objects, matches, render, require

helm_chart = require("helm_python.chart")
kubernetes_validate = require("kubernetes_validate")

SCENARIOS = {"default": {}} | {
    p.name.removesuffix("-values.yaml"): yaml.safe_load(p.read_text()) for p in sorted((CHART / "ci").glob("*-values.yaml"))
}


def test_the_scenarios_cover_what_the_issue_asks_for():
    assert {"default", "sharding", "existing-secret", "monitors-on", "monitors-off", "otlp", "networkpolicy"} <= set(
        SCENARIOS
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_is_clean(scenario):
    report = helm_chart.lint(CHART, SCENARIOS[scenario], strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    # Severity 1 is informational ("icon is recommended"); warnings (2) and errors (3) fail.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_core_objects_validate_against_the_kubernetes_schemas(scenario):
    r = render(SCENARIOS[scenario])
    assert {"Deployment", "StatefulSet"} & r.kinds()
    for obj in r.objects:
        if obj["kind"] in OPERATOR_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {e.message}")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_is_named_labelled_and_namespaced(scenario):
    r = render(SCENARIOS[scenario])
    names = set()
    for obj in r.objects:
        md = obj["metadata"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", md["name"]) and len(md["name"]) <= 63, md["name"]
        assert md["namespace"] == NAMESPACE
        assert md["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert md["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert (obj["kind"], md["name"]) not in names, f"duplicate {obj['kind']}/{md['name']}"
        names.add((obj["kind"], md["name"]))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_selectors_pick_the_exporter_pods(scenario):
    r = render(SCENARIOS[scenario])
    w = r.workload()
    pod_labels = w["spec"]["template"]["metadata"]["labels"]
    assert matches(w["spec"]["selector"]["matchLabels"], pod_labels)
    assert matches(r.one("Service")["spec"]["selector"], pod_labels)
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for obj in r.of_kind(kind):
            sel = obj["spec"]["selector" if kind == "PodDisruptionBudget" else "podSelector"]["matchLabels"]
            assert matches(sel, pod_labels), kind


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_operator_objects_are_well_formed(scenario):
    check_operator_objects(render(SCENARIOS[scenario]))


def test_the_schema_check_is_not_vacuous():
    """kubernetes-validate, strict, really rejects a misspelt field and a wrong type in what we render."""
    deployment = render({}).one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
    deployment = render({}).one("Deployment")
    deployment["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_default_render_creates_no_operator_objects_without_the_crds():
    # enabled: auto and no CRD in .Capabilities (offline render): nothing that would fail on a plain cluster.
    r = render({})
    assert not (OPERATOR_KINDS & r.kinds())
    assert "No ServiceMonitor/PodMonitor was created" in r.notes


def test_monitors_on():
    r = render(SCENARIOS["monitors-on"])
    sm = r.one("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"][0]["metricRelabelings"][0]["action"] == "drop"
    assert "PodMonitor" not in r.kinds()
    extra = [p for p in r.of_kind("PrometheusRule") if p["metadata"]["name"].endswith("-additional")]
    assert extra and extra[0]["spec"]["groups"][0]["name"] == "site-specific"
    assert all(p["metadata"]["labels"]["release"] == "kube-prometheus-stack" for p in r.of_kind("PrometheusRule"))
    assert "A ServiceMonitor" in r.notes


def test_podmonitor_replaces_the_servicemonitor():
    r = render(SCENARIOS["podmonitor"])
    assert r.one("PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    assert "ServiceMonitor" not in r.kinds(), "a PodMonitor and a ServiceMonitor would scrape every pod twice"


def test_monitors_off():
    r = render(SCENARIOS["monitors-off"])
    assert not (OPERATOR_KINDS & r.kinds())
    assert not [c for c in r.of_kind("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]
    assert r.one("Service")["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_no_monitor_when_metrics_are_off():
    r = render({"serviceMonitor": {"enabled": True}, "config": {"web": {"metrics_enabled": False}}})
    assert "ServiceMonitor" not in r.kinds()


def test_restricted_pod_security_standard():
    for scenario in SCENARIOS:
        r = render(SCENARIOS[scenario])
        spec = r.pod_spec()
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
        assert psc["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert sc["seccompProfile"]["type"] == "RuntimeDefault"
            assert "add" not in sc["capabilities"]
        assert not spec.get("hostNetwork") and not spec.get("hostPID")
        assert all(set(v) & {"configMap", "secret", "emptyDir", "projected"} for v in spec["volumes"]), "restricted volume types only"


def test_probes_resources_and_flags():
    r = render({})
    c = r.container()
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["ports"] == [{"name": "http", "containerPort": 9888, "protocol": "TCP"}]
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    assert c["args"][0] == "run"
    assert "--web.listen-address=:9888" in c["args"]
    assert "--config.file=/etc/genesys-cloud-exporter/config.yaml" in c["args"]
    assert "--log.level=info" in c["args"] and "--log.format=logfmt" in c["args"]
    assert not [a for a in c["args"] if a.startswith("--shard")]
    mount = [m for m in c["volumeMounts"] if m["name"] == "config"][0]
    assert mount["mountPath"] == "/etc/genesys-cloud-exporter" and mount["readOnly"]
    (vol,) = [v for v in r.pod_spec()["volumes"] if v["name"] == "config"]
    # The config ConfigMap is the one without the Grafana sidecar's label (the others carry dashboards).
    (config_map,) = [o for o in r.of_kind("ConfigMap") if "grafana_dashboard" not in o["metadata"].get("labels", {})]
    assert vol["configMap"]["name"] == config_map["metadata"]["name"]
    assert r.one("Service")["spec"]["ports"][0] == {"name": "http", "port": 9888, "targetPort": "http", "protocol": "TCP"}
    assert r.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_extra_env_labels_and_annotations():
    r = render(SCENARIOS["everything"])
    for obj in r.objects:
        assert obj["metadata"]["labels"]["team"] == "contact-center", obj["kind"]
        assert obj["metadata"]["annotations"]["owner"] == "platform", obj["kind"]
    tmpl = r.workload()["spec"]["template"]
    assert tmpl["metadata"]["labels"]["tier"] == "monitoring"
    assert tmpl["metadata"]["annotations"]["example.com/note"] == "yes"
    assert "--web.config.file=/etc/genesys-cloud-exporter-web/web-config.yml" in r.container()["args"]
    assert r.pod_spec()["imagePullSecrets"] == [{"name": "regcred"}]
    env = {e["name"]: e for e in render(SCENARIOS["otlp"]).container()["env"]}
    assert env["OTEL_METRIC_EXPORT_TIMEOUT"]["value"] == "10000"


def test_config_change_rolls_the_pods():
    a = render({}).workload()["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    b = render({"config": {"api": {"budget_share": 0.3}}}).workload()["spec"]["template"]["metadata"]["annotations"][
        "checksum/config"
    ]
    assert a != b


def test_image_reference():
    assert render({}).container()["image"] == "ghcr.io/genesys-cloud-exporter/genesys-cloud-exporter:0.1.0"
    digest = "sha256:" + "a" * 64
    assert render({"image": {"digest": digest}}).container()["image"].endswith("@" + digest)
    assert render({"image": {"tag": "9.9.9", "registry": ""}}).container()["image"] == (
        "genesys-cloud-exporter/genesys-cloud-exporter:9.9.9"
    )
