"""The GPU alerts, one PrometheusRule. Each alert has a runbook section in docs/monitoring.md (its anchor is the
alert name in lower case); tests parse every expression with a PromQL parser and check that it names only metrics
the pinned exporters export (DCGM fields of components/gpu/dcgm.py, kube-state-metrics)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.config.base import Cloud
from components.config.monitoring import AlertsConfig
from vocabulary.labels import MANAGED_BY
from vocabulary.namespaces import GPU_NAMESPACE, MONITORING_NAMESPACE

RUNBOOKS = "docs/monitoring.md"
# kube-state-metrics spells resource names with '_' (nvidia.com/mig-1g.10gb -> nvidia_com_mig_1g_10gb).
GPU_RESOURCES = 'resource=~"nvidia_com_gpu|nvidia_com_mig_.+"'
# A GPU node: one with the pool label (kube-state-metrics exposes it, components/monitoring/prometheus_stack.py).
GPU_NODE = 'kube_node_labels{label_ml_platform_io_pool!=""}'
# A node the MIG manager is partitioning (its device plugin is paused, or it reboots): not a fault yet.
MIG_IN_PROGRESS = 'kube_node_labels{label_nvidia_com_mig_config_state=~"pending|rebooting"}'
# Pods that hold GPUs. dcgm-exporter labels only the GPUs a pod holds; with honorLabels Prometheus fills the others'
# pod and namespace with the exporter's own, so "held by a pod" must come from kube-state-metrics.
GPU_PODS = f"(sum by (namespace, pod) (kube_pod_container_resource_requests{{{GPU_RESOURCES}}}) > 0)"
# Where each cloud runs the device plugin as a pod (Bottlerocket runs it on the host: see GpuNodeWithoutGpus).
DEVICE_PLUGIN_PODS = {
    "aws": (GPU_NAMESPACE, "nvidia-device-plugin-daemonset-.+"),
    "existing": (GPU_NAMESPACE, "nvidia-device-plugin-daemonset-.+"),
    "gcp": ("kube-system", "nvidia-gpu-device-plugin-.+"),
}


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str

    def rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ != "0m":
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity}
        rule["annotations"] = {"summary": self.summary, "runbook": f"{RUNBOOKS}#{self.name.lower()}"}
        return rule


def gpu_alerts(section: AlertsConfig, cloud: Cloud) -> tuple[Alert, ...]:
    plugin_namespace, plugin_pods = DEVICE_PLUGIN_PODS[cloud]
    idle = section.idle_gpu_utilization
    return (
        Alert(
            "GpuAllocatedButIdle",
            # GPU_UTIL is not reported for MIG instances; the graphics-engine activity ratio is.
            f'(avg by (namespace, pod, container) (DCGM_FI_DEV_GPU_UTIL{{pod!=""}}) or avg by (namespace, pod, '
            f'container) (DCGM_FI_PROF_GR_ENGINE_ACTIVE{{pod!=""}} * 100)) < {idle} and on (namespace, pod) {GPU_PODS}',
            section.idle_for,
            "warning",
            f"{{{{ $labels.namespace }}}}/{{{{ $labels.pod }}}} holds a GPU it has used less than {idle}% for "
            f"{section.idle_for}",
        ),
        Alert(
            "GpuXidError",
            # The field keeps the last XID until the exporter restarts: alert on a new one.
            "changes(DCGM_FI_DEV_XID_ERRORS[10m]) > 0 and DCGM_FI_DEV_XID_ERRORS > 0",
            "0m",
            "critical",
            "GPU {{ $labels.gpu }} on {{ $labels.instance }} reported XID {{ $value }}",
        ),
        Alert(
            "GpuMemoryNearlyFull",
            f"DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) * 100 > {section.gpu_memory_full}",
            "15m",
            "warning",
            f"GPU memory of {{{{ $labels.namespace }}}}/{{{{ $labels.pod }}}} is over {section.gpu_memory_full}% full",
        ),
        Alert(
            "GpuThermalThrottling",
            "rate(DCGM_FI_DEV_THERMAL_VIOLATION[5m]) / 1e9 > 0.1",
            "10m",
            "warning",
            "GPU {{ $labels.gpu }} on {{ $labels.instance }} is throttled for heat over 10% of the time",
        ),
        Alert(
            "GpuPowerThrottling",
            "rate(DCGM_FI_DEV_POWER_VIOLATION[5m]) / 1e9 > 0.1",
            "10m",
            "warning",
            "GPU {{ $labels.gpu }} on {{ $labels.instance }} is held at its power cap over 10% of the time",
        ),
        Alert(
            "GpuPodPending",
            f"(sum by (namespace, pod) (kube_pod_container_resource_requests{{{GPU_RESOURCES}}}) > 0) "
            'and on (namespace, pod) (kube_pod_status_phase{phase="Pending"} == 1)',
            section.pending_for,
            "warning",
            f"GPU pod {{{{ $labels.namespace }}}}/{{{{ $labels.pod }}}} is Pending for over {section.pending_for}",
        ),
        Alert(
            "GpuNodeNotReady",
            f'kube_node_status_condition{{condition="Ready", status="true"}} == 0 and on (node) {GPU_NODE} '
            f"unless on (node) {MIG_IN_PROGRESS}",
            "5m",
            "critical",
            "GPU node {{ $labels.node }} is not Ready",
        ),
        Alert(
            "GpuNodeWithoutGpus",
            # Launched, running for 15 minutes, and still advertising no GPUs: no device plugin serves it (or its
            # driver failed). Karpenter keeps such a node until it expires, at GPU prices.
            f"((time() - kube_node_created) > 900) and on (node) {GPU_NODE} "
            f"unless on (node) (kube_node_status_allocatable{{{GPU_RESOURCES}}} > 0) "
            f"unless on (node) {MIG_IN_PROGRESS}",
            "5m",
            "critical",
            "GPU node {{ $labels.node }} has run for 15 minutes without advertising any GPU",
        ),
        Alert(
            "MigReconfigurationFailed",
            'kube_node_labels{label_nvidia_com_mig_config_state="failed"}',
            "5m",
            "critical",
            "The MIG manager could not apply the MIG layout on {{ $labels.node }}",
        ),
        Alert(
            "GpuDevicePluginNotReady",
            f'(kube_pod_status_ready{{namespace="{plugin_namespace}", condition="true", pod=~"{plugin_pods}"}} '
            "== 0) * on (namespace, pod) group_left (node) kube_pod_info",
            "10m",
            "critical",
            "The NVIDIA device plugin on {{ $labels.node }} is not ready: its GPUs cannot be scheduled",
        ),
    )


def gpu_alert_rule(section: AlertsConfig, cloud: Cloud) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "ml-platform-gpu", "namespace": MONITORING_NAMESPACE, "labels": dict(MANAGED_BY)},
        "spec": {"groups": [{"name": "ml-platform-gpu", "rules": [a.rule() for a in gpu_alerts(section, cloud)]}]},
    }
