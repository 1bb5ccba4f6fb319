"""The standalone dcgm-exporter chart, where the GPU Operator does not export DCGM metrics:

- GKE with `gpu.gkeMetrics: dcgm-exporter`: GKE installs the driver and device plugin; this exports DCGM metrics to
  the in-cluster Prometheus (GKE's managed collection sends them to Managed Service for Prometheus instead);
- EKS nodes Karpenter launches on Bottlerocket, which the GPU Operator leaves alone (their host runs its own
  device plugin).
"""

from __future__ import annotations

from typing import Any, Literal

from components.gpu.dcgm import dcgm_metrics_csv
from vocabulary.labels import GPU_TAINT_KEY, MANAGED_BY, NVIDIA_DEPLOY_LABEL

# GKE installs the NVIDIA driver under /home/kubernetes/bin/nvidia on the host (GKE's docs for a self-managed
# DCGM exporter mount it and point the loader at its libraries).
GKE_DRIVER_DIR = "/home/kubernetes/bin/nvidia"
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
# The nodes the GPU Operator leaves alone: Karpenter's Bottlerocket GPU nodes (components/gpu_pools.py).
OPERANDS_OFF = {f"{NVIDIA_DEPLOY_LABEL}.operands": "false"}
Target = Literal["gke", "bottlerocket"]


def _common() -> dict[str, Any]:
    return {
        # Our fields instead of the chart's default-counters.csv (the chart mounts this ConfigMap in its place).
        "customMetrics": dcgm_metrics_csv(),
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        # Keep the GPU's pod, namespace and container (which workload uses it), not the exporter pod's own.
        "serviceMonitor": {"enabled": True, "honorLabels": True, "additionalLabels": dict(MANAGED_BY)},
    }


def gke_values() -> dict[str, Any]:
    metrics_mount = {
        "name": "exporter-metrics-volume",
        "mountPath": "/etc/dcgm-exporter/default-counters.csv",
        "subPath": "default-counters.csv",
    }
    return {
        **_common(),
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": GKE_ACCELERATOR_LABEL, "operator": "Exists"}]}]
                }
            }
        },
        # On COS only pods that request GPUs get /dev/nvidia*: the exporter must see every device.
        "securityContext": {"privileged": True},
        "extraHostVolumes": [{"name": "nvidia-install-dir-host", "hostPath": GKE_DRIVER_DIR}],
        "extraVolumeMounts": [
            metrics_mount,
            {"name": "nvidia-install-dir-host", "mountPath": "/usr/local/nvidia", "readOnly": True},
        ],
        "extraEnv": [
            {"name": "LD_LIBRARY_PATH", "value": "/usr/local/nvidia/lib64"},
            # GKE's device plugin names GPUs by device, not UUID: map pods to GPUs the same way.
            {"name": "DCGM_EXPORTER_KUBERNETES_GPU_ID_TYPE", "value": "device-name"},
        ],
    }


def bottlerocket_values() -> dict[str, Any]:
    # Bottlerocket's containerd runs containers with the NVIDIA runtime, which gives the exporter (whose image sets
    # NVIDIA_VISIBLE_DEVICES=all) every GPU; its device plugin names GPUs by UUID, the exporter's default.
    return {**_common(), "nodeSelector": dict(OPERANDS_OFF)}


def dcgm_exporter_values(target: Target) -> dict[str, Any]:
    return gke_values() if target == "gke" else bottlerocket_values()
