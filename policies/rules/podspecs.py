"""The pod specs and containers of an object, found with the workload-kind table of `vocabulary.workloads`, with
what an operator adds to the pods it builds from them (KubeRay's /dev/shm) kept apart from the manifest's own
dicts: the rules judge both, the pack's remediation edits only the manifest."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from vocabulary.policy_rules import SHM_PATH
from vocabulary.workloads import (
    KUBERAY_RAY_CONTAINER_INDEX,
    KUBERAY_SHM_SKIP_PARAM,
    KUBERAY_SHM_VOLUME,
    KUBERAY_VERSION,
    WORKLOAD_KINDS_BY_KIND,
    Each,
    PodSpecs,
    RayGroup,
    Step,
    TrainerResources,
)

from .defaulting import Resources, effective_resources
from .mounts import is_memory_backed, mount_path, volumes_named
from .values import get, mapping, sequence


@dataclass(frozen=True)
class Container:
    name: str
    spec: Mapping[str, Any]  # the container object: resources, env, volumeMounts
    # Mounts the operator adds when it builds the pod (KubeRay's /dev/shm), after the container's own.
    added_mounts: tuple[Mapping[str, Any], ...] = ()
    # Why the operator adds nothing although it might (said in findings).
    note: str = ""

    @property
    def resources(self) -> Mapping[str, Any]:
        return mapping(self.spec.get("resources"))

    @cached_property  # every rule asks, several times per container
    def effective(self) -> Resources:
        """Requests and limits as the API server defaults them (a limit alone is also the request)."""
        return effective_resources(self.resources)

    @property
    def mounts(self) -> list[Mapping[str, Any]]:
        """The container's volumeMounts in the pod that runs: its own, then what the operator adds."""
        return [mapping(m) for m in sequence(self.spec.get("volumeMounts"))] + list(self.added_mounts)


@dataclass(frozen=True)
class PodSite:
    """One pod spec inside an object, with the path that locates it and the containers the rules check."""

    path: str
    spec: Mapping[str, Any]
    containers: tuple[Container, ...] = field(default=())
    # False for TrainJob's trainer pseudo-container: its volumes live in the runtime, not here.
    has_pod_spec: bool = True
    # Volumes the operator adds when it builds the pod (KubeRay's shared-mem).
    added_volumes: tuple[Mapping[str, Any], ...] = ()

    @property
    def volumes(self) -> list[Any]:
        return list(sequence(self.spec.get("volumes"))) + list(self.added_volumes)

    @cached_property  # once per pod spec: rules look up the volume of every mount, and a pod may have thousands
    def volumes_by_name(self) -> dict[str, VolumesNamed]:
        """The pod's volumes (the operator's included) by name. Nameless volumes cannot be mounted: left out."""
        named: dict[str, list[Mapping[str, Any]]] = {}
        for volume in map(mapping, self.volumes):
            name = volume.get("name")
            if isinstance(name, str) and name:
                named.setdefault(name, []).append(volume)
        return {name: VolumesNamed(tuple(volumes)) for name, volumes in named.items()}

    def volumes_named(self, name: Any) -> VolumesNamed:
        """Every volume called `name` (the API server rejects duplicates, but a template may still have them)."""
        return self.volumes_by_name.get(name, NO_VOLUMES) if isinstance(name, str) else NO_VOLUMES


@dataclass(frozen=True)
class VolumesNamed:
    """The volumes of one name in a pod spec, and whether they are all memory-backed (asked once, not per mount)."""

    volumes: tuple[Mapping[str, Any], ...]

    @cached_property
    def memory(self) -> bool:
        return bool(self.volumes) and all(is_memory_backed(v) for v in self.volumes)


NO_VOLUMES = VolumesNamed(())


