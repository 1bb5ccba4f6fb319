"""`ml-platform:kuberay`: the KubeRay operator (RayCluster, RayJob, RayService)."""

from __future__ import annotations

from pydantic import Field

from components.config.base import ConfigModel


class KubeRayConfig(ConfigModel):
    enabled: bool = Field(True, description="Install the KubeRay operator and its CRDs.")
