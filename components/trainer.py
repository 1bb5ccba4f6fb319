"""`Trainer` (`ml-platform:trainer`): Kubeflow Trainer v2 with JobSet, and the `torch-distributed`
ClusterTrainingRuntime with the field guide's defaults.

The pinned `kubeflow-trainer` chart installs the controller, its CRDs (chart templates, so upgrades update them)
and JobSet 0.12.0. The chart's built-in runtimes stay off: the platform's `torch-distributed` (same name, same
shape as upstream's) adds what a user's first TrainJob needs and forgets:

- a memory `/dev/shm` (`shmSize`, default 16Gi) in the `node` container;
- the GPU toleration, and a node selector on the portable workload label of the training pools;
- failure handling for spot: a spot interruption or node drain (a pod condition `DisruptionTarget`) fails the
  node's Job, and JobSet restarts the whole gang without counting it; other failures restart it up to
  `maxRestarts` times;
- `NCCL_DEBUG=WARN`: NCCL's debug output off unless asked for.

So a TrainJob needs only an image (or the runtime's), a command and a GPU count (`resourcesPerNode`).

With `trainingOperator.enabled`, the legacy Training Operator v1 runs too, for teams that still submit
PyTorchJobs: upstream ships it as a kustomize overlay, not a chart, so the Kubernetes provider renders
kustomize/training-operator/, the pinned tag's standalone overlay (namespace `kubeflow`; CRDs as plain manifests,
so a new pin updates them) narrowed to PyTorchJob on system nodes. Kueue queues PyTorchJobs in team namespaces
(its `kubeflow.org/pytorchjob` integration is on).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config.trainer import TrainerConfig
from components.gpu_pools import PlatformFacts, ResolvedGpuPool
from components.kube import helm_release, register
from components.layer import PROMETHEUS_CRDS, TRAINER_READY, TRAINING_OPERATOR_READY, Layer
from components.storage.team_objects import apply_team_storage
from components.versions import KUBEFLOW_TRAINER, TRAINING_OPERATOR_KUSTOMIZATION, TRAINING_OPERATOR_VERSION
from vocabulary.labels import GPU_TAINT_KEY, LABEL_GPU, LABEL_WORKLOAD, MANAGED_BY, SYSTEM_NODE_SELECTOR
from vocabulary.namespaces import TRAINER_NAMESPACE
from vocabulary.policy_rules import SHM_PATH
from vocabulary.resources import GPU_RESOURCE

TORCH_RUNTIME = "torch-distributed"
# JobSet's webhook refuses failure-policy rule names outside ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$ (no hyphens;
# jobset v0.12.0 pkg/webhooks/jobset_webhook.go): the Trainer's runtime webhook does not check it, every JobSet would.
JOBSET_RULE_NAME = "nodeDisrupted"
# What the Trainer reads: the framework of a runtime, and the step of the JobSet that runs the trainer.
FRAMEWORK_LABEL = "trainer.kubeflow.org/framework"
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"


def trainer_values() -> dict[str, Any]:
    return {
        "manager": {"nodeSelector": dict(SYSTEM_NODE_SELECTOR)},
        "jobset": {"controller": {"nodeSelector": dict(SYSTEM_NODE_SELECTOR)}},
        # The platform's own runtime replaces the built-in torch-distributed; the others stay off too.
        "runtimes": {"defaultEnabled": False},
    }


def trainer_namespace() -> dict[str, Any]:
    labels = {
        **MANAGED_BY,
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TRAINER_NAMESPACE, "labels": labels}}


def training_node_selector(pools: tuple[ResolvedGpuPool, ...]) -> dict[str, str]:
    """The training pools' portable label, when the stack has one (else any GPU node the taint admits), and their GPU
    model when they share one: Kueue picks a job's flavor among those its pods' model label allows, and without it
    could admit a training job on another model's quota, whose nodes the workload label then excludes."""
    training = [p for p in pools if p.config.workload == "training"]
    if not training:
        return {}
    models = {p.model.key for p in training if p.gpu_resource == GPU_RESOURCE}
    model = (
        {LABEL_GPU: models.pop()} if len(models) == 1 and all(p.gpu_resource == GPU_RESOURCE for p in training) else {}
    )
    return {LABEL_WORKLOAD: "training", **model}


