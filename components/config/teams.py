"""`ml-platform:teams`: per-team namespaces with quotas, access and priorities."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from components.config.base import (
    DNS_LABEL,
    QUANTITY,
    QUANTITY_LIMIT,
    ConfigModel,
    ShmSize,
    number_as_quantity,
    quantity_value,
)
from vocabulary.priorities import PriorityClassName

# What a container that sets no requests gets in a team's namespace (its LimitRange): the quota must hold one.
CONTAINER_DEFAULT_REQUEST = {"cpu": "250m", "memory": "512Mi"}


class TeamResources(ConfigModel):
    """Non-GPU quota of the team's namespace (ResourceQuota hard limits)."""

    cpu: str = Field(
        "64", pattern=QUANTITY, description="CPU requests of all the team's pods together (a Kubernetes quantity)."
    )
    memory: str = Field("256Gi", pattern=QUANTITY, description="Memory requests of all the team's pods together.")
    storage: str = Field("1Ti", pattern=QUANTITY, description="PersistentVolumeClaim storage requests together.")
    pods: int = Field(200, ge=1, le=100_000, description="Pods at once.")

    @field_validator("cpu", "memory", "storage", mode="before")
    @classmethod
    def _numbers_as_quantities(cls, value: Any) -> Any:
        """`cpu: 64` or `memory: 1e10` unquoted: YAML numbers, and quantities to Kubernetes."""
        return number_as_quantity(value)

    @field_validator("cpu", "memory", "storage")
    @classmethod
    def _holds_one_container(cls, value: str, info: ValidationInfo) -> str:
        if not re.fullmatch(QUANTITY, value):
            return value  # the pattern says what is wrong
        if quantity_value(value) >= QUANTITY_LIMIT:
            raise ValueError("too large for a Kubernetes quantity (under 2^63)")
        least = CONTAINER_DEFAULT_REQUEST.get(str(info.field_name))
        if least is not None and quantity_value(value) < quantity_value(least):
            hint = " (memory is in bytes: 256Gi, not 256)" if info.field_name == "memory" else ""
            raise ValueError(f"at least {least}, the request a container that sets none gets{hint}")
        return value


class RayClusterConfig(ConfigModel):
    """A shared RayCluster in the team's namespace: the head on system nodes, GPU workers from 0 on one of the team's
    GPU pools, CPU workers from 0 on the CPU pool (Karpenter), Ray's autoscaler on."""

    image: str = Field(
        "rayproject/ray:2.52.0-gpu",
        min_length=1,
        max_length=512,
        description="Ray image of the head and the workers (the GPU variant: CUDA for the GPU workers).",
    )
    gpu_pool: str | None = Field(None, description="GPU pool of the GPU workers; default: the team's first GPU pool.")
    max_gpu_workers: int = Field(4, ge=0, le=1000, description="GPU workers at most (from 0).")
    gpus_per_worker: int = Field(1, ge=1, le=64, description="GPUs (or MIG slices) per GPU worker.")
    gpu_worker_cpu: str = Field("8", pattern=QUANTITY, description="CPU request and limit of a GPU worker.")
    gpu_worker_memory: str = Field("64Gi", pattern=QUANTITY, description="Memory request and limit of a GPU worker.")
    max_cpu_workers: int = Field(4, ge=0, le=1000, description="CPU workers at most (from 0; Karpenter CPU pool).")
    cpu_worker_cpu: str = Field("4", pattern=QUANTITY, description="CPU request and limit of a CPU worker.")
    cpu_worker_memory: str = Field("32Gi", pattern=QUANTITY, description="Memory request and limit of a CPU worker.")
    head_cpu: str = Field("2", pattern=QUANTITY, description="CPU of the head (it runs no tasks: num-cpus 0).")
    head_memory: str = Field("8Gi", pattern=QUANTITY, description="Memory of the head.")
    shm_size: ShmSize = Field(
        "16Gi",
        description="Memory /dev/shm of every Ray worker (Ray's object store lives there); at most half the "
        "workers' memory (it is charged to them). The head keeps KubeRay's own.",
    )


class Team(ConfigModel):
    name: str = Field(min_length=1, max_length=50, pattern=DNS_LABEL, description="Team (and namespace) name.")
    gpu_quota: int | dict[str, int] = Field(
        0,
        description="GPUs the team may hold at once, per GPU model (whole GPUs: {h100-80gb: 16}) and per MIG "
        "resource ({nvidia.com/mig-1g.10gb: 14}); a number only when the team's pools offer one kind of GPU.",
    )
    gpu_borrowing_limit: int | dict[str, int] | None = Field(
        None,
        description="GPUs the team may borrow beyond gpuQuota while other teams' GPUs are idle (Kueue), in the "
        "shape of gpuQuota; default: as many as gpuQuota, so a team can at most double its guarantee. The "
        "namespace's ResourceQuota allows gpuQuota + gpuBorrowingLimit.",
    )
    pools: list[str] = Field(default_factory=list, description="GPU pools the team may use; empty = all.")
    priority: PriorityClassName = Field("development", description="Default PriorityClass of the team's pods.")
    priority_classes: list[PriorityClassName] | None = Field(
        None,
        min_length=1,
        description="PriorityClasses the team may use; default: its priority and every class below it "
        "(production-serving only when named).",
    )
    groups: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(
        default_factory=list,
        description="Identity-provider groups that get edit in the team's namespace and view on the shared "
        "dashboards (not Kubernetes' own system: groups).",
    )
    resources: TeamResources = Field(default_factory=TeamResources, description="CPU, memory, storage and pods.")
    ray_cluster: RayClusterConfig | None = Field(
        None, description="A shared RayCluster in the team's namespace (needs ml-platform:kuberay)."
    )

    @field_validator("groups")
    @classmethod
    def _people_not_system_groups(cls, groups: list[str]) -> list[str]:
        system = [g for g in groups if g.startswith("system:")]
        if system:
            raise ValueError(
                f"Kubernetes' own groups are not a team ({', '.join(system)}: system:authenticated is every user, "
                "system:serviceaccounts every workload); name the identity-provider groups of the team's people"
            )
        if len(set(groups)) != len(groups):
            raise ValueError("each group once")
        return groups

    @field_validator("pools", "priority_classes")
    @classmethod
    def _each_once(cls, names: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if names is not None and len(set(names)) != len(names):
            raise ValueError("each " + ("pool" if info.field_name == "pools" else "class") + " once")
        return names

    @field_validator("gpu_quota", "gpu_borrowing_limit", mode="before")
    @classmethod
    def _quota_counts(cls, value: Any) -> Any:
        counts = value.values() if isinstance(value, dict) else [] if value is None else [value]
        for count in counts:
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 100_000:
                raise ValueError("GPU counts are whole numbers from 0 to 100000")
        return value
