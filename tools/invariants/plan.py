"""`PlanView`: a whole offline plan as the invariants read it: the validated config, the resolved GPU pools and
every declared resource (Kubernetes objects as the objects they create, Helm releases with their values)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config.loading import load_platform_config
from components.config.platform import PlatformConfig
from components.gpu_pools import ResolvedGpuPool, resolve_gpu_pools
from tools.offline import PlanResult, unwrap

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "policies"))

from rules import kubernetes_object


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    inputs: dict[str, Any]  # secrets unwrapped: invariants may need their content, the plan files never show it
    dependencies: tuple[str, ...] = ()
    urn: str = ""
    protect: bool = False

    @property
    def object(self) -> dict[str, Any] | None:
        """The Kubernetes object this resource creates (None for Helm releases, providers, cloud resources)."""
        return kubernetes_object(self.type, self.inputs)


@dataclass(frozen=True)
class PlanView:
    config: PlatformConfig
    pools: tuple[ResolvedGpuPool, ...]
    resources: tuple[PlannedResource, ...]

    @classmethod
    def of(cls, result: PlanResult) -> PlanView:
        config = load_platform_config(result.stack.config)
        resources = tuple(
            PlannedResource(r.type, r.name, unwrap(r.inputs), tuple(r.dependencies), r.urn, r.protect)
            for r in result.registrations
        )
        return cls(config, resolve_gpu_pools(config), resources)

    def of_type(self, resource_type: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == resource_type]

    def objects(self, kind: str) -> Iterator[dict[str, Any]]:
        for resource in self.resources:
            obj = resource.object
            if obj is not None and obj.get("kind") == kind:
                yield obj

    def release(self, chart: str) -> PlannedResource | None:
        """The Helm release of a chart (by chart name or OCI reference ending in it), if the plan has one."""
        for r in self.of_type("kubernetes:helm.sh/v3:Release"):
            if str(r.inputs.get("chart", "")).rsplit("/", 1)[-1] == chart:
                return r
        return None
