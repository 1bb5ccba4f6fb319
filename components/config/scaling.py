"""`ml-platform:scaling`: how GPU capacity scales (Karpenter, cluster-autoscaler and GKE settings)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from components.config.base import AMI_VERSION, CLUSTER_AUTOSCALER_TAG, DURATION, EXPIRY, ConfigModel, CpuCapacityType

# The Karpenter NodePool (and EC2NodeClass) of the CPU pool; no GPU pool may take this name.
CPU_POOL_NAME = "cpu"


class CpuPool(ConfigModel):
    """General-purpose CPU capacity (Ray CPU workers, preprocessing): a Karpenter NodePool on EKS."""

    enabled: bool = Field(True, description="Create the CPU NodePool (karpenter only).")
    capacity: tuple[CpuCapacityType, ...] = Field(("spot", "on-demand"), description="Spot first by default.")
    max_cpu: int = Field(256, ge=1, le=100_000, description="Hard cap on vCPUs across the pool.")
    max_memory_gib: int = Field(
        1024, ge=1, le=1_000_000, alias="maxMemoryGiB", description="Hard cap on memory across the pool."
    )

    @field_validator("capacity", mode="before")
    @classmethod
    def _capacity_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ScalingConfig(ConfigModel):
    """How GPU capacity scales: Karpenter, cluster-autoscaler and GKE settings."""

    consolidate_after: str | None = Field(
        None,
        pattern=DURATION,
        description="Idle time before an empty node goes (Karpenter consolidateAfter, cluster-autoscaler "
        "scale-down-unneeded-time and scale-down-delay-after-add); default 2m in dev, 5m otherwise.",
    )
    expire_after: str = Field("720h", pattern=EXPIRY, description="Karpenter: replace nodes older than this.")
    termination_grace_period: str = Field(
        "24h",
        pattern=DURATION,
        description="Karpenter: how long a draining node waits for pods (also bounds karpenter.sh/do-not-disrupt).",
    )
    ami_family: Literal["al2023", "bottlerocket"] = Field("al2023", description="Karpenter GPU/CPU node AMI family.")
    ami_version: str = Field(
        "latest",
        pattern=AMI_VERSION,
        description="Karpenter AMI alias version (al2023@<version>): latest only in dev (it replaces every node on "
        "each AMI release); elsewhere pin a release such as v20260714.",
    )
    expander: Literal["priority", "least-waste"] = Field(
        "priority", description="cluster-autoscaler expander: priority prefers spot groups, then on-demand."
    )
    cpu_pool: CpuPool = Field(default_factory=CpuPool, description="Karpenter CPU NodePool for Ray CPU workers.")
    cluster_autoscaler_version: str | None = Field(
        None,
        pattern=CLUSTER_AUTOSCALER_TAG,
        description="cluster-autoscaler image tag; its minor must match the cluster's (the chart ships v1.35.0).",
    )
    node_overlay: bool = Field(
        False,
        description="Karpenter: declare the MIG slices a node will advertise with a NodeOverlay (alpha in Karpenter "
        "1.14, behind a feature gate), so MIG pools scale from zero; off keeps MIG pools as fixed groups.",
    )
    gke_profile: Literal["OPTIMIZE_UTILIZATION", "BALANCED"] | None = Field(
        None, description="GKE cluster autoscaling profile; default OPTIMIZE_UTILIZATION in dev, BALANCED otherwise."
    )
