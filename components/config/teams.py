"""`ml-platform:teams`: per-team namespaces with quotas, access and priorities."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from components.config.base import DNS_LABEL, QUANTITY, ConfigModel
from vocabulary.priorities import PriorityClassName


class TeamResources(ConfigModel):
    """Non-GPU quota of the team's namespace (ResourceQuota hard limits)."""

    cpu: str = Field(
        "64", pattern=QUANTITY, description="CPU requests of all the team's pods together (a Kubernetes quantity)."
    )
    memory: str = Field("256Gi", pattern=QUANTITY, description="Memory requests of all the team's pods together.")
    storage: str = Field("1Ti", pattern=QUANTITY, description="PersistentVolumeClaim storage requests together.")
    pods: int = Field(200, ge=1, le=100_000, description="Pods at once.")


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
        default_factory=list, description="Identity-provider groups that get edit in the team's namespace."
    )
    resources: TeamResources = Field(default_factory=TeamResources, description="CPU, memory, storage and pods.")

    @field_validator("gpu_quota", "gpu_borrowing_limit", mode="before")
    @classmethod
    def _quota_counts(cls, value: Any) -> Any:
        counts = value.values() if isinstance(value, dict) else [] if value is None else [value]
        for count in counts:
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 100_000:
                raise ValueError("GPU counts are whole numbers from 0 to 100000")
        return value
