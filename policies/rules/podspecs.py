"""The pod specs and containers of an object, found with the workload-kind table of `vocabulary.workloads`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vocabulary.workloads import WORKLOAD_KINDS_BY_KIND, Each, PodSpecs, Step, TrainerResources

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


def _site(path: str, spec: Any, location: PodSpecs) -> PodSite | None:
    if not isinstance(spec, Mapping):
        return None
    return PodSite(path, spec, containers_of(spec, location.extra_containers, location.ray))


def _walk(path: str, value: Any, steps: tuple[Step, ...], location: PodSpecs) -> Iterator[PodSite | None]:
    """Follow `steps` from `value` (found at `path`): field paths, and every item of an `Each`."""
    if not steps:
        yield _site(path, value, location)
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


def pod_sites(obj: Mapping[str, Any]) -> list[PodSite]:
    """The pod specs of an object. Every rule asks for the same object in turn: the last answer is kept."""
    global _last
    if _last[0] is not obj:
        _last = (obj, [site for site in _sites(obj) if site is not None])
    return list(_last[1])
