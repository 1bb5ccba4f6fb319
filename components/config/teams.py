"""`ml-platform:teams`: per-team namespaces with GPU quotas."""

from __future__ import annotations

from pydantic import Field

from components.config.base import DNS_LABEL, ConfigModel
from vocabulary.priorities import PriorityClassName


class Team(ConfigModel):
    name: str = Field(min_length=1, max_length=50, pattern=DNS_LABEL, description="Team (and namespace) name.")
    gpu_quota: int = Field(0, ge=0, le=100_000, description="GPUs (full or MIG slices) the team may hold at once.")
    pools: list[str] = Field(default_factory=list, description="GPU pools the team may use; empty = all.")
    priority: PriorityClassName = Field("development", description="Default PriorityClass of the team's pods.")
