"""What an invariant is and what it reports."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tools.invariants.plan import PlanView


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str  # the pool, team or stack key the problem is about
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message} [{self.invariant}]"


@dataclass(frozen=True)
class Invariant:
    id: str
    description: str
    check: Callable[[PlanView], Iterable[Violation]]
