"""Monitoring: kube-prometheus-stack with our Grafana secret and dashboards, and GPU alerts whose expressions parse
as PromQL and name only metrics the pinned exporters export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from components.config.monitoring import AlertsConfig
from components.gpu.dcgm import DCGM_METRIC_NAMES
from components.monitoring.alerts import gpu_alerts
from components.monitoring.dashboards import dashboard_queries, gpu_allocation_dashboard
from components.monitoring.prometheus_stack import NODE_LABELS_EXPOSED
from conftest import STACKS, plan_of
from tools.offline import PROJECT_DIR, redact

# kube-state-metrics v2.20.0 (kube-prometheus-stack 88.5.3's subchart 8.4.0): docs/metrics/workload/pod-metrics.md
# and docs/metrics/cluster/node-metrics.md list these.
KUBE_STATE_METRICS = frozenset(
    {
        "kube_pod_container_resource_requests",
        "kube_pod_status_phase",
        "kube_pod_status_ready",
        "kube_pod_info",
        "kube_node_status_condition",
        "kube_node_labels",
        "kube_node_created",
        "kube_node_status_allocatable",
    }
)
EXPORTED = DCGM_METRIC_NAMES | KUBE_STATE_METRICS
RUNBOOKS = (PROJECT_DIR / "docs" / "monitoring.md").read_text()
RELEASE = "kubernetes:helm.sh/v3:Release"


def metric_names(expression: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"select metrics by name, not by a {{__name__}} matcher: {expression}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expression), pre_visit=visit)
    return names


def test_the_metric_finder_sees_every_selector() -> None:
    assert metric_names("rate(a[5m]) / on (x) group_left () (b or max(c)) > 1") == {"a", "b", "c"}
    with pytest.raises(ValueError):
        promql_parser.parse("avg by (pod) (DCGM_FI_DEV_GPU_UTIL")


ALERTS = [a for cloud in ("aws", "gcp", "existing") for a in gpu_alerts(AlertsConfig(), cloud)]  # type: ignore[arg-type]


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a.name)
def test_alert_expressions_parse_and_name_exported_metrics(alert: Any) -> None:
    assert metric_names(alert.expr) <= EXPORTED, alert.name


def test_the_issue_asks_for_these_alerts_and_each_has_a_runbook() -> None:
    names = {a.name for a in ALERTS}
    assert names == {
        "GpuAllocatedButIdle",
        "GpuXidError",
        "GpuMemoryNearlyFull",
        "GpuThermalThrottling",
        "GpuPowerThrottling",
        "GpuPodPending",
        "GpuNodeNotReady",
        "GpuNodeWithoutGpus",
        "MigReconfigurationFailed",
        "GpuDevicePluginNotReady",
    }
    for name in names:
        assert re.search(rf"^### {name}$", RUNBOOKS, re.MULTILINE), f"docs/monitoring.md has no runbook for {name}"


def test_alerts_join_on_node_labels_kube_state_metrics_exposes() -> None:
    exposed = {"label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label) for label in NODE_LABELS_EXPOSED}
    used = {m for a in ALERTS for m in re.findall(r"label_[a-z0-9_]+", a.expr)}
    assert used and used <= exposed


def test_alert_thresholds_come_from_the_stack() -> None:
    [idle] = [
        a
        for a in gpu_alerts(AlertsConfig(idleGpuUtilization=25, idleFor="2h"), "aws")
        if a.name == "GpuAllocatedButIdle"
    ]
    assert ") < 25 and on (namespace, pod)" in idle.expr and idle.for_ == "2h"


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_gets_monitoring_the_alerts_and_the_dashboards(stack: str) -> None:
    plan = plan_of(stack)
    [release] = [r for r in plan.of_type(RELEASE) if r.inputs["name"] == "kube-prometheus-stack"]
    values = redact(release.inputs["values"])
    grafana = values["grafana"]
    # No default admin password: Grafana reads ours from a Secret, generated and kept as a Pulumi secret.
    assert "adminPassword" not in grafana and grafana["admin"]["existingSecret"] == "grafana-admin"
    [secret] = [r for r in plan.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == "grafana-admin"]
    assert redact(secret.inputs)["stringData"]["admin-password"] == "[secret]"
    assert plan.of_type("random:index/randomPassword:RandomPassword")
    # NVIDIA's dashboard by grafana.com id and revision, not a copy.
    assert grafana["dashboards"]["gpu"]["nvidia-dcgm-exporter"]["gnetId"] == 12239
    assert values["prometheus"]["prometheusSpec"]["ruleSelectorNilUsesHelmValues"] is False
    rules = plan.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert {r.inputs["metadata"]["name"] for r in rules} == {"ml-platform-gpu", "ml-platform-showback"}
    assert all(release.urn in rule.dependencies for rule in rules)
    dashboards = [
        r for r in plan.of_type("kubernetes:core/v1:ConfigMap") if "grafana_dashboard" in r.inputs["metadata"]["labels"]
    ]
    uids = {json.loads(next(iter(d.inputs["data"].values())))["uid"] for d in dashboards}
    assert uids == {"ml-platform-gpu-allocation", "ml-platform-gpu-showback"}


def test_retention_and_storage_come_from_the_stack(tmp_path: Path) -> None:
    from conftest import plan_variant

    plan = plan_variant(
        tmp_path,
        "dev",
        lambda c: c.update({"ml-platform:monitoring": {"prometheus": {"retention": "30d", "storageGiB": 200}}}),
    )
    [release] = [r for r in plan.of_type(RELEASE) if r.inputs["name"] == "kube-prometheus-stack"]
    spec = redact(release.inputs["values"])["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "200Gi"


def test_the_allocation_dashboard_is_generated_and_its_queries_parse() -> None:
    model = gpu_allocation_dashboard()
    assert {"namespace", "pool", "datasource"} <= {v["name"] for v in model["templating"]["list"]}
    assert len(model["panels"]) == 6 and all(p["datasource"]["uid"] == "${datasource}" for p in model["panels"])
    for query in dashboard_queries():
        # Grafana fills the variables in before Prometheus sees the query.
        assert metric_names(query.replace("$namespace", ".*").replace("$pool", ".*")) <= EXPORTED


# kube-state-metrics v2.20.0 docs/metrics/cluster/namespace-metrics.md; Kueue v0.19.2 pkg/metrics/metrics.go
# (Subsystem "kueue"); and the showback recording rules themselves.
SHOWBACK_METRICS = frozenset(
    {
        "kube_namespace_labels",
        "kueue_cluster_queue_resource_usage",
        "kueue_pending_workloads",
        "team_resource:gpu_requests:sum",
        "team:gpu_utilization:avg",
    }
)


def test_showback_rules_and_dashboard_parse_and_name_exported_metrics() -> None:
    from components.monitoring.showback import RECORDING_RULES, showback_dashboard, showback_queries

    for query in showback_queries():
        # Grafana fills $__range in before Prometheus sees the query.
        assert metric_names(query.replace("$__range", "30d")) <= EXPORTED | SHOWBACK_METRICS, query
    model = showback_dashboard()
    assert len(model["panels"]) == 5 and all(p["datasource"]["uid"] == "${datasource}" for p in model["panels"])
    # every series is joined to the namespace's team label, which kube-state-metrics must expose
    for _, expr in RECORDING_RULES:
        assert "label_ml_platform_io_team" in expr and "by (team" in expr


def test_the_team_label_of_namespaces_reaches_prometheus(stack: str) -> None:
    plan = plan_of(stack)
    [chart] = [r for r in plan.of_type(RELEASE) if r.inputs["name"] == "kube-prometheus-stack"]
    allow = chart.inputs["values"]["kube-state-metrics"]["metricLabelsAllowlist"]
    assert "namespaces=[ml-platform.io/team]" in allow
    rules = [
        r.inputs for r in plan.registrations if isinstance(r.inputs, dict) and r.inputs.get("kind") == "PrometheusRule"
    ]
    showback = next(r for r in rules if r["metadata"]["name"] == "ml-platform-showback")
    assert [rule["record"] for rule in showback["spec"]["groups"][0]["rules"]] == [
        "team_resource:gpu_requests:sum",
        "team:gpu_utilization:avg",
    ]
    maps = [r.inputs for r in plan.registrations if r.name == "configmap-monitoring/ml-platform-gpu-showback-dashboard"]
    assert maps and maps[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