def torch_runtime(
    config: TrainerConfig, pools: tuple[ResolvedGpuPool, ...], facts: PlatformFacts | None = None
) -> dict[str, Any]:
    pod: dict[str, Any] = {
        # podFailurePolicy needs pods that are not restarted in place.
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "node",
                "image": config.image,
                "env": [{"name": "NCCL_DEBUG", "value": "WARN"}],
                "volumeMounts": [{"name": "dshm", "mountPath": SHM_PATH}],
            }
        ],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": config.shm_size}}],
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    }
    if selector := training_node_selector(pools):
        pod["nodeSelector"] = selector
    if facts is not None:
        # The team's volume, checkpoint identity and CHECKPOINT_URI: every team namespace has them.
        apply_team_storage(pod, pod["containers"][0], facts)
    job = {
        "backoffLimit": 0,
        # A spot interruption or drain fails the node's Job at once (not after a timeout) ...
        "podFailurePolicy": {"rules": [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
        "template": {"spec": pod},
    }
    failure = {
        "maxRestarts": config.max_restarts,
        # ... and JobSet restarts the whole gang (torchrun cannot lose a node) without counting it.
        "rules": [
            {
                "name": JOBSET_RULE_NAME,
                "action": "RestartJobSetAndIgnoreMaxRestarts",
                "onJobFailureReasons": ["PodFailurePolicy"],
            }
        ],
    }
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": TORCH_RUNTIME, "labels": {**MANAGED_BY, FRAMEWORK_LABEL: "torch"}},
        "spec": {
            "mlPolicy": {"numNodes": 1, "torch": {}},
            "template": {
                "spec": {
                    "failurePolicy": failure,
                    "replicatedJobs": [
                        {"name": "node", "template": {"metadata": {"labels": {ANCESTOR_LABEL: "trainer"}}, "spec": job}}
                    ],
                }
            },
        },
    }


class Trainer(Layer[TrainerConfig]):
    TYPE = "ml-platform:trainer:Trainer"

    def build(self) -> dict[str, Any]:
        outputs: dict[str, Any] = {"chart": None, "runtimes": [], "trainingOperator": None}
        if self.section.training_operator.enabled:
            outputs["trainingOperator"] = self.training_operator()
        if self.section.enabled:
            outputs |= self.trainer()
        return outputs

    def training_operator(self) -> str:
        # Deleting the CRDs would delete every PyTorchJob: kept when the stack stops managing them, and protected
        # where the cluster is. The provider applies server-side: the CRDs are too large for client-side apply.
        keep = pulumi.ResourceOptions(retain_on_delete=True, protect=self.handle.platform.protect)
        operator = k8s.kustomize.v2.Directory(
            "training-operator",
            directory=TRAINING_OPERATOR_KUSTOMIZATION,
            opts=pulumi.ResourceOptions.merge(self.in_cluster(), keep),
        )
        self.handle.provide(TRAINING_OPERATOR_READY, operator)
        return TRAINING_OPERATOR_VERSION

    def trainer(self) -> dict[str, Any]:
        handle = self.handle
        namespace = register(trainer_namespace(), self.in_cluster())
        prometheus = handle.installed(PROMETHEUS_CRDS)
        release = helm_release(
            KUBEFLOW_TRAINER.name,
            KUBEFLOW_TRAINER,
            trainer_values(),
            # Its CRDs are chart templates: uninstalling it deletes every TrainJob, so it is protected where the
            # cluster is.
            pulumi.ResourceOptions.merge(
                self.in_cluster(namespace, *prometheus), pulumi.ResourceOptions(protect=handle.platform.protect)
            ),
            create_namespace=False,
        )
        # The runtime waits for the release: its CRD and the validating webhook (failurePolicy Fail) are ready then.
        runtime = register(torch_runtime(self.section, handle.gpu_pools, handle.platform), self.after(release))
        handle.provide(TRAINER_READY, release, runtime)
        return {"chart": KUBEFLOW_TRAINER.name, "runtimes": [TORCH_RUNTIME]}
