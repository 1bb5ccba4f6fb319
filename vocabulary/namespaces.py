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
# The legacy Kubeflow Training Operator v1 (PyTorchJob): its standalone manifests fix this namespace.
TRAINING_OPERATOR_NAMESPACE = "kubeflow"
# cert-manager (KServe's webhook certificates) and KServe's controller, as upstream installs them.
CERT_MANAGER_NAMESPACE = "cert-manager"
KSERVE_NAMESPACE = "kserve"
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
    TRAINING_OPERATOR_NAMESPACE,
    CERT_MANAGER_NAMESPACE,
    KSERVE_NAMESPACE,
)
