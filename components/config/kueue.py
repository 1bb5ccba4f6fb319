"""`ml-platform:kueue`: job queueing and GPU fair sharing between the teams (Kueue)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.config.base import ConfigModel

Overcommit = Literal["warn", "error"]


class KueueConfig(ConfigModel):
    overcommit: Overcommit = Field(
        "warn",
        description="When the teams' GPU quotas add up to more than the pools can ever provide (at maxNodes): warn "
        "in the plan, or make it a config error.",
    )
