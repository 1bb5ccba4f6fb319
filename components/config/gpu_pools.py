"""`ml-platform:gpuPools`: GPU node pools, each scaling between minNodes and maxNodes per capacity type."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from components.config.base import DNS_LABEL, CapacityType, ConfigModel, SharingMode, Workload


class Sharing(ConfigModel):
    mode: SharingMode = Field("none", description="none, time-slicing (dev only: no memory isolation) or mig.")
    replicas: int | None = Field(None, description="time-slicing: logical GPUs per physical GPU (>= 2).")
    profile: str | None = Field(
        None, description="mig: the MIG profile every GPU is split into, e.g. 1g.10gb (the built-in all-<profile>)."
    )
    config: str | None = Field(
        None,
        description="mig, instead of profile: a custom MIG layout from ml-platform:gpu.migConfigs (aws and existing).",
    )


class Reservations(ConfigModel):
    """EC2 capacity you have already paid for: On-Demand Capacity Reservations or Capacity Blocks for ML."""

    ids: list[str] = Field(default_factory=list, description="Capacity reservation ids (cr-...).")
    tags: dict[str, str] = Field(
        default_factory=dict, description="Karpenter: select reservations by tags instead of (or as well as) ids."
    )
    availability_zone: str | None = Field(
        None,
        description="The reservations' AZ (a reservation is zonal), e.g. us-west-2a: required when a managed node "
        "group launches into them (cluster-autoscaler, or minNodes with reserved first); the group uses that AZ only.",
    )
    capacity_block: bool = Field(
        False,
        strict=True,
        description="The reservations are Capacity Blocks for ML (Karpenter only: it launches into a block only "
        "while the block is active).",
    )


class GpuPool(ConfigModel):
    name: str = Field(min_length=1, max_length=30, pattern=DNS_LABEL, description="Pool name, a DNS label.")
    gpu: str = Field(description="GPU model from the catalogue: a100-40gb, a100-80gb, h100-80gb, l4, a10g, t4.")
    gpus_per_node: int = Field(ge=1, description="GPUs per node; must exist for that GPU on that cloud.")
    capacity: tuple[CapacityType, ...] = Field(
        ("on-demand",),
        description="In preference order, any of reserved (aws: the pool's reservations), spot, on-demand: e.g. "
        "[spot, on-demand] (spot first, on-demand fallback) or [reserved, on-demand].",
    )
    reservations: Reservations | None = Field(
        None, description="aws: the EC2 capacity reservations that `reserved` capacity launches into."
    )
    min_nodes: int = Field(0, ge=0, le=1000, description="Nodes kept when idle; 0 scales to zero.")
    max_nodes: int = Field(
        ge=0,
        le=1000,
        description="Cap on nodes per capacity type: [spot, on-demand] may reach maxNodes of each (the cost ceiling).",
    )
    sharing: Sharing = Field(default_factory=Sharing, description="How pods share a GPU: none, time-slicing, mig.")
    workload: Workload = Field("training", description="training, inference or dev.")
    disk_gib: int = Field(
        200, ge=50, le=16384, alias="diskGiB", description="Root volume size (container images are large)."
    )
    zones: list[str] = Field(
        default_factory=list,
        description="gcp: zones for this pool's nodes (GPU models are zonal); default cluster.gcp.zones.",
    )

    @field_validator("capacity", mode="before")
    @classmethod
    def _capacity_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value
