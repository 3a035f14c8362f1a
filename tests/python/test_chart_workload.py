"""Credentials, sharding, OTLP and the NetworkPolicy, as rendered."""

from __future__ import annotations

import base64

import yaml

from chartlib import CHART, render, require

require("helm_python.chart")


def values(name: str) -> dict:
    return yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())


def env_of(r) -> dict[str, dict]:
    return {e["name"]: e for e in r.container().get("env", [])}


def no_literal_credentials(r, *secrets: str):
    """No credential value anywhere but in a Secret; no GENESYS_CLIENT_* env with a literal value."""
    for obj in r.objects:
        if obj["kind"] == "Secret":
            continue
        text = yaml.safe_dump(obj)
        for s in secrets:
            assert s not in text, f"a credential leaked into {obj['kind']}/{obj['metadata']['name']}"
    for name, e in env_of(r).items():
        if name.startswith("GENESYS_CLIENT") or name == "OTEL_EXPORTER_OTLP_HEADERS":
            assert "value" not in e and "secretKeyRef" in e["valueFrom"], name


def test_existing_secret_is_referenced_not_created():
    r = render(values("existing-secret"))
    assert "Secret" not in r.kinds()
    env = env_of(r)
    assert env["GENESYS_CLIENT_ID"]["valueFrom"]["secretKeyRef"] == {"name": "genesys-oauth", "key": "id"}
    assert env["GENESYS_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "genesys-oauth", "key": "secret"}
    no_literal_credentials(r)
    assert "NO CREDENTIALS" not in r.notes and "genesys-oauth" in r.notes


def test_existing_secret_default_keys():
    env = env_of(render({"existingSecret": {"name": "oauth"}}))
    assert env["GENESYS_CLIENT_ID"]["valueFrom"]["secretKeyRef"] == {"name": "oauth", "key": "client-id"}
    assert env["GENESYS_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "oauth", "key": "client-secret"}


def test_secret_created_from_values():
    v = values("chart-secret")
    r = render(v)
    secret = r.one("Secret")
    assert base64.b64decode(secret["data"]["client-id"]).decode() == v["clientId"]
    assert base64.b64decode(secret["data"]["client-secret"]).decode() == v["clientSecret"]
    env = env_of(r)
    ref = env["GENESYS_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": secret["metadata"]["name"], "key": "client-secret"}
    no_literal_credentials(r, v["clientSecret"], v["clientId"])
    assert "checksum/secret" in r.workload()["spec"]["template"]["metadata"]["annotations"]


def test_existing_secret_wins_over_values():
    r = render({"existingSecret": {"name": "oauth"}, "clientId": "x", "clientSecret": "y"})
    assert "Secret" not in r.kinds()
    assert env_of(r)["GENESYS_CLIENT_ID"]["valueFrom"]["secretKeyRef"]["name"] == "oauth"


def test_no_credentials_renders_and_warns():
    r = render({})
    assert "Secret" not in r.kinds()
    assert not {"GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET"} & set(env_of(r))
    assert "NO CREDENTIALS ARE CONFIGURED" in r.notes


def test_half_a_credential_pair_fails_the_render():
    import helm_python

    for v in ({"clientId": "x"}, {"clientSecret": "y"}):
        try:
            render(v)
        except helm_python.HelmRenderError as e:
            assert "set both clientId and clientSecret" in str(e)
        else:
            raise AssertionError(f"{v} rendered")


def test_sharding_is_a_statefulset_with_ordinal_flags():
    r = render(values("sharding"))
    assert "Deployment" not in r.kinds()
    sts = r.one("StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == r.one("Service")["metadata"]["name"]
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    args = r.container()["args"]
    assert "--shard=$(POD_INDEX)" in args and "--total-shards=3" in args
    # The ordinal comes from the pod-index label through the downward API; Kubernetes expands $(POD_INDEX) in args
    # only for variables defined in the container's env.
    pod_index = env_of(r)["POD_INDEX"]
    assert pod_index == {
        "name": "POD_INDEX",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}},
    }
    names = [e["name"] for e in r.container()["env"]]
    assert names.index("POD_INDEX") == 0
    # Shards share one OAuth client, and Genesys allows it 20 channels: each gets an equal part.
    assert yaml.safe_load(r.config_yaml())["notifications"]["max_channels"] == 6
    assert "3 shards" in r.notes


def test_sharding_keeps_an_explicit_channel_limit():
    r = render({"sharding": {"shards": 4}, "config": {"notifications": {"max_channels": 2}}})
    assert yaml.safe_load(r.config_yaml())["notifications"]["max_channels"] == 2


def test_one_shard_is_a_deployment():
    r = render({"sharding": {"shards": 1}})
    assert "StatefulSet" not in r.kinds()
    assert r.one("Deployment")["spec"]["replicas"] == 1
    assert "POD_INDEX" not in env_of(r)


def test_unsharded_replicas_warn():
    assert "sharding.shards=2" in render({"replicas": 2}).notes


def test_otlp_passthrough():
    r = render(values("otlp"))
    otlp = yaml.safe_load(r.config_yaml())["otlp"]
    assert otlp["endpoint"] == "http://otel-collector.observability:4318"
    assert otlp["compression"] == "gzip" and otlp["interval"] == "30s"
    assert otlp["resource_attributes"]["service.namespace"] == "contact-center"
    ref = env_of(r)["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "otlp-auth", "key": "headers"}
    no_literal_credentials(r)


def _egress_ports(r) -> set[int]:
    np = r.one("NetworkPolicy")
    return {p["port"] for rule in np["spec"]["egress"] for p in rule.get("ports", [])}


def test_network_policy():
    r = render(values("networkpolicy"))
    np = r.one("NetworkPolicy")
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = np["spec"]["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert ingress["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert _egress_ports(r) == {53, 443, 4318}
    assert "NetworkPolicy" not in render({}).kinds()


def test_network_policy_otlp_ports():
    base = {"networkPolicy": {"enabled": True}}
    assert _egress_ports(render(base)) == {53, 443}
    https = render(base | {"config": {"otlp": {"endpoint": "https://otlp.example.com/v1"}}})
    assert _egress_ports(https) == {53, 443}
    plain = render(base | {"config": {"otlp": {"endpoint": "http://collector"}}})
    assert _egress_ports(plain) == {53, 443, 80}
    extra = render({"networkPolicy": {"enabled": True, "extraEgressPorts": [3128]}})
    assert 3128 in _egress_ports(extra)


def test_recreate_strategy_drops_the_default_rolling_update():
    assert render({"strategy": {"type": "Recreate"}}).one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert render({}).one("Deployment")["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_null_config_sections_keep_the_exporters_defaults():
    r = render({"config": {"web": None, "otlp": None}, "serviceMonitor": {"enabled": True}, "networkPolicy": {"enabled": True}})
    assert "ServiceMonitor" in r.kinds()
    r = render({"config": {"web": {"metrics_enabled": None}}, "podMonitor": {"enabled": True}})
    assert "PodMonitor" in r.kinds()


def test_an_empty_config_is_the_exporters_defaults(tmp_path):
    from chartlib import check_config

    r = render({"config": None, "sharding": {"shards": 2}, "networkPolicy": {"enabled": True}})
    assert yaml.safe_load(r.config_yaml()) == {"notifications": {"max_channels": 10}}
    assert check_config(render({"config": None}).config_yaml(), tmp_path).returncode == 0


def test_null_secret_references_mean_none():
    r = render({"existingSecret": None, "otlpHeadersSecret": None, "clientId": "a", "clientSecret": "b"})
    assert r.one("Secret") and "OTEL_EXPORTER_OTLP_HEADERS" not in env_of(r)
