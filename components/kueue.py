"""`Kueue` (`ml-platform:kueue`): job queueing and GPU fair sharing between the teams.

The pinned Kueue chart (its CRDs are chart templates, so upgrades update them), with the integrations the
platform's workloads use, then the ResourceFlavors and WorkloadPriorityClasses (components/queueing.py). The teams'
ClusterQueues and LocalQueues come with their namespaces (components/teams.py) and wait for this layer.
"""

from __future__ import annotations

from typing import Any

import pulumi
import yaml

from components.config.kueue import KueueConfig
from components.kube import helm_release, register, register_all
from components.layer import KUEUE_QUEUES, PROMETHEUS_CRDS, Layer
from components.queueing import resource_flavors, workload_priority_classes
from components.versions import KUEUE
from vocabulary.labels import LABEL_TEAM, MANAGED_BY, SYSTEM_NODE_SELECTOR
from vocabulary.namespaces import KUEUE_NAMESPACE

# The job kinds the platform runs (batch Jobs, JobSets, Kubeflow Trainer's TrainJobs, Ray, legacy PyTorchJobs);
# the chart leaves kubeflow.org/pytorchjob off. Pods, Deployments and StatefulSets (serving) are not queued.
FRAMEWORKS = (
    "batch/job",
    "jobset.x-k8s.io/jobset",
    "trainer.kubeflow.org/trainjob",
    "ray.io/rayjob",
    "ray.io/raycluster",
    # A RayService's RayCluster is then queued with its RayService, not as a RayCluster of its own (upstream's
    # default too).
    "ray.io/rayservice",
    "kubeflow.org/pytorchjob",
)
# Resources Kueue does not count: node-local ones a pod may request besides CPU, memory and GPUs (scratch disk,
# huge pages, EFA devices on p4/p5). Kueue's default (BlockUndeclared) would otherwise hold every job that
# requests one forever, as "unavailable in ClusterQueue"; the GPU resources stay checked.
EXCLUDED_RESOURCE_PREFIXES = ("ephemeral-storage", "hugepages-", "vpc.amazonaws.com/")
# The controller's pods as the chart selects them (kueue.selectorLabels, release name `kueue`).
CONTROLLER_LABELS = {"app.kubernetes.io/name": "kueue", "app.kubernetes.io/instance": "kueue"}


def manager_configuration() -> dict[str, Any]:
    """Kueue's Configuration. The chart takes it as one string, so it is the chart's default file (same settings)
    with the platform's integrations, per-ClusterQueue resource metrics (showback) and the team namespaces as the
    ones Kueue manages."""
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
        # Only the teams' namespaces: Kueue never holds a platform namespace's jobs (a chart's hook Jobs), and its
        # job webhooks (failurePolicy Fail) select these namespaces only.
        "managedJobsNamespaceSelector": {"matchExpressions": [{"key": LABEL_TEAM, "operator": "Exists"}]},
        "resources": {"excludeResourcePrefixes": list(EXCLUDED_RESOURCE_PREFIXES)},
    }


def kueue_values(prometheus: bool, highly_available: bool) -> dict[str, Any]:
    manager: dict[str, Any] = {"nodeSelector": dict(SYSTEM_NODE_SELECTOR)}
    if highly_available:
        # Kueue's webhooks admit every Job in the team namespaces: with one replica a node drain stops submissions.
        spread = {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(CONTROLLER_LABELS)},
        }
        manager |= {
            "replicas": 2,
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "topologySpreadConstraints": [spread],
        }
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
        # The chart's CRDs are templates: deleting or replacing the release deletes every queue and workload with
        # them, so it is protected where the cluster is (cluster.protect, default in prod).
        opts = pulumi.ResourceOptions.merge(
            self.in_cluster(namespace, *prometheus),
            pulumi.ResourceOptions(protect=handle.platform.protect),
        )
        release = helm_release(KUEUE.name, KUEUE, values, opts, create_namespace=False)
        flavors = resource_flavors(handle.gpu_pools)
        created = register_all([*flavors, *workload_priority_classes()], self.in_cluster(release))
        handle.provide(KUEUE_QUEUES, release, *created)
        return {"chart": KUEUE.name, "flavors": [f["metadata"]["name"] for f in flavors]}
