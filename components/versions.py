"""Every pinned upstream chart, in one table. Versions match ../shared/reference/VERSIONS.md (a test checks)."""

from __future__ import annotations

from dataclasses import dataclass

from vocabulary.namespaces import (
    CERT_MANAGER_NAMESPACE,
    GPU_NAMESPACE,
    KSERVE_NAMESPACE,
    KUBERAY_NAMESPACE,
    KUEUE_NAMESPACE,
    MONITORING_NAMESPACE,
    TRAINER_NAMESPACE,
)
from vocabulary.workloads import KUBERAY_VERSION


@dataclass(frozen=True)
class HelmChart:
    name: str
    version: str
    # An OCI registry (oci://...) or a classic chart repository URL.
    repository: str
    namespace: str

    @property
    def is_oci(self) -> bool:
        return self.repository.startswith("oci://")

    @property
    def chart_ref(self) -> str:
        """The `chart` argument of a Helm release: the full OCI reference, or the name in a classic repo."""
        return f"{self.repository}/{self.name}" if self.is_oci else self.name


KARPENTER_CRD = HelmChart("karpenter-crd", "1.14.1", "oci://public.ecr.aws/karpenter", "kube-system")
KARPENTER = HelmChart("karpenter", "1.14.1", "oci://public.ecr.aws/karpenter", "kube-system")
CLUSTER_AUTOSCALER = HelmChart("cluster-autoscaler", "9.59.0", "https://kubernetes.github.io/autoscaler", "kube-system")
GPU_OPERATOR = HelmChart("gpu-operator", "v26.7.0", "https://helm.ngc.nvidia.com/nvidia", GPU_NAMESPACE)
# GKE only, with gpu.gkeMetrics: dcgm-exporter (elsewhere the GPU Operator runs dcgm-exporter).
DCGM_EXPORTER = HelmChart("dcgm-exporter", "4.8.2", "https://nvidia.github.io/dcgm-exporter/helm-charts", GPU_NAMESPACE)
KUBE_PROMETHEUS_STACK = HelmChart(
    "kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts", MONITORING_NAMESPACE
)
# Job queueing and GPU fair sharing; its CRDs are chart templates, so Helm upgrades them with the chart.
KUEUE = HelmChart("kueue", "0.19.2", "oci://registry.k8s.io/kueue/charts", KUEUE_NAMESPACE)
# The KubeRay operator. Its CRDs sit in the chart's crds/ folder, which Helm installs once and never upgrades: the
# platform applies them itself from the same tag (components/kuberay.py) and installs the chart without them.
KUBERAY_OPERATOR = HelmChart(
    "kuberay-operator", KUBERAY_VERSION, "https://ray-project.github.io/kuberay-helm/", KUBERAY_NAMESPACE
)
KUBERAY_CRD_URL = (
    "https://raw.githubusercontent.com/ray-project/kuberay/v{version}/ray-operator/config/crd/bases/{file}"
)
KUBERAY_CRD_FILES = (
    "ray.io_rayclusters.yaml",
    "ray.io_rayjobs.yaml",
    "ray.io_rayservices.yaml",
    "ray.io_raycronjobs.yaml",
)
# Kubeflow Trainer v2 with its JobSet dependency (jobset 0.12.0 as a subchart); its CRDs are chart templates.
KUBEFLOW_TRAINER = HelmChart("kubeflow-trainer", "2.3.0", "oci://ghcr.io/kubeflow/charts", TRAINER_NAMESPACE)
# The legacy Training Operator v1 (PyTorchJob) has no chart: upstream installs its standalone kustomize overlay.
# kustomize/training-operator/ builds on that overlay at the pinned tag (the repository moved to kubeflow/trainer;
# the v1 tags stayed), and the Kubernetes provider renders it. Its CRDs are plain manifests, so a new pin updates
# them. Bump both together (a test compares them).
TRAINING_OPERATOR_VERSION = "v1.9.4"
TRAINING_OPERATOR_OVERLAY = "https://github.com/kubeflow/trainer//manifests/overlays/standalone?ref={version}"
TRAINING_OPERATOR_KUSTOMIZATION = "kustomize/training-operator"
# KServe's webhook certificates come from cert-manager (its Certificate is always rendered): cert-manager first.
CERT_MANAGER = HelmChart("cert-manager", "v1.21.1", "oci://quay.io/jetstack/charts", CERT_MANAGER_NAMESPACE)
# KServe: its CRDs as their own chart (templates, so upgrades update them), the controller, and the
# ClusterServingRuntimes, installed in that order.
KSERVE_CRD = HelmChart("kserve-crd", "v0.20.0", "oci://ghcr.io/kserve/charts", KSERVE_NAMESPACE)
KSERVE_RESOURCES = HelmChart("kserve-resources", "v0.20.0", "oci://ghcr.io/kserve/charts", KSERVE_NAMESPACE)
KSERVE_RUNTIME_CONFIGS = HelmChart("kserve-runtime-configs", "v0.20.0", "oci://ghcr.io/kserve/charts", KSERVE_NAMESPACE)

# The cluster-autoscaler minor the pinned chart's image runs (values.yaml image.tag); it must match the cluster's.
CLUSTER_AUTOSCALER_APP_MINOR = "1.35"

CHARTS: tuple[HelmChart, ...] = (
    KARPENTER_CRD,
    KARPENTER,
    CLUSTER_AUTOSCALER,
    GPU_OPERATOR,
    DCGM_EXPORTER,
    KUBE_PROMETHEUS_STACK,
    KUEUE,
    KUBERAY_OPERATOR,
    KUBEFLOW_TRAINER,
    CERT_MANAGER,
    KSERVE_CRD,
    KSERVE_RESOURCES,
    KSERVE_RUNTIME_CONFIGS,
)
