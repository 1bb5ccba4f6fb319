"""The in-cluster layer contract: `Layer(name, section, handle, opts)`.

- `section` is the layer's own config model (`config.scaling`, `config.policies`, ...), never `PlatformConfig`;
  `None` for a layer with no settings.
- `handle` is the `ClusterHandle`: the Kubernetes provider, what in-cluster objects wait for, the resolved GPU
  pools and the facts that cut across sections (environment, autoscaler, cost tags, the teams a pool serves).
- A layer builds its objects with plain functions (config in, dicts out) that tests call directly, and only
  registers them (`components/kube.py`).

A new layer is one file with a `Layer` subclass and one line in `MlPlatform` (components/platform.py).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

import pulumi

from components.cluster.handle import ClusterHandle

Section = TypeVar("Section")

# Capabilities a layer provides to the layers after it (`ClusterHandle.provide` / `installed`).
PROMETHEUS_CRDS = "prometheus-operator-crds"  # ServiceMonitor, PodMonitor, PrometheusRule (monitoring layer)
KUEUE_QUEUES = "kueue-queues"  # Kueue running with its ResourceFlavors and WorkloadPriorityClasses (kueue layer)
KUBERAY_OPERATOR_READY = "kuberay-operator"  # the KubeRay operator and its CRDs (kuberay layer)
TRAINER_READY = "kubeflow-trainer"  # Kubeflow Trainer, JobSet and the ClusterTrainingRuntimes (trainer layer)
KSERVE_READY = "kserve"  # KServe's controller (webhooks serving) and ClusterServingRuntimes (kserve layer)
SHARED_STORAGE = "shared-storage"  # the shared filesystem's StorageClass (storage layer)
TRAINING_OPERATOR_READY = "training-operator"  # the legacy Training Operator v1 and its CRDs (trainer layer)
# Values a layer publishes for later ones (`ClusterHandle.publish` / `published`).
CHECKPOINT_BUCKET_URI = "checkpoint-bucket-uri"  # s3://<bucket>/ or gs://<bucket>/ (storage layer)


class Layer(pulumi.ComponentResource, Generic[Section]):
    """One in-cluster layer as one component. Subclasses set `TYPE` (`ml-platform:<layer>:<Component>`) and
    implement `build`, which registers the layer's resources and returns its outputs."""

    TYPE: ClassVar[str]

    def __init__(
        self, name: str, section: Section, handle: ClusterHandle, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.name = name
        self.section = section
        self.handle = handle
        self.register_outputs(self.build())

    def build(self) -> dict[str, Any]:
        raise NotImplementedError

    def in_cluster(self, *after: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options of the layer's Kubernetes resources: under the layer, through the cluster's provider, after
        the cluster is ready (nodes, add-ons, access) and after `after`."""
        return pulumi.ResourceOptions(
            parent=self, provider=self.handle.provider, depends_on=[*self.handle.ready, *after]
        )

    def after(self, first: pulumi.Resource, *more: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options of a Kubernetes resource that waits for `first` (and `more`), which waits for the cluster: the
        cluster's readiness comes through it. Fewer direct dependencies keep a plan of many teams fast (the SDK
        walks every direct dependency's whole graph)."""
        return pulumi.ResourceOptions(parent=self, provider=self.handle.provider, depends_on=[first, *more])
