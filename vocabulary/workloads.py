"""Every workload kind the GPU policies cover, and where each keeps its pod specs.

One table read by two interpreters: `policies/rules/podspecs.py` walks objects with it (the policy pack and
check.py), `components/admission.py` turns it into the CEL of the ValidatingAdmissionPolicies. A new kind is
one entry here; both follow.

A location is a path of steps from the object (or from the kind's `root`): a dotted field path such as
"template.spec", or `Each(field, var)`, every item of a list (every value of a map with `map=True`).
`var` is the name the admission CEL gives the item.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Each:
    """Every item of the list at `field` (or every value of the map, with `map=True`)."""

    field: str
    var: str
    map: bool = False


Step = str | Each


@dataclass(frozen=True)
class PodSpecs:
    """Pod specs at `steps`, with the containers the rules check: `containers`, `initContainers` and the named
    single-container fields in `extra_containers` (KServe's model and framework shorthands)."""

    steps: tuple[Step, ...] = ()
    extra_containers: tuple[str, ...] = ()
    # KubeRay mounts its own memory /dev/shm into the Ray container (the first) when nothing is mounted there.
    ray: bool = False


@dataclass(frozen=True)
class TrainerResources:
    """Kubeflow Trainer's TrainJob: the trainer container's resources and env, without a pod spec (the volumes
    live in the runtime)."""

    path: str = "spec.trainer"
    resources: str = "resourcesPerNode"
    env: str = "env"
    container: str = "trainer"


Site = PodSpecs | TrainerResources


@dataclass(frozen=True)
class WorkloadKind:
    kind: str
    group: str  # API group ("" for the core group)
    versions: tuple[str, ...]
    resource: str  # plural resource name, as admission rules match it
    sites: tuple[Site, ...]
    # A dotted path every site is below: absent means no pod specs at all.
    root: str | None = None


# KServe fields that are containers besides `containers` (the model and framework shorthands).
KSERVE_CONTAINER_FIELDS: dict[str, tuple[str, ...]] = {
    "predictor": (
        "model",
        "huggingface",
        "lightgbm",
        "onnx",
        "paddle",
        "pmml",
        "pytorch",
        "sklearn",
        "tensorflow",
        "triton",
        "xgboost",
    ),
    "transformer": (),
    "explainer": ("art",),
}

_POD_SPEC = (PodSpecs(),)
_REPLICATED_JOBS = PodSpecs((Each("replicatedJobs", "j"), "template.spec.template.spec"))
_RAY = (
    PodSpecs(("headGroupSpec.template.spec",), ray=True),
    PodSpecs((Each("workerGroupSpecs", "g"), "template.spec"), ray=True),
)

WORKLOAD_KINDS: tuple[WorkloadKind, ...] = (
    WorkloadKind("Pod", "", ("v1",), "pods", _POD_SPEC, root="spec"),
    WorkloadKind("Deployment", "apps", ("v1",), "deployments", _POD_SPEC, root="spec.template.spec"),
    WorkloadKind("StatefulSet", "apps", ("v1",), "statefulsets", _POD_SPEC, root="spec.template.spec"),
    WorkloadKind("DaemonSet", "apps", ("v1",), "daemonsets", _POD_SPEC, root="spec.template.spec"),
    WorkloadKind("ReplicaSet", "apps", ("v1",), "replicasets", _POD_SPEC, root="spec.template.spec"),
    WorkloadKind("Job", "batch", ("v1",), "jobs", _POD_SPEC, root="spec.template.spec"),
    WorkloadKind("CronJob", "batch", ("v1",), "cronjobs", _POD_SPEC, root="spec.jobTemplate.spec.template.spec"),
    WorkloadKind(
        "PyTorchJob",
        "kubeflow.org",
        ("v1",),
        "pytorchjobs",
        (PodSpecs((Each("spec.pytorchReplicaSpecs", "r", map=True), "template.spec")),),
    ),
    WorkloadKind(
        "TrainJob",
        "trainer.kubeflow.org",
        ("v1alpha1",),
        "trainjobs",
        (
            PodSpecs(
                (
                    Each("spec.runtimePatches", "p"),
                    "trainingRuntimeSpec.template.spec",
                    *_REPLICATED_JOBS.steps,
                )
            ),
            TrainerResources(),
        ),
    ),
    WorkloadKind(
        "TrainingRuntime",
        "trainer.kubeflow.org",
        ("v1alpha1",),
        "trainingruntimes",
        (_REPLICATED_JOBS,),
        root="spec.template.spec",
    ),
    WorkloadKind(
        "ClusterTrainingRuntime",
        "trainer.kubeflow.org",
        ("v1alpha1",),
        "clustertrainingruntimes",
        (_REPLICATED_JOBS,),
        root="spec.template.spec",
    ),
    WorkloadKind("JobSet", "jobset.x-k8s.io", ("v1alpha2",), "jobsets", (_REPLICATED_JOBS,), root="spec"),
    WorkloadKind("RayCluster", "ray.io", ("v1",), "rayclusters", _RAY, root="spec"),
    WorkloadKind("RayJob", "ray.io", ("v1",), "rayjobs", _RAY, root="spec.rayClusterSpec"),
    WorkloadKind("RayService", "ray.io", ("v1",), "rayservices", _RAY, root="spec.rayClusterConfig"),
    WorkloadKind(
        "InferenceService",
        "serving.kserve.io",
        ("v1beta1",),
        "inferenceservices",
        (
            *(PodSpecs((f"spec.{part}",), extras) for part, extras in KSERVE_CONTAINER_FIELDS.items()),
            # Multi-node serving: the worker pods have their own pod spec.
            PodSpecs(("spec.predictor.workerSpec",)),
        ),
    ),
)
WORKLOAD_KINDS_BY_KIND: dict[str, WorkloadKind] = {k.kind: k for k in WORKLOAD_KINDS}