def containers_of(spec: Mapping[str, Any], extras: tuple[str, ...] = ()) -> tuple[Container, ...]:
    found = [
        Container(str(mapping(c).get("name", f"#{i}")), mapping(c))
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


def _memory_of(container: Mapping[str, Any]) -> Any:
    """findMemoryReqOrLimit: the memory limit, else the memory request, else None (no sizeLimit)."""
    resources = mapping(container.get("resources"))
    limit = get(resources, "limits", "memory")
    return limit if limit is not None else get(resources, "requests", "memory")


def _kuberay(site: PodSite, group: Mapping[str, Any], ray_group: RayGroup) -> PodSite:
    """The site as KubeRay's BuildPod (ray-operator/controllers/ray/common/pod.go at KUBERAY_VERSION) builds its
    pods: the Ray container (the first) gets the pod's `shared-mem` volume at /dev/shm unless rayStartParams has
    `plasma-directory` or that container already mounts something at exactly "/dev/shm" (a plain string compare:
    "/dev/shm/" does not count, so KubeRay adds its mount next to it)."""
    containers = list(site.containers)
    if len(sequence(site.spec.get("containers"))) <= KUBERAY_RAY_CONTAINER_INDEX:
        return site
    ray = containers[KUBERAY_RAY_CONTAINER_INDEX]
    params = mapping(get(group, *ray_group.start_params.split(".")))
    if KUBERAY_SHM_SKIP_PARAM in params:
        note = f"KubeRay {KUBERAY_VERSION} adds none: rayStartParams sets {KUBERAY_SHM_SKIP_PARAM}"
        containers[KUBERAY_RAY_CONTAINER_INDEX] = replace(ray, note=note)
        return replace(site, containers=tuple(containers))
    if any(mount_path(m) == SHM_PATH for m in sequence(ray.spec.get("volumeMounts"))):
        return site
    added: tuple[Mapping[str, Any], ...] = ()
    if not volumes_named(sequence(site.spec.get("volumes")), KUBERAY_SHM_VOLUME):
        memory = _memory_of(ray.spec)
        empty_dir = {"medium": "Memory", **({"sizeLimit": memory} if memory is not None else {})}
        added = ({"name": KUBERAY_SHM_VOLUME, "emptyDir": empty_dir},)
    mount = {"name": KUBERAY_SHM_VOLUME, "mountPath": SHM_PATH}
    containers[KUBERAY_RAY_CONTAINER_INDEX] = replace(ray, added_mounts=(mount,))
    return replace(site, containers=tuple(containers), added_volumes=added)


def _site(path: str, spec: Any, location: PodSpecs) -> PodSite | None:
    if not isinstance(spec, Mapping):
        return None
    return PodSite(path, spec, containers_of(spec, location.extra_containers))


def _group(path: str, group: Any, ray: RayGroup, location: PodSpecs) -> PodSite | None:
    """A KubeRay group: its pod spec, as KubeRay builds pods from it."""
    site = _site(f"{path}.{ray.template}", get(group, *ray.template.split(".")), location)
    return _kuberay(site, mapping(group), ray) if site is not None else None


def _walk(path: str, value: Any, steps: tuple[Step, ...], location: PodSpecs) -> Iterator[PodSite | None]:
    """Follow `steps` from `value` (found at `path`): field paths, and every item of an `Each`."""
    if not steps:
        yield _group(path, value, location.ray, location) if location.ray else _site(path, value, location)
        return
    step, rest = steps[0], steps[1:]
    if isinstance(step, Each):
        items = get(value, *step.field.split("."))
        at = f"{path}.{step.field}" if path else step.field
        if step.map:
            for key, item in mapping(items).items():
                yield from _walk(f"{at}.{key}", item, rest, location)
        else:
            for i, item in enumerate(sequence(items)):
                yield from _walk(f"{at}[{i}]", item, rest, location)
        return
    yield from _walk(f"{path}.{step}" if path else step, get(value, *step.split(".")), rest, location)


def _trainer(obj: Mapping[str, Any], site: TrainerResources) -> PodSite | None:
    """TrainJob's trainer: resources and env only; its pod spec lives in the training runtime."""
    trainer = get(obj, *site.path.split("."))
    resources = get(trainer, site.resources)
    if not isinstance(resources, Mapping):
        return None
    env = get(trainer, site.env) or ()
    container = Container(site.container, {"name": site.container, "resources": resources, "env": env})
    return PodSite(site.path, {}, (container,), has_pod_spec=False)


def _sites(obj: Mapping[str, Any]) -> Iterator[PodSite | None]:
    kind = WORKLOAD_KINDS_BY_KIND.get(str(obj.get("kind")))
    if kind is None:
        return
    root = kind.root or ""
    base = get(obj, *root.split(".")) if root else obj
    for site in kind.sites:
        if isinstance(site, TrainerResources):
            yield _trainer(obj, site)
        else:
            yield from _walk(root, base, site.steps, site)


_last: tuple[Mapping[str, Any] | None, list[PodSite]] = (None, [])


def forget() -> None:
    """Drop the kept answer: an object may have been edited in place since (check_object calls this first)."""
    global _last
    _last = (None, [])


def pod_sites(obj: Mapping[str, Any]) -> list[PodSite]:
    """The pod specs of an object. Every rule asks for the same object in turn: the last answer is kept."""
    global _last
    if _last[0] is not obj:
        _last = (obj, [site for site in _sites(obj) if site is not None])
    return list(_last[1])
