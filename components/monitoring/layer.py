"""`Monitoring` (`ml-platform:monitoring`): kube-prometheus-stack (Prometheus, Alertmanager, Grafana,
kube-state-metrics, node-exporter and the Prometheus operator's CRDs), Grafana's admin credentials as a generated
secret, the GPU dashboards (allocation vs use, showback by team), the GPU alerts and the showback recording rules.

It provides the Prometheus operator's CRDs to later layers (`PROMETHEUS_CRDS`): the GPU stack's ServiceMonitor and
every PrometheusRule wait for them.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_random as random

from components.config.monitoring import MonitoringConfig
from components.kube import helm_release, register
from components.layer import PROMETHEUS_CRDS, Layer
from components.monitoring.alerts import gpu_alert_rule
from components.monitoring.dashboards import dashboard_config_map
from components.monitoring.prometheus_stack import GRAFANA_ADMIN_SECRET, prometheus_stack_values
from components.monitoring.showback import showback_config_map, showback_rule
from components.versions import KUBE_PROMETHEUS_STACK
from vocabulary.labels import MANAGED_BY
from vocabulary.namespaces import MONITORING_NAMESPACE


def monitoring_namespace() -> dict[str, Any]:
    # node-exporter reads the host (hostNetwork, hostPID, host paths): privileged, like the chart expects.
    labels = {**MANAGED_BY, "pod-security.kubernetes.io/enforce": "privileged"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MONITORING_NAMESPACE, "labels": labels}}


def grafana_admin_secret(password: pulumi.Input[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": GRAFANA_ADMIN_SECRET, "namespace": MONITORING_NAMESPACE, "labels": dict(MANAGED_BY)},
        "type": "Opaque",
        "stringData": {"admin-user": "admin", "admin-password": password},
    }


class Monitoring(Layer[MonitoringConfig]):
    TYPE = "ml-platform:monitoring:Monitoring"

    def build(self) -> dict[str, Any]:
        namespace = register(monitoring_namespace(), self.in_cluster())
        # Kept in the stack's state (encrypted); `pulumi stack output`-free: read it from the Secret.
        password = random.RandomPassword(
            "grafana-admin", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        secret = register(grafana_admin_secret(pulumi.Output.secret(password.result)), self.in_cluster(namespace))
        stack = helm_release(
            KUBE_PROMETHEUS_STACK.name,
            KUBE_PROMETHEUS_STACK,
            prometheus_stack_values(self.section, self.handle.cloud),
            self.in_cluster(namespace, secret),
            create_namespace=False,  # ours, with its Pod Security labels
        )
        self.handle.provide(PROMETHEUS_CRDS, stack)
        register(dashboard_config_map(), self.in_cluster(namespace))
        register(showback_config_map(), self.in_cluster(namespace))
        register(gpu_alert_rule(self.section.alerts, self.handle.cloud), self.in_cluster(stack))
        register(showback_rule(), self.in_cluster(stack))
        return {"chart": KUBE_PROMETHEUS_STACK.name}
