"""`Kueue` (`ml-platform:kueue`): job queueing and GPU fair sharing between the teams.

The pinned Kueue chart (its CRDs are chart templates, so upgrades update them), with the integrations the
platform's workloads use, then the ResourceFlavors and WorkloadPriorityClasses (components/queueing.py). The teams'
ClusterQueues and LocalQueues come with their namespaces (components/teams.py) and wait for this layer.
"""

from __future__ import annotations

from typing import Any

import yaml

from components.config.kueue import KueueConfig
from components.kube import helm_release, register, register_all
from components.layer import KUEUE_QUEUES, PROMETHEUS_CRDS, Layer
from components.queueing import resource_flavors, workload_priority_classes
from components.versions import KUEUE
from vocabulary.labels import MANAGED_BY, SYSTEM_NODE_SELECTOR
from vocabulary.namespaces import KUEUE_NAMESPACE

# The job kinds the platform runs (batch Jobs, JobSets, Kubeflow Trainer's TrainJobs, Ray, legacy PyTorchJobs);
# the chart leaves kubeflow.org/pytorchjob off. Pods, Deployments and StatefulSets (serving) are not queued.
FRAMEWORKS = (
    "batch/job",
    "jobset.x-k8s.io/jobset",
    "trainer.kubeflow.org/trainjob",
    "ray.io/rayjob",
    "ray.io/raycluster",
    "kubeflow.org/pytorchjob",
)


def manager_configuration() -> dict[str, Any]:
    """Kueue's Configuration. The chart takes it as one string, so it is the chart's default file (same settings)
    with the platform's integrations and per-ClusterQueue resource metrics (showback)."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "health": {"healthProbeBindAddress": ":8081"},
        "metrics": {"bindAddress": ":8443", "enableClusterQueueResources": True},
        "webhook": {"port": 9443},
        "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
        "controller": {
            "groupKindConcurrency": {
                "Job.batch": 5,
                "Pod": 5,
                "Workload.kueue.x-k8s.io": 10,
                "LocalQueue.kueue.x-k8s.io": 5,
                "ClusterQueue.kueue.x-k8s.io": 5,
                "ResourceFlavor.kueue.x-k8s.io": 1,
            }
        },
        "clientConnection": {"qps": 300, "burst": 500},
        "integrations": {"frameworks": list(FRAMEWORKS)},
    }


def kueue_values(prometheus: bool, highly_available: bool) -> dict[str, Any]:
    manager: dict[str, Any] = {"nodeSelector": dict(SYSTEM_NODE_SELECTOR)}
    if highly_available:
        # Kueue's webhooks admit every Job in the team namespaces: with one replica a node drain stops submissions.
        manager |= {"replicas": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 1}}
    return {
        "controllerManager": manager,
        "managerConfig": {"controllerManagerConfigYaml": yaml.safe_dump(manager_configuration(), sort_keys=False)},
        "enablePrometheus": prometheus,
    }


def kueue_namespace() -> dict[str, Any]:
    # The controller runs as non-root without privileges: restricted is enforced.
    labels = {**MANAGED_BY, "pod-security.kubernetes.io/enforce": "restricted"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KUEUE_NAMESPACE, "labels": labels}}


class Kueue(Layer[KueueConfig]):
    TYPE = "ml-platform:kueue:Kueue"

    def build(self) -> dict[str, Any]:
        handle = self.handle
        namespace = register(kueue_namespace(), self.in_cluster())
        prometheus = handle.installed(PROMETHEUS_CRDS)
        values = kueue_values(bool(prometheus), handle.platform.environment != "dev")
        release = helm_release(
            KUEUE.name, KUEUE, values, self.in_cluster(namespace, *prometheus), create_namespace=False
        )
        flavors = resource_flavors(handle.gpu_pools)
        created = register_all([*flavors, *workload_priority_classes()], self.in_cluster(release))
        handle.provide(KUEUE_QUEUES, release, *created)
        return {"chart": KUEUE.name, "flavors": [f["metadata"]["name"] for f in flavors]}
