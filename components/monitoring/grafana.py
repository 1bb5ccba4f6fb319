"""What the platform's Grafana dashboards share: the data source variable, queries, the time-series panel, the
JSON model and the ConfigMap Grafana's sidecar loads."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from vocabulary.labels import MANAGED_BY
from vocabulary.namespaces import MONITORING_NAMESPACE

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


def query(expr: str, legend: str = "") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id("A").datasource(DATASOURCE)


def with_time_series(
    builder: dashboard.Dashboard, panels: tuple[tuple[str, str, str, str], ...], first_id: int
) -> dashboard.Dashboard:
    """(title, unit, legend, query) as half-width time series from 0, with a table legend."""
    legend = common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE).show_legend(True)
    for panel_id, (title, unit, legend_format, expr) in enumerate(panels, start=first_id):
        builder = builder.with_panel(
            timeseries.Panel()
            .id(panel_id)
            .title(title)
            .unit(unit)
            .min(0)
            .height(8)
            .span(12)
            .datasource(DATASOURCE)
            .legend(legend)
            .with_target(query(expr, legend_format))
        )
    return builder


def model(builder: dashboard.Dashboard) -> dict[str, Any]:
    """The dashboard model as Grafana's provisioning reads it."""
    built: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return built


def dashboard_config_map(name: str, file: str, dashboard_model: dict[str, Any]) -> dict[str, Any]:
    """Grafana's sidecar loads every ConfigMap labelled grafana_dashboard=1 (kube-prometheus-stack's setting)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": MONITORING_NAMESPACE,
            "labels": {**MANAGED_BY, "grafana_dashboard": "1"},
        },
        "data": {file: json.dumps(dashboard_model, indent=2, sort_keys=True)},
    }
