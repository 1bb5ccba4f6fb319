"""Where pod specs live in every kind the platform runs GPU work with (see policies/RULES.md)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .values import get, mapping, sequence


@dataclass(frozen=True)
class Container:
    name: str
    spec: Mapping[str, Any]  # the container object: resources, env, volumeMounts
    # KubeRay mounts its own memory /dev/shm into the Ray container (the first) when nothing is mounted there.
    runtime_provides_shm: bool = False

    @property
    def resources(self) -> Mapping[str, Any]:
        return mapping(self.spec.get("resources"))


@dataclass(frozen=True)
class PodSite:
    """One pod spec inside an object, with the path that locates it and the containers the rules check."""

    path: str
    spec: Mapping[str, Any]
    containers: tuple[Container, ...] = field(default=())
    # False for TrainJob's trainer pseudo-container: its volumes live in the runtime, not here.
    has_pod_spec: bool = True


# KServe predictor fields that are containers besides `containers` (the model and framework shorthands).
KSERVE_CONTAINER_FIELDS = {
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


def containers_of(spec: Mapping[str, Any], extras: tuple[str, ...] = (), ray: bool = False) -> tuple[Container, ...]:
    found = [
        Container(str(mapping(c).get("name", f"#{i}")), mapping(c), runtime_provides_shm=ray and i == 0)
        for i, c in enumerate(sequence(spec.get("containers")))
    ]
    found += [
        Container(str(mapping(c).get("name", f"init#{i}")), mapping(c))
        for i, c in enumerate(sequence(spec.get("initContainers")))
    ]
    found += [
        Container(str(mapping(spec[f]).get("name") or f), mapping(spec[f]))
        for f in extras
        if isinstance(spec.get(f), Mapping)
    ]
    return tuple(found)


def _site(path: str, spec: Any, extras: tuple[str, ...] = (), ray: bool = False) -> PodSite | None:
    if not isinstance(spec, Mapping):
        return None
    return PodSite(path, spec, containers_of(spec, extras, ray))


def _ray(base: str, cluster: Any) -> Iterator[PodSite | None]:
    yield _site(f"{base}.headGroupSpec.template.spec", get(cluster, "headGroupSpec", "template", "spec"), ray=True)
    for i, group in enumerate(sequence(get(cluster, "workerGroupSpecs"))):
        yield _site(f"{base}.workerGroupSpecs[{i}].template.spec", get(group, "template", "spec"), ray=True)


def _replicated_jobs(base: str, jobset_spec: Any) -> Iterator[PodSite | None]:
    for i, job in enumerate(sequence(get(jobset_spec, "replicatedJobs"))):
        yield _site(
            f"{base}.replicatedJobs[{i}].template.spec.template.spec", get(job, "template", "spec", "template", "spec")
        )


def _sites(obj: Mapping[str, Any]) -> Iterator[PodSite | None]:
    kind, spec = obj.get("kind"), mapping(obj.get("spec"))
    match kind:
        case "Pod":
            yield _site("spec", spec)
        case "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job":
            yield _site("spec.template.spec", get(spec, "template", "spec"))
        case "CronJob":
            yield _site("spec.jobTemplate.spec.template.spec", get(spec, "jobTemplate", "spec", "template", "spec"))
        case "PyTorchJob":
            for replica, replica_spec in mapping(spec.get("pytorchReplicaSpecs")).items():
                yield _site(f"spec.pytorchReplicaSpecs.{replica}.template.spec", get(replica_spec, "template", "spec"))
        case "TrainingRuntime" | "ClusterTrainingRuntime":
            yield from _replicated_jobs("spec.template.spec", get(spec, "template", "spec"))
        case "TrainJob":
            for i, patch in enumerate(sequence(spec.get("runtimePatches"))):
                yield from _replicated_jobs(
                    f"spec.runtimePatches[{i}].trainingRuntimeSpec.template.spec",
                    get(patch, "trainingRuntimeSpec", "template", "spec"),
                )
            resources = get(spec, "trainer", "resourcesPerNode")
            if isinstance(resources, Mapping):
                env = get(spec, "trainer", "env") or ()
                trainer = Container("trainer", {"name": "trainer", "resources": resources, "env": env})
                yield PodSite("spec.trainer", {}, (trainer,), has_pod_spec=False)
        case "JobSet":
            yield from _replicated_jobs("spec", spec)
        case "RayCluster":
            yield from _ray("spec", spec)
        case "RayJob":
            yield from _ray("spec.rayClusterSpec", spec.get("rayClusterSpec"))
        case "RayService":
            yield from _ray("spec.rayClusterConfig", spec.get("rayClusterConfig"))
        case "InferenceService":
            for component, extras in KSERVE_CONTAINER_FIELDS.items():
                yield _site(f"spec.{component}", spec.get(component), extras)
            # Multi-node serving: the worker pods have their own pod spec.
            yield _site("spec.predictor.workerSpec", get(spec, "predictor", "workerSpec"))


def pod_sites(obj: Mapping[str, Any]) -> list[PodSite]:
    return [site for site in _sites(obj) if site is not None]
