"""The standalone dcgm-exporter chart, for GKE with `gpu.gkeMetrics: dcgm-exporter`: GKE installs the driver and
device plugin, this exports DCGM metrics to the in-cluster Prometheus (the managed collection sends them to
Google Cloud Managed Service for Prometheus instead)."""

from __future__ import annotations

from typing import Any

from components.gpu.dcgm import dcgm_metrics_csv
from vocabulary.labels import GPU_TAINT_KEY, MANAGED_BY

# GKE installs the NVIDIA driver under /home/kubernetes/bin/nvidia on the host (GKE's docs for a self-managed
# DCGM exporter mount it and point the loader at its libraries).
GKE_DRIVER_DIR = "/home/kubernetes/bin/nvidia"
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"


def dcgm_exporter_values() -> dict[str, Any]:
    return {
        # Our fields instead of the chart's default-counters.csv (the chart mounts this ConfigMap in its place).
        "customMetrics": dcgm_metrics_csv(),
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": GKE_ACCELERATOR_LABEL, "operator": "Exists"}]}]
                }
            }
        },
        "extraHostVolumes": [{"name": "nvidia-install-dir-host", "hostPath": GKE_DRIVER_DIR}],
        "extraVolumeMounts": [
            {
                "name": "exporter-metrics-volume",
                "mountPath": "/etc/dcgm-exporter/default-counters.csv",
                "subPath": "default-counters.csv",
            },
            {"name": "nvidia-install-dir-host", "mountPath": "/usr/local/nvidia", "readOnly": True},
        ],
        "extraEnv": [{"name": "LD_LIBRARY_PATH", "value": "/usr/local/nvidia/lib64"}],
        # Keep the GPU's pod, namespace and container (which workload uses it), not the exporter pod's own.
        "serviceMonitor": {"enabled": True, "honorLabels": True, "additionalLabels": dict(MANAGED_BY)},
    }
