"""The Helm chart: lint, render with default and GPU values, validate, refuse typos, least RBAC."""

from __future__ import annotations

import helm_python
import kubernetes_validate
import pytest
import yaml

from spawner.rbac import HUB_ROLE_RULES
from tests.chart import CHART, GPU_VALUES, render

VERSIONS = ["1.35.0", "1.36.0", "1.37.0"]
VALUE_SETS = {"defaults": {}, "gpu-cluster": yaml.safe_load(GPU_VALUES.read_text())}


def test_the_chart_lints_clean() -> None:
    for values in VALUE_SETS.values():
        report = helm_python.lint(CHART, values, strict=True)
        assert report["errors"] == []
        assert not [m for m in report["messages"] if m["severity"] >= 2], report


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("values", list(VALUE_SETS))
def test_every_rendered_object_validates(values: str, version: str) -> None:
    objects = render(VALUE_SETS[values])
    kinds = {o["kind"] for o in objects}
    assert {
        "Deployment",
        "Service",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "ConfigMap",
        "NetworkPolicy",
        "PersistentVolumeClaim",
    } <= kinds
    for manifest in objects:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_hub_reads_the_charts_values_as_its_own() -> None:
    from hub_config.values import load_values

    configmap = next(o for o in render() if o["kind"] == "ConfigMap")
    values = yaml.safe_load(configmap["data"]["values.yaml"])
    assert values["spawner"]["kind"] == "kubernetes"
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "values.yaml"
        path.write_text(configmap["data"]["values.yaml"])
        loaded = load_values(path)
    assert loaded["profiles"][1]["gpu_type"] == "a100"


def test_a_typo_in_the_values_fails_naming_the_key() -> None:
    with pytest.raises(helm_python.HelmError) as failure:
        render({"hub": {"bind_ur": "http://0.0.0.0:8000"}})
    assert "bind_ur" in str(failure.value)


def test_the_hub_role_is_exactly_the_least_privilege_rules() -> None:
    role = next(o for o in render() if o["kind"] == "Role")
    assert role["rules"] == HUB_ROLE_RULES
    assert not [o for o in render() if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_single_user_pods_reach_only_hub_proxy_batch_and_dns() -> None:
    policy = next(
        o
        for o in render()
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("singleuser")
    )
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert ports == {8000, 8081, 10101, 53}
    hub_only = policy["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"]
    assert hub_only["app.kubernetes.io/component"] == "hub"


def test_prometheus_can_scrape_the_batch_metrics_with_a_token_kept_in_a_secret() -> None:
    token = "m" * 40
    objects = render({"metrics": {"api_token": token}})
    by = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    secret = by[("Secret", "test-batchhub-metrics")]
    assert secret["stringData"]["token"] == token
    # The values the hub reads name the environment variable, not the token itself.
    configmap = by[("ConfigMap", "test-batchhub-values")]
    assert token not in configmap["data"]["values.yaml"]
    values = yaml.safe_load(configmap["data"]["values.yaml"])
    assert values["metrics"]["api_token_from_env"] == "BATCHHUB_METRICS_TOKEN"
    hub = by[("Deployment", "test-batchhub-hub")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in hub["env"]}
    assert (
        env["BATCHHUB_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
        == secret["metadata"]["name"]
    )
    service = by[("Service", "test-batchhub-hub")]
    assert service["metadata"]["annotations"]["prometheus.io/path"] == "/services/batch/metrics"
    assert service["metadata"]["annotations"]["prometheus.io/port"] == "10101"
    scrape = yaml.safe_load(
        by[("ConfigMap", "test-batchhub-prometheus-scrape")]["data"]["scrape-config.yaml"]
    )[0]
    assert scrape["metrics_path"] == "/services/batch/metrics"
    assert scrape["authorization"]["credentials_file"].endswith("test-batchhub-metrics/token")
    # The hub's NetworkPolicy lets Prometheus reach the batch port, and nothing more.
    policy = by[("NetworkPolicy", "test-batchhub-hub")]
    prometheus = policy["spec"]["ingress"][-1]
    assert prometheus["ports"] == [{"port": "batch"}]
    assert prometheus["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "prometheus"
    }
    for manifest in objects:
        kubernetes_validate.validate(manifest, VERSIONS[0], strict=True)


def test_without_a_metrics_token_no_secret_or_scrape_job_is_rendered() -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in render()}
    assert ("Secret", "test-batchhub-metrics") not in kinds
    assert ("ConfigMap", "test-batchhub-prometheus-scrape") not in kinds


def test_a_short_metrics_token_is_refused_by_the_schema() -> None:
    with pytest.raises(helm_python.HelmError) as failure:
        render({"metrics": {"api_token": "short"}})
    assert "api_token" in str(failure.value)
