"""What a rule reports, and the settings rules read."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from .values import quantity

Enforcement = Literal["mandatory", "advisory", "disabled"]


@dataclass(frozen=True)
class Finding:
    rule: str
    object: str  # Kind/namespace/name, or the Pulumi resource type and name
    message: str
    container: str | None = None
    site: str | None = None


@dataclass(frozen=True)
class Settings:
    """Inputs a rule may depend on: the stack's policy config (policies/config/<stack>.json)."""

    shm_min_size: str = "8Gi"
    environment: str = "dev"
    enforcement: dict[str, Enforcement] = field(default_factory=dict)

    @property
    def shm_min_bytes(self) -> Decimal:
        amount = quantity(self.shm_min_size)
        if amount is None:
            raise ValueError(f"shmMinSize {self.shm_min_size!r} is not a Kubernetes quantity")
        return amount
