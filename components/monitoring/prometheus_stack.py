"""kube-prometheus-stack's values: Prometheus (retention, storage, selecting every ServiceMonitor and rule, not only
the chart's own), Alertmanager, Grafana (admin from our Secret, NVIDIA's DCGM dashboard by grafana.com id), and
kube-state-metrics exposing the node labels the GPU alerts join on. Everything runs on system nodes."""

from __future__ import annotations

from typing import Any

from components.config.monitoring import MonitoringConfig
from vocabulary.labels import LABEL_GPU, LABEL_POOL, LABEL_TEAM, NVIDIA_MIG_CONFIG_STATE_LABEL, SYSTEM_NODE_SELECTOR

SYSTEM_NODES = SYSTEM_NODE_SELECTOR
GRAFANA_ADMIN_SECRET = "grafana-admin"
# The datasource kube-prometheus-stack provisions for Grafana.
PROMETHEUS_DATASOURCE = "Prometheus"
# NVIDIA's DCGM exporter dashboard on grafana.com (the one the dcgm-exporter repository publishes).
DCGM_DASHBOARD_ID, DCGM_DASHBOARD_REVISION = 12239, 2
GPU_DASHBOARD_FOLDER = "GPU"
# Node labels kube-state-metrics exposes on kube_node_labels (as label_<name with _>): the alerts find GPU nodes
# and failed MIG reconfigurations by them.
NODE_LABELS_EXPOSED = (LABEL_POOL, LABEL_GPU, NVIDIA_MIG_CONFIG_STATE_LABEL)
MANAGED_CONTROL_PLANE = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")


def grafana_values() -> dict[str, Any]:
    return {
        "nodeSelector": SYSTEM_NODES,
        # No default password: a generated one in our Secret (components/monitoring/layer.py).
        "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
        "dashboardProviders": {
            "dashboardproviders.yaml": {
                "apiVersion": 1,
                "providers": [
                    {
                        "name": "gpu",
                        "orgId": 1,
                        "folder": GPU_DASHBOARD_FOLDER,
                        "type": "file",
                        "disableDeletion": True,
                        "editable": False,
                        "options": {"path": "/var/lib/grafana/dashboards/gpu"},
                    }
                ],
            }
        },
        # Downloaded from grafana.com by id and revision when Grafana starts, not copied into this repository.
        "dashboards": {
            "gpu": {
                "nvidia-dcgm-exporter": {
                    "gnetId": DCGM_DASHBOARD_ID,
                    "revision": DCGM_DASHBOARD_REVISION,
                    "datasource": [{"name": "DS_PROMETHEUS", "value": PROMETHEUS_DATASOURCE}],
                }
            }
        },
    }


def prometheus_stack_values(section: MonitoringConfig, cloud: str) -> dict[str, Any]:
    """Helm values of kube-prometheus-stack (key paths exist in the pinned chart or, for Grafana, its 12.11.1
    subchart; tests check)."""
    prometheus = section.prometheus
    # EKS and GKE run the control plane out of reach (and kube-proxy's metrics listen on localhost): monitors for
    # them would only raise "down" alerts from day one.
    managed = {name: {"enabled": False} for name in MANAGED_CONTROL_PLANE} if cloud in ("aws", "gcp") else {}
    return {
        **managed,
        "crds": {"enabled": True},
        "prometheus": {
            "prometheusSpec": {
                "retention": prometheus.retention,
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": f"{prometheus.storage_gib}Gi"}},
                        }
                    }
                },
                "nodeSelector": SYSTEM_NODES,
                # Select every ServiceMonitor, PodMonitor and rule in the cluster (the GPU Operator's dcgm-exporter
                # monitor and our alerts carry no `release` label).
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
            }
        },
        "alertmanager": {"alertmanagerSpec": {"nodeSelector": SYSTEM_NODES}},
        "prometheusOperator": {
            "nodeSelector": SYSTEM_NODES,
            "admissionWebhooks": {"patch": {"nodeSelector": SYSTEM_NODES}},
        },
        "kube-state-metrics": {
            "nodeSelector": SYSTEM_NODES,
            # Node labels for the GPU alerts; the namespaces' team label for showback (monitoring/showback.py).
            "metricLabelsAllowlist": [f"nodes=[{','.join(NODE_LABELS_EXPOSED)}]", f"namespaces=[{LABEL_TEAM}]"],
        },
        "grafana": grafana_values(),
    }
