"""Namespaces with a fixed meaning: the platform's own and Kubernetes' system namespaces."""

from __future__ import annotations

PLATFORM_NAMESPACE = "ml-platform-system"
# The NVIDIA GPU stack (GPU Operator; on GKE the standalone dcgm-exporter): its validator pods request GPUs without
# /dev/shm, and its operands are privileged.
GPU_NAMESPACE = "gpu-operator"
# kube-prometheus-stack: Prometheus, Alertmanager, Grafana, kube-state-metrics, node-exporter.
MONITORING_NAMESPACE = "monitoring"
# Kueue's controller (the job queueing and GPU fair-sharing layer).
KUEUE_NAMESPACE = "kueue-system"
# The KubeRay operator (RayCluster, RayJob, RayService).
KUBERAY_NAMESPACE = "kuberay-system"
# Kubeflow Trainer (TrainJob) and JobSet, as upstream installs them.
TRAINER_NAMESPACE = "kubeflow-system"
KUBERNETES_SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
# Never a team's namespace, never checked by the admission policies.
PLATFORM_OWNED_NAMESPACES = (
    *KUBERNETES_SYSTEM_NAMESPACES,
    PLATFORM_NAMESPACE,
    GPU_NAMESPACE,
    MONITORING_NAMESPACE,
    KUEUE_NAMESPACE,
    KUBERAY_NAMESPACE,
    TRAINER_NAMESPACE,
)
