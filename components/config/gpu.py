"""`ml-platform:gpu`: the NVIDIA GPU stack: the GPU Operator on EKS and existing clusters, GKE's own on GKE."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.config.base import ConfigModel

MigStrategy = Literal["mixed", "single"]


class GpuStackConfig(ConfigModel):
    driver: bool = Field(
        False,
        description="existing: the GPU Operator installs NVIDIA's driver (false: the nodes have one). EKS GPU AMIs "
        "ship the driver and GKE installs its own, so it is off there.",
    )
    toolkit: bool = Field(
        False,
        description="existing: the GPU Operator installs the NVIDIA container toolkit (false: the nodes have it). "
        "Off on EKS (the AMI ships it) and GKE.",
    )
    mig_strategy: MigStrategy = Field(
        "mixed",
        description="How MIG slices are advertised: mixed (nvidia.com/mig-<profile>, one resource per profile) or "
        "single (every slice as nvidia.com/gpu; one profile per node). GKE always advertises nvidia.com/gpu.",
    )
    mig_configs: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Custom MIG layouts for the MIG manager, {name: {profile: instances per GPU}}, e.g. "
        "{balanced: {3g.40gb: 1, 2g.20gb: 1, 1g.10gb: 2}}; a MIG pool selects one with sharing.config.",
    )
    gke_metrics: Literal["managed", "dcgm-exporter"] = Field(
        "managed",
        description="gcp: where GPU (DCGM) metrics come from: GKE's managed DCGM collection, or the dcgm-exporter "
        "chart scraped by the in-cluster Prometheus.",
    )
