"""Every workload kind the GPU policies cover, and where each keeps its pod specs.

One table read by two interpreters: `policies/rules/podspecs.py` walks objects with it (the policy pack and
check.py), `components/admission.py` turns it into the CEL of the ValidatingAdmissionPolicies. A new kind is
one entry here; both follow.

A location is a path of steps from the object (or from the kind's `root`): a dotted field path such as
"template.spec", or `Each(field, var)`, every item of a list (every value of a map with `map=True`).
`var` is the name the admission CEL gives the item. A KubeRay location's steps end at the head or worker group,
whose pod spec and `rayStartParams` both matter (`RayGroup`).
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


# What KubeRay's pod builder does about /dev/shm, read from ray-operator/controllers/ray/common/pod.go (BuildPod,
# addEmptyDir, makeEmptyDirVolume, findMemoryReqOrLimit) at the version below, the kuberay-operator chart pinned in
# ../shared/reference/VERSIONS.md (a test keeps them equal). Re-read that file when the pin moves.
KUBERAY_VERSION = "1.7.0"
# Unless the group's rayStartParams has this key (any value), KubeRay gives the Ray container a /dev/shm ...
KUBERAY_SHM_SKIP_PARAM = "plasma-directory"  # PlasmaDirectoryParamKey
# ... mounting, when that container has no volumeMount whose mountPath is exactly "/dev/shm", the pod's volume of
# this name: the existing one, whatever it is, or else a new emptyDir with medium Memory and sizeLimit = the Ray
# container's memory limit, else its memory request, else none.
KUBERAY_SHM_VOLUME = "shared-mem"  # SharedMemoryVolumeName
# KubeRay's head pods (utils.RayNodeTypeLabelKey) and the dashboard port the operator calls to submit RayJobs and
# read RayService status (DefaultDashboardPort).
RAY_NODE_TYPE_LABEL = "ray.io/node-type"
RAY_DASHBOARD_PORT = 8265
# KServe labels every pod of an InferenceService with its name (constants.InferenceServicePodLabelKey): the
# serving ingress NetworkPolicy of a team that serves models selects on it.
KSERVE_INFERENCESERVICE_LABEL = "serving.kserve.io/inferenceservice"
# The Ray container is the first of `containers` (utils.RayContainerIndex); no other container gets anything.
KUBERAY_RAY_CONTAINER_INDEX = 0


@dataclass(frozen=True)
class RayGroup:
    """A KubeRay head or worker group: the pod template's spec at `template`, the `ray start` parameters at
    `start_params` (both relative to the group)."""

    template: str = "template.spec"
    start_params: str = "rayStartParams"


@dataclass(frozen=True)
class PodSpecs:
    """Pod specs at `steps`, with the containers the rules check: `containers`, `initContainers` and the named
    single-container fields in `extra_containers` (KServe's model and framework shorthands). With `ray`, `steps`
    lead to a KubeRay group and the pod spec is the group's template."""

    steps: tuple[Step, ...] = ()
    extra_containers: tuple[str, ...] = ()
    ray: RayGroup | None = None


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
    PodSpecs(("headGroupSpec",), ray=RayGroup()),
    PodSpecs((Each("workerGroupSpecs", "g"),), ray=RayGroup()),
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
