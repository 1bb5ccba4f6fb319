"""GPU showback by team: recording rules that put the namespace's team label on GPU allocation and on the DCGM
utilisation of the pods, and a Grafana dashboard of GPU-hours, GPU use and Kueue queueing per team.

kube-state-metrics exposes the namespaces' `ml-platform.io/team` label (components/monitoring/prometheus_stack.py)
as `kube_namespace_labels{label_ml_platform_io_team}`; every series below is joined to it on `namespace`, so a pod
in a team's namespace counts for that team wherever it runs. Kueue names each team's ClusterQueue after the team.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard, table
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from components.monitoring.grafana import DATASOURCE, dashboard_config_map, model, query, with_time_series
from vocabulary.labels import MANAGED_BY
from vocabulary.namespaces import MONITORING_NAMESPACE

SHOWBACK_UID = "ml-platform-gpu-showback"
# A namespace's team, as a `team` label to join on (kube-state-metrics: label_<name with _>).
TEAM_OF_NAMESPACE = (
    'label_replace(kube_namespace_labels{label_ml_platform_io_team!=""}, "team", "$1", '
    '"label_ml_platform_io_team", "(.+)")'
)
GPU_RESOURCES = 'resource=~"nvidia_com_gpu|nvidia_com_mig_.+"'
RUNNING = '(kube_pod_status_phase{phase="Running"} == 1)'
# Kueue's follower replicas export the same queue gauges (replica_role="follower"): count the leader's only.
KUEUE_LEADER = 'replica_role="leader"'

# (record, expression): GPUs held by the team's running pods, per resource; how busy the GPUs its pods hold are
# (DCGM, per pod, then averaged over the team).
RECORDING_RULES: tuple[tuple[str, str], ...] = (
    (
        "team_resource:gpu_requests:sum",
        f"sum by (team, resource) (kube_pod_container_resource_requests{{{GPU_RESOURCES}}} "
        f"* on (namespace, pod) group_left () {RUNNING} * on (namespace) group_left (team) {TEAM_OF_NAMESPACE})",
    ),
    (
        "team:gpu_utilization:avg",
        '(avg by (team) ((avg by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{pod!=""}) or avg by (namespace, pod) '
        '(DCGM_FI_PROF_GR_ENGINE_ACTIVE{pod!=""} * 100)) '
        f"* on (namespace) group_left (team) {TEAM_OF_NAMESPACE}))",
    ),
)

# GPU-hours over the dashboard's range: the GPUs held, sampled every minute, summed, in hours.
GPU_HOURS = "sum by (team, resource) (sum_over_time(team_resource:gpu_requests:sum[$__range:1m])) / 60"
# (title, unit, legend, query) of the time series.
PANELS: tuple[tuple[str, str, str, str], ...] = (
    ("GPUs held by team", "short", "{{team}} {{resource}}", "sum by (team, resource) (team_resource:gpu_requests:sum)"),
    ("GPU busy % by team (DCGM)", "percent", "{{team}}", "team:gpu_utilization:avg"),
    (
        "Kueue: GPUs admitted per team's ClusterQueue",
        "short",
        "{{cluster_queue}} {{flavor}}",
        'sum by (cluster_queue, flavor) (kueue_cluster_queue_resource_usage{resource=~"nvidia.com/.+", '
        f"{KUEUE_LEADER}}})",
    ),
    (
        "Kueue: jobs waiting per team's ClusterQueue",
        "short",
        "{{cluster_queue}} {{status}}",
        f"sum by (cluster_queue, status) (kueue_pending_workloads{{{KUEUE_LEADER}}})",
    ),
)


def showback_queries() -> list[str]:
    """Every PromQL expression of the dashboard and the rules (tests parse them)."""
    return [GPU_HOURS] + [query for *_, query in PANELS] + [expr for _, expr in RECORDING_RULES]


def showback_rule() -> dict[str, Any]:
    rules = [{"record": record, "expr": expr} for record, expr in RECORDING_RULES]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "ml-platform-showback", "namespace": MONITORING_NAMESPACE, "labels": dict(MANAGED_BY)},
        "spec": {"groups": [{"name": "ml-platform-showback", "interval": "1m", "rules": rules}]},
    }


def showback_dashboard() -> dict[str, Any]:
    builder = (
        dashboard.Dashboard("GPU showback by team")
        .uid(SHOWBACK_UID)
        .tags(["gpu", "ml-platform", "showback"])
        .time("now-30d", "now")
        .refresh("5m")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_panel(
            table.Panel()
            .id(1)
            .title("GPU-hours by team and resource (dashboard time range)")
            .show_header(True)
            .height(8)
            .span(24)
            .datasource(DATASOURCE)
            .with_target(query(GPU_HOURS).instant().format(PromQueryFormat.TABLE))
        )
    )
    builder = with_time_series(builder, PANELS, first_id=2)
    return model(builder)


def showback_config_map() -> dict[str, Any]:
    return dashboard_config_map("ml-platform-gpu-showback-dashboard", "gpu-showback.json", showback_dashboard())
