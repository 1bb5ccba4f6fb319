"""The "GPU allocation vs use" dashboard, built with grafana-foundation-sdk (Grafana's own dashboards-as-code SDK,
generated from its schemas), shipped as a ConfigMap Grafana's dashboard sidecar loads.

Per namespace: GPUs held by running pods and how busy they are; per pool: GPUs the nodes advertise and GPUs pods
hold; and the pods holding idle GPUs.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, stat, table
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import VariableRefresh, VariableSort
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from components.monitoring.grafana import DATASOURCE, model, query, with_time_series
from components.monitoring.grafana import dashboard_config_map as grafana_config_map

DASHBOARD_UID = "ml-platform-gpu-allocation"
GPU_REQUESTS = 'kube_pod_container_resource_requests{resource=~"nvidia_com_gpu|nvidia_com_mig_.+"}'
GPU_REQUESTS_IN_NAMESPACE = (
    'kube_pod_container_resource_requests{resource=~"nvidia_com_gpu|nvidia_com_mig_.+", namespace=~"$namespace"}'
)
RUNNING = '(kube_pod_status_phase{phase="Running"} == 1)'
POOL_OF_NODE = 'group_left (label_ml_platform_io_pool) kube_node_labels{label_ml_platform_io_pool=~"$pool"}'
# dcgm-exporter labels only the GPUs a pod holds; the others carry the exporter's own pod and namespace.
HELD = f"(sum by (namespace, pod) ({GPU_REQUESTS}) > 0)"
GPU_BUSY = (
    '(avg by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{pod!="", namespace=~"$namespace"}) or avg by (namespace, pod) '
    '(DCGM_FI_PROF_GR_ENGINE_ACTIVE{pod!="", namespace=~"$namespace"} * 100))'
)

# (title, unit, legend, query) of the time series, in order.
PANELS: tuple[tuple[str, str, str, str], ...] = (
    (
        "GPUs held by running pods, by namespace",
        "short",
        "{{namespace}}",
        f"sum by (namespace) ({GPU_REQUESTS_IN_NAMESPACE} * on (namespace, pod) group_left () {RUNNING})",
    ),
    (
        "GPU busy %, by namespace",
        "percent",
        "{{namespace}}",
        f"avg by (namespace) ({GPU_BUSY} and on (namespace, pod) {HELD})",
    ),
    (
        "GPUs advertised by the nodes, by pool",
        "short",
        "{{label_ml_platform_io_pool}}",
        'sum by (label_ml_platform_io_pool) (kube_node_status_allocatable{resource=~"nvidia_com_gpu|'
        f'nvidia_com_mig_.+"}} * on (node) {POOL_OF_NODE})',
    ),
    (
        "GPUs held by pods, by pool",
        "short",
        "{{label_ml_platform_io_pool}}",
        f"sum by (label_ml_platform_io_pool) ({GPU_REQUESTS} * on (node) {POOL_OF_NODE})",
    ),
)
# dcgm-exporter labels only the GPUs a pod holds; the others carry the exporter's own pod and namespace.
HELD = (
    '(sum by (namespace, pod) (kube_pod_container_resource_requests{resource=~"nvidia_com_gpu|nvidia_com_mig_.+"}) > 0)'
)
IDLE_PODS = f"{GPU_BUSY} < 10 and on (namespace, pod) {HELD}"


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard (tests parse them with Grafana's variables filled in)."""
    return [query for *_, query in PANELS] + [IDLE_PODS]


def gpu_allocation_dashboard() -> dict[str, Any]:
    """The dashboard model as Grafana's provisioning reads it."""
    builder = (
        dashboard.Dashboard("GPU allocation vs use")
        .uid(DASHBOARD_UID)
        .tags(["gpu", "ml-platform"])
        .time("now-24h", "now")
        .refresh("1m")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query(f"label_values({GPU_REQUESTS}, namespace)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
        )
        .with_variable(
            dashboard.QueryVariable("pool")
            .label("GPU pool")
            .datasource(DATASOURCE)
            .query('label_values(kube_node_labels{label_ml_platform_io_pool!=""}, label_ml_platform_io_pool)')
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
        )
    )
    builder = with_time_series(builder, PANELS, first_id=1)
    builder = builder.with_panel(
        stat.Panel()
        .id(len(PANELS) + 1)
        .title("Pods holding an idle GPU (busy < 10%)")
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .height(6)
        .span(6)
        .datasource(DATASOURCE)
        .with_target(query(f"count ({IDLE_PODS})").instant())
    )
    builder = builder.with_panel(
        table.Panel()
        .id(len(PANELS) + 2)
        .title("Pods holding an idle GPU")
        .show_header(True)
        .height(6)
        .span(18)
        .datasource(DATASOURCE)
        .with_target(query(IDLE_PODS).instant().format(PromQueryFormat.TABLE))
    )
    return model(builder)


def dashboard_config_map() -> dict[str, Any]:
    return grafana_config_map("ml-platform-gpu-allocation-dashboard", "gpu-allocation.json", gpu_allocation_dashboard())
