"""Platform invariants: properties of a whole offline plan that no single object shows.

Each layer contributes a module with an `INVARIANTS` tuple (`base.Invariant`: an id, what it promises, and a
check that reads a `plan.PlanView` and yields `base.Violation`s naming the pool, team or key and what is
missing). `make plan` fails (exit 1, nothing written) when any is broken. A new layer adds its module and one
entry to `INVARIANTS` below.
"""

from __future__ import annotations

import tools.invariants.cluster as cluster
import tools.invariants.gpu as gpu
import tools.invariants.monitoring as monitoring
import tools.invariants.storage as storage
import tools.invariants.teams as teams
import tools.invariants.workloads as workloads
from tools.invariants.base import Invariant, Violation
from tools.invariants.plan import PlanView

INVARIANTS: tuple[Invariant, ...] = (
    *cluster.INVARIANTS,
    *gpu.INVARIANTS,
    *monitoring.INVARIANTS,
    *teams.INVARIANTS,
    *storage.INVARIANTS,
    *workloads.INVARIANTS,
)


def check_plan(plan: PlanView, invariants: tuple[Invariant, ...] = INVARIANTS) -> list[Violation]:
    return [violation for invariant in invariants for violation in invariant.check(plan)]


__all__ = ["INVARIANTS", "Invariant", "PlanView", "Violation", "check_plan"]
